/**
 * End-of-request callbacks: when a request with a callback URL ends (completed, stopped or
 * error_stop), the URL receives a signed POST of the request, as `GET /api/requests/:id`
 * shows it. The debt is a column of the request, so it survives a crash: the engine that
 * commits the end tries at once, and every engine's sweep retries (with backoff) whatever is
 * still owed, claiming each attempt with a conditional update so only one process sends it.
 */
import axios from 'axios';
import type http from 'node:http';
import type https from 'node:https';
import { requestView } from '../http/views';
import type { Logger } from '../log/logger';
import type { CallbackClaim } from '../store/intake-store';
import type { SqlStore } from '../store/store';
import { buildState } from '../supervisor/state';
import { assertOutbound, createOutboundAgents } from '../transports/outbound-agent';
import { parseOutboundAllow, type OutboundPolicy } from '../transports/outbound';
import { SIGNATURE_HEADER, signBody } from './signature';

export interface CallbackOptions {
  /** Attempts before giving up. @default 8 (the engine passes CONVEYOR_REQUEST_CALLBACK_ATTEMPTS) */
  attempts?: number;
  /** Delay before the second attempt, doubled each time up to 10 min. @default 1000 (the engine passes CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS) */
  backoffMs?: number;
  /** Per-attempt HTTP timeout. @default 10000 */
  timeoutMs?: number;
  /** Where callbacks may go. @default public addresses only (the engine passes CONVEYOR_OUTBOUND_ALLOW compiled) */
  outbound?: OutboundPolicy;
}

const MAX_BACKOFF_MS = 600_000;
const SWEEP_LIMIT = 50;

export class CallbackSender {
  private readonly o: Required<CallbackOptions>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly agents: { httpAgent: http.Agent; httpsAgent: https.Agent };

  constructor(
    private readonly store: SqlStore,
    private readonly secret: () => string,
    private readonly logger: Logger,
    options: CallbackOptions = {},
  ) {
    this.o = {
      attempts: options.attempts ?? 8,
      backoffMs: options.backoffMs ?? 1000,
      timeoutMs: options.timeoutMs ?? 10_000,
      outbound: options.outbound ?? parseOutboundAllow(undefined).policy,
    };
    this.agents = createOutboundAgents('callback', this.o.outbound);
  }

  /** A request ended in this process: try its callback now. */
  onFinished(requestId: string): void {
    const now = Date.now();
    this.track(this.store.intake.claimCallback(requestId, now, now + this.leaseMs()).then((c) => (c ? this.deliver(c) : undefined)));
  }

  /** Retries what is owed and due (after a failure, or a crash before the first attempt). */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const c of await this.store.intake.claimDueCallbacks(now, now + this.leaseMs(), SWEEP_LIMIT)) this.track(this.deliver(c));
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    this.agents.httpAgent.destroy();
    this.agents.httpsAgent.destroy();
  }

  /** Long enough for one attempt; if this process dies mid-attempt, another retries after it. */
  private leaseMs(): number {
    return this.o.timeoutMs + 5_000;
  }

  private track(p: Promise<unknown>): void {
    const t: Promise<void> = p.then(
      () => undefined,
      (err: unknown) => {
        this.logger.warn('request callback failed', { error: (err as Error).message });
      },
    ).finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
  }

  private async deliver(c: CallbackClaim): Promise<void> {
    const request = await this.store.getRequest(c.id);
    if (!request) return;
    const runs = await this.store.listStepRuns(c.id);
    const body = JSON.stringify({ event: 'request.finished', request: requestView(request, runs, buildState(request, runs).context) });
    const attempts = c.attempts + 1;
    let error: string | null = null;
    try {
      // The URL was checked at submit; the list may have changed since, and the agents'
      // lookup checks every address the name resolves to when the connection is made.
      assertOutbound('callback', this.o.outbound, c.url);
      const res = await axios.post(c.url, body, {
        ...this.agents,
        proxy: false,
        headers: {
          'content-type': 'application/json',
          'x-conveyor-event': 'request.finished',
          'x-conveyor-request-id': c.id,
          'x-conveyor-delivery': `${c.id}:${c.rev}`,
          [SIGNATURE_HEADER]: signBody(this.secret(), body),
        },
        timeout: this.o.timeoutMs,
        maxRedirects: 0,
        validateStatus: () => true,
        transformRequest: [(d: unknown) => d],
        responseType: 'text',
      });
      if (res.status < 200 || res.status >= 300) error = `the callback URL answered ${res.status}`;
    } catch (err) {
      error = `the callback URL could not be reached: ${(err as Error).message}`;
    }
    const now = Date.now();
    if (!error) {
      await this.store.intake.settleCallback(c, { done: true, attempts, error: null, nextDue: 0, now });
      this.logger.info('request callback delivered', { requestId: c.id, status: c.status, attempts });
      return;
    }
    const giveUp = attempts >= this.o.attempts;
    const nextDue = now + Math.min(MAX_BACKOFF_MS, this.o.backoffMs * 2 ** (attempts - 1));
    await this.store.intake.settleCallback(c, { done: giveUp, attempts, error: error.slice(0, 1000), nextDue, now });
    if (giveUp) this.logger.error('request callback given up', { requestId: c.id, attempts, error });
    else this.logger.warn('request callback failed; will retry', { requestId: c.id, attempts, error, retryAt: new Date(nextDue).toISOString() });
  }
}
