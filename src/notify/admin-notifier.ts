/**
 * Tells the administrator when a request stops on an error (seed 000 §7: "администратор
 * уведомляется"). The supervisor already writes `admin notified: request stopped on error` to
 * the log and emits `RequestFinished`; this listens for those with status `error_stop` and
 * delivers an alert through the channels configured:
 *
 * - a webhook: `CONVEYOR_ADMIN_WEBHOOK=https://…` receives `POST` with the alert as JSON;
 * - a module: `CONVEYOR_ADMIN_MODULE=admin-alert` runs that module (in-process, or a remote
 *   `*.module.json` over the HTTP module protocol) with the alert as its `params`.
 *
 * The alert is `{ requestId, pipeline, error, links: { self, steps, audit, resume, stop } }`.
 * Each channel is tried `CONVEYOR_ADMIN_RETRIES` times (default 5), waiting
 * `CONVEYOR_ADMIN_BACKOFF_MS` (default 1000) doubled after each failure. Retries live in this
 * process: if it dies meanwhile, the alert is lost, but the request stays in `error_stop`
 * (nothing continues by itself) and the log line remains.
 */
import { newId } from '../ids';
import type { Bus, BusEvents } from '../bus/bus';
import type { ValidationIssue } from '../errors';
import type { Logger } from '../log/logger';
import type { RequestRecord } from '../model';
import type { ModuleRegistry } from '../module/registry';
import { moduleLogger, runModule } from '../transports/run-module';

/** What the administrator receives. */
export interface AdminAlert {
  requestId: string;
  pipeline: string;
  error: RequestRecord['error'];
  links: { self: string; steps: string; audit: string; resume: string; stop: string };
}

export interface AdminNotifierOptions {
  /** @default process.env.CONVEYOR_ADMIN_WEBHOOK */
  webhookUrl?: string;
  /** @default process.env.CONVEYOR_ADMIN_MODULE */
  module?: string;
  /** Tries per channel. @default 5 */
  attempts?: number;
  /** Wait before the second try, doubled after each failure. @default 1000 */
  backoffMs?: number;
  /** Time limit of one try. @default 10000 */
  timeoutMs?: number;
}

export interface AdminNotifierDeps {
  bus: Bus;
  store: { getRequest(id: string): Promise<RequestRecord | undefined> };
  registry: ModuleRegistry;
  logger: Logger;
  /** The API's public base URL, for the links (read when an alert is sent). */
  baseUrl(): string;
}

/** The notifier's settings from the environment. */
export function adminNotifierEnv(env: NodeJS.ProcessEnv = process.env): AdminNotifierOptions {
  const int = (v: string | undefined): number | undefined => (v && /^\d+$/.test(v) ? Number(v) : undefined);
  return {
    webhookUrl: env.CONVEYOR_ADMIN_WEBHOOK || undefined,
    module: env.CONVEYOR_ADMIN_MODULE || undefined,
    attempts: int(env.CONVEYOR_ADMIN_RETRIES),
    backoffMs: int(env.CONVEYOR_ADMIN_BACKOFF_MS),
  };
}

/** Configuration problems, reported with the pipelines' so the engine refuses to start on them. */
export function checkAdminNotifier(registry: ModuleRegistry, o: AdminNotifierOptions = adminNotifierEnv()): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (o.module && !registry.get(o.module)) issues.push({ source: 'CONVEYOR_ADMIN_MODULE', path: o.module, message: `unknown module "${o.module}"` });
  if (o.webhookUrl && !/^https?:\/\/[^\s]+$/.test(o.webhookUrl)) issues.push({ source: 'CONVEYOR_ADMIN_WEBHOOK', path: '', message: 'must be an http(s) URL' });
  return issues;
}

type Channel = { name: string; send(alert: AdminAlert, attempt: number, signal: AbortSignal): Promise<void> };

export class AdminNotifier {
  private readonly o: Required<Omit<AdminNotifierOptions, 'webhookUrl' | 'module'>> & Pick<AdminNotifierOptions, 'webhookUrl' | 'module'>;
  private off: (() => void) | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly d: AdminNotifierDeps,
    options: AdminNotifierOptions = adminNotifierEnv(),
  ) {
    this.o = { attempts: 5, backoffMs: 1000, timeoutMs: 10_000, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  }

  /** Whether any channel is configured. */
  get enabled(): boolean {
    return Boolean(this.o.webhookUrl || this.o.module);
  }

  start(): void {
    if (!this.enabled || this.off) return;
    this.off = this.d.bus.on('RequestFinished', (e) => {
      if (e.status !== 'error_stop') return;
      const p = this.notify(e).finally(() => this.pending.delete(p));
      this.pending.add(p);
    });
  }

  /** Stops listening and abandons retries still waiting (a try in flight gets its own timeout). */
  async stop(): Promise<void> {
    this.off?.();
    this.off = undefined;
    this.stopping.abort();
    await Promise.allSettled([...this.pending]);
  }

  private async notify(e: BusEvents['RequestFinished']): Promise<void> {
    const request = await this.d.store.getRequest(e.requestId).catch(() => undefined);
    const base = `${this.d.baseUrl()}/api/requests/${e.requestId}`;
    const alert: AdminAlert = {
      requestId: e.requestId,
      pipeline: e.pipeline,
      error: request?.error ?? null,
      links: { self: base, steps: `${base}/steps`, audit: `${base}/audit`, resume: `${base}/resume`, stop: `${base}/stop` },
    };
    await Promise.all(this.channels(request?.test ?? false).map((c) => this.deliver(c, alert)));
  }

  private channels(test: boolean): Channel[] {
    const out: Channel[] = [];
    const { webhookUrl, module } = this.o;
    if (webhookUrl) out.push({ name: 'webhook', send: (alert, _attempt, signal) => this.post(webhookUrl, alert, signal) });
    if (module) out.push({ name: `module ${module}`, send: (alert, attempt, signal) => this.runAdminModule(module, alert, attempt, test, signal) });
    return out;
  }

  private async deliver(channel: Channel, alert: AdminAlert): Promise<void> {
    const fields = { requestId: alert.requestId, pipeline: alert.pipeline, channel: channel.name };
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      if (this.stopping.signal.aborted) return;
      try {
        await channel.send(alert, attempt, AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.o.timeoutMs)]));
        this.d.logger.info('admin alert delivered', { ...fields, attempt });
        return;
      } catch (err) {
        const last = attempt === this.o.attempts;
        this.d.logger[last ? 'error' : 'warn'](last ? 'admin alert not delivered' : 'admin alert failed; will retry', { ...fields, attempt, error: (err as Error).message });
        if (!last) await this.sleep(this.o.backoffMs * 2 ** (attempt - 1));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.stopping.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }

  private async post(url: string, body: unknown, signal: AbortSignal): Promise<void> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'conveyor-admin-notifier' }, body: JSON.stringify(body), signal });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`the webhook answered ${res.status}`);
  }

  private async runAdminModule(name: string, alert: AdminAlert, attempt: number, test: boolean, signal: AbortSignal): Promise<void> {
    const mod = this.d.registry.get(name);
    if (!mod) throw new Error(`module "${name}" is not loaded`);
    const call = {
      requestId: alert.requestId, pipeline: alert.pipeline, stepId: 'admin-alert', runId: newId(), attempt,
      idempotencyKey: `admin-alert:${alert.requestId}:${alert.error?.runId ?? ''}`, test, module: name,
      params: alert as unknown as Record<string, unknown>, context: {}, timeoutMs: this.o.timeoutMs,
    };
    if (mod.def) {
      const outcome = await runModule(mod.def, call, moduleLogger(this.d.logger, { module: name, requestId: alert.requestId }), signal);
      if (!outcome.ok) throw new Error(outcome.error.message);
      return;
    }
    if (!mod.url) throw new Error(`module "${name}" has neither code nor a URL in this process`);
    const { runId: _runId, module: _module, timeoutMs: _timeoutMs, ...protocol } = call;
    await this.post(mod.url, { ...protocol, callbackUrl: null }, signal);
  }
}
