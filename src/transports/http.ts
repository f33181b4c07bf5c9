import axios, { AxiosError, type AxiosInstance } from 'axios';
import type http from 'node:http';
import type https from 'node:https';
import type { Bus, ModuleCall } from '../bus/bus';
import { signCallback } from '../http/callback-token';
import { ErrorCodes, type StepError } from '../errors';
import type { RegisteredModule } from '../module/registry';
import { traceHeaders } from '../tracing/spans';
import { checkOutput, MAX_OUTPUT_BYTES, type ModuleOutcome } from './run-module';
import type { StepTransport } from './types';
import { assertOutbound, createOutboundAgents, OUTBOUND_REFUSED } from './outbound-agent';
import type { OutboundPolicy } from './outbound';

/**
 * The public HTTP module protocol: `POST <url>` with
 * `{ requestId, pipeline, stepId, attempt, idempotencyKey, test, params, context, callbackUrl }`.
 * `200 {data}` is done; `4xx` fails for good; `5xx`, a timeout or a refused connection may be
 * tried again.
 */
/** Where modules post late results, and how callback tokens are signed. */
export interface CallbackConfig {
  /** The API's base URL as modules can reach it. */
  baseUrl: string;
  secret: string;
  /** @default 1 hour */
  defaultTtlMs: number;
}

type CallOutcome = ModuleOutcome | { ok: 'accepted'; until: number };

export class HttpTransport implements StepTransport {
  private readonly client: AxiosInstance;
  private readonly agents: { httpAgent: http.Agent; httpsAgent: https.Agent };

  /** `outbound`: module URLs are the operator's, so only a set `CONVEYOR_OUTBOUND_ALLOW` limits them. */
  constructor(
    private readonly bus: Bus,
    private readonly callbacks?: CallbackConfig,
    private readonly outbound: OutboundPolicy = { set: false, hosts: [], cidrs: [] },
  ) {
    this.agents = createOutboundAgents('module', outbound, { keepAlive: true, maxSockets: 64 });
    this.client = axios.create({
      ...this.agents,
      proxy: false,
      maxContentLength: MAX_OUTPUT_BYTES,
      maxBodyLength: 50 * 1024 * 1024,
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      headers: { 'content-type': 'application/json', 'user-agent': 'conveyor' },
    });
  }

  send(call: ModuleCall, module: RegisteredModule): void {
    const started = Date.now();
    void this.call(call, module).then((res) => {
      const base = { requestId: call.requestId, runId: call.runId, stepId: call.stepId, attempt: call.attempt, finishedAt: Date.now(), durationMs: Date.now() - started };
      if (res.ok === 'accepted') this.bus.emit('StepAccepted', { requestId: call.requestId, runId: call.runId, stepId: call.stepId, attempt: call.attempt, until: res.until });
      else if (res.ok) this.bus.emit('StepCompleted', { ...base, output: res.output });
      else this.bus.emit('StepFailed', { ...base, error: res.error });
    });
  }

  /** Performs one call and classifies the answer. Never throws. */
  async call(call: ModuleCall, module: RegisteredModule): Promise<CallOutcome> {
    const until = Date.now() + (module.callbackTimeoutMs ?? this.callbacks?.defaultTtlMs ?? 3_600_000);
    const token = this.callbacks ? signCallback(this.callbacks.secret, { runId: call.runId, attempt: call.attempt, expiresAt: until, requestId: call.requestId }) : undefined;
    const body = {
      requestId: call.requestId,
      pipeline: call.pipeline,
      stepId: call.stepId,
      attempt: call.attempt,
      idempotencyKey: call.idempotencyKey,
      test: call.test,
      params: call.params,
      context: call.context,
      callbackUrl: this.callbacks && token ? `${this.callbacks.baseUrl}/api/callbacks/${token}` : null,
    };
    try {
      if (this.outbound.set) assertOutbound('module', this.outbound, module.url!);
      const res = await this.client.post<string>(module.url!, body, {
        timeout: call.timeoutMs,
        signal: AbortSignal.timeout(call.timeoutMs + 1000),
        headers: { 'idempotency-key': call.idempotencyKey, ...traceHeaders(call) },
      });
      if (res.status === 202 && this.callbacks) return { ok: 'accepted', until };
      return classify(res.status, res.data, module.url!);
    } catch (err) {
      return { ok: false, error: networkError(err, module.url!, call.timeoutMs) };
    }
  }

  close(): Promise<void> {
    this.agents.httpAgent.destroy();
    this.agents.httpsAgent.destroy();
    return Promise.resolve();
  }
}

function fail(code: string, message: string, retryable: boolean, details?: unknown): ModuleOutcome {
  return { ok: false, error: { code, message, retryable, details } };
}

function classify(status: number, text: string, url: string): ModuleOutcome {
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  // What the module said about its error: its own words, but bounded (a step error is stored).
  const said = errorMessageOf(body) ?? text.slice(0, 200);
  const remoteMessage = said.length > 500 ? `${said.slice(0, 500)}…` : said;
  if (status === 200 || status === 201) {
    if (!body || typeof body !== 'object' || !('data' in body)) {
      return fail(ErrorCodes.HTTP_BAD_RESPONSE, `module at ${url} answered ${status} without a JSON {"data": ...} body`, false);
    }
    return checkOutput((body as { data: unknown }).data);
  }
  if (status === 202) {
    return fail(ErrorCodes.HTTP_BAD_RESPONSE, `module at ${url} answered 202, but this engine has no callback URL configured`, false);
  }
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return fail(ErrorCodes.HTTP_STATUS, `module at ${url} answered ${status}: ${remoteMessage}`, false, { status });
  }
  return fail(ErrorCodes.HTTP_STATUS, `module at ${url} answered ${status}: ${remoteMessage}`, true, { status });
}

function errorMessageOf(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return undefined;
}

function networkError(err: unknown, url: string, timeoutMs: number): StepError {
  const e = err as AxiosError;
  const code = e.code ?? '';
  if (code === OUTBOUND_REFUSED) return { code: ErrorCodes.OUTBOUND_REFUSED, message: `module at ${url}: ${e.message}`, retryable: false };
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED' || e.name === 'TimeoutError' || e.name === 'CanceledError') {
    return { code: ErrorCodes.TIMEOUT, message: `module at ${url} did not answer within ${timeoutMs} ms`, retryable: true };
  }
  if (code === 'ERR_BAD_RESPONSE' && /maxContentLength/.test(e.message)) {
    return { code: ErrorCodes.HTTP_BAD_RESPONSE, message: `module at ${url} answered more than ${MAX_OUTPUT_BYTES} bytes`, retryable: false };
  }
  return { code: ErrorCodes.HTTP_CONNECTION, message: `module at ${url} could not be reached: ${code || e.message}`, retryable: true };
}
