/**
 * Runs a pipeline's broker `sources` in an engine process (README "Sources"). Each message
 * goes through the same intake as an HTTP submit (policies, business key, idempotency; the
 * message id is the idempotency key) and is acknowledged only once its request is durably
 * stored: a crash in between redelivers it, and idempotency stores it once.
 *
 * - A bad message (not JSON, not an object, too large, refused by intake) is recorded in
 *   `intake_rejects` and dead-lettered; it never blocks the queue.
 * - A store failure sends the message back to the broker after a delay; a lost or unreachable
 *   broker is retried with backoff (1 s doubling up to 30 s) forever, logged once per cause
 *   (a warning when it starts or its cause changes, an info line once it connects again), and
 *   shown in `GET /api/sources` (`failures`, `nextAttemptAt`). Nothing here throws into the
 *   process, so an engine without its broker still starts.
 * - Backpressure: while the pipeline's backlog (requests buffered or running) is over
 *   `maxBuffered`, the source stops consuming, so the queue stays at the broker.
 * - Messages with the same business key are handed to intake one after another, in delivery
 *   order, so the key's `queue` policy sees them in the order the broker gave them.
 */
import type { Accepted, Intake } from '../intake/intake';
import type { BrokerPool } from '../brokers/pool';
import { expandUrl, redactUrl } from '../pipeline/broker-url';
import { ConveyorError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import { businessKeyOf } from '../intake/keys';
import type { Logger } from '../log/logger';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { CompiledSource } from '../pipeline/types';
import type { SourceStore } from '../store/source-store';
import { adapterFor, type Delivery, type SourceAdapter } from './adapters';
import { decodeMessage } from './message';

export type SourceState = 'connecting' | 'consuming' | 'paused' | 'reconnecting' | 'stopped';

/** What `GET /api/sources` shows of one running source. */
export interface SourceStatus {
  pipeline: string;
  name: string;
  kind: 'amqp' | 'nats';
  url: string;
  queue?: string;
  stream?: string;
  subject?: string;
  durable?: string;
  prefetch: number;
  maxBuffered: number;
  state: SourceState;
  /** Requests created, duplicates (replayed or existing), messages rejected, since this process started. */
  stored: number;
  duplicates: number;
  rejected: number;
  inFlight: number;
  backlog: number | null;
  lastError: string | null;
  /** Failed connection attempts in a row (0 once connected). */
  failures: number;
  /** When the next connection attempt is due (epoch ms), while reconnecting. */
  nextAttemptAt: number | null;
}

export interface SourceRunnerDeps {
  catalog: PipelineCatalog;
  intake: Pick<Intake, 'accept'>;
  store: SourceStore;
  pool: BrokerPool;
  logger: Logger;
}

export interface SourceRunnerOptions {
  /** How often the backlog is counted. @default 500 */
  checkMs?: number;
  /** Delay before a message whose request could not be stored comes back. @default 1000 */
  retryMs?: number;
  /** First delay before reconnecting to a lost or unreachable broker; doubles each time. @default 1000 */
  reconnectMs?: number;
  /** The longest delay between two connection attempts. @default 30000 */
  maxReconnectMs?: number;
}

/** Why a connection failed, shortly: the socket error's code (`ECONNREFUSED`), else the message. */
function causeOf(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && code !== '' ? code : err.message || err.name;
}
const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** A name with `${VAR:-default}` expanded, or as written when a variable is missing. */
function expandOr(name: string): string {
  try {
    return expandUrl(name);
  } catch {
    return name;
  }
}
/**
 * When the backlog is counted next. The count reads up to `maxBuffered + 1` rows, so with a
 * large `maxBuffered` and a large backlog it takes long (130–220 ms at 750,000 buffered
 * requests on SQLite, which every 500 ms was a third of a core). The next count waits at
 * least 50 times what this one took, so counting stays under 2% of the process's time
 * whatever the sizes (at 20 times, the counts of a 1,000,000-event intake were still 6.5% of
 * its SQLite time, and each read pages the intake itself then missed). Between counts, what
 * this process stores itself still pauses the source at once (`take`); only other writers'
 * additions are seen later.
 */
export function nextCheckDelay(checkMs: number, countMs: number): number {
  return Math.max(checkMs, Math.ceil(countMs * 50));
}

/** Consuming resumes once the backlog is back under this share of `maxBuffered`. */
const RESUME_AT = 0.8;

class RunningSource {
  readonly status: SourceStatus;
  private adapter: SourceAdapter;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private reconnectMs: number;
  /** The cause last logged as a warning; null while connected. */
  private warned: string | null = null;
  private sinceCheck = 0;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly pipelineId: string,
    private readonly source: CompiledSource,
    private readonly d: SourceRunnerDeps,
    private readonly o: Required<SourceRunnerOptions>,
  ) {
    this.adapter = adapterFor(source, d.pool);
    this.reconnectMs = o.reconnectMs;
    const { kind, name, prefetch, maxBuffered } = source;
    const where = source.kind === 'amqp' ? { queue: expandOr(source.queue) } : { stream: source.stream, subject: source.subject, durable: source.durable };
    this.status = {
      pipeline: pipelineId, name, kind, url: '', ...where, prefetch, maxBuffered, state: 'connecting',
      stored: 0, duplicates: 0, rejected: 0, inFlight: 0, backlog: null, lastError: null,
      failures: 0, nextAttemptAt: null,
    };
    try {
      this.status.url = redactUrl(this.d.pool.expand(source.url));
    } catch (err) {
      this.status.url = source.url;
      this.status.lastError = (err as Error).message;
    }
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.adapter.pause().catch(() => undefined);
    // Messages already taken finish: stored, then acknowledged.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.adapter.close().catch(() => undefined);
    this.status.state = 'stopped';
  }

  private async connect(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.adapter.open((err) => this.lost(err));
      if (this.warned !== null) this.d.logger.info(`source ${this.label()}: connected again to ${this.status.url}`, { ...this.fields(), failedAttempts: this.status.failures });
      this.reconnectMs = this.o.reconnectMs;
      this.warned = null;
      this.status.failures = 0;
      this.status.nextAttemptAt = null;
      this.status.lastError = null;
      await this.check(true);
    } catch (err) {
      this.lost(err as Error);
    }
  }

  private label(): string {
    return `${this.pipelineId}/${this.source.name}`;
  }

  private fields(): Record<string, unknown> {
    return { pipeline: this.pipelineId, source: this.source.name, url: this.status.url };
  }

  /**
   * A lost connection, or a connection attempt that failed: tries again after a delay that
   * doubles up to `maxReconnectMs`. One warning per cause, not one per attempt.
   */
  private lost(err: Error): void {
    if (this.stopping) return;
    clearTimeout(this.timer);
    const wasUp = this.status.state === 'consuming' || this.status.state === 'paused';
    const cause = causeOf(err);
    this.status.state = 'reconnecting';
    this.status.lastError = err.message || cause;
    this.status.failures = wasUp ? 0 : this.status.failures + 1;
    const retry = `retrying with backoff, at most every ${seconds(this.o.maxReconnectMs)}`;
    if (wasUp) this.d.logger.warn(`source ${this.label()}: lost ${this.status.url} (${cause}); ${retry}`, this.fields());
    else if (cause !== this.warned) this.d.logger.warn(`source ${this.label()}: cannot reach ${this.status.url} (${cause}); ${retry}`, this.fields());
    this.warned = cause;
    void this.adapter.close().catch(() => undefined);
    this.adapter = adapterFor(this.source, this.d.pool);
    this.status.nextAttemptAt = Date.now() + this.reconnectMs;
    this.timer = setTimeout(() => void this.connect(), this.reconnectMs);
    this.reconnectMs = Math.min(this.o.maxReconnectMs, this.reconnectMs * 2);
  }

  /**
   * Counts the backlog, then pauses or resumes consuming; runs again after `checkMs`, or later
   * when counting took long (see {@link nextCheckDelay}).
   */
  private async check(first = false): Promise<void> {
    if (this.stopping) return;
    let delay = this.o.checkMs;
    try {
      const max = this.source.maxBuffered;
      const t0 = performance.now();
      // The count may miss what is being stored while it runs: the messages taken since it
      // began, and those still being stored when it began. Both stay counted after it, so
      // the estimate (count + taken since) never falls below the truth, and a source stops
      // by `maxBuffered` + `prefetch` however late its count answers.
      const takenBefore = this.sinceCheck;
      const storing = this.inFlight.size;
      const backlog = await this.d.store.backlog(this.pipelineId, max);
      delay = nextCheckDelay(this.o.checkMs, performance.now() - t0);
      this.status.backlog = backlog;
      this.sinceCheck = this.sinceCheck - takenBefore + storing;
      // Pausing and resuming both go by the estimate: a count read before a burst must not
      // resume a source that the burst paused meanwhile.
      const estimate = backlog + this.sinceCheck;
      if (this.status.state === 'consuming' && estimate > max) await this.pause();
      else if ((first || this.status.state === 'paused') && estimate <= max * (first ? 1 : RESUME_AT)) {
        await this.adapter.start((d) => this.take(d));
        this.status.state = 'consuming';
      } else if (first) this.status.state = 'paused';
    } catch (err) {
      if (first) return this.lost(err as Error);
      this.status.lastError = (err as Error).message;
    }
    if (!this.stopping && this.status.state !== 'reconnecting') this.timer = setTimeout(() => void this.check(), delay);
  }

  private async pause(): Promise<void> {
    this.status.state = 'paused';
    await this.adapter.pause();
    this.d.logger.info('source paused: backlog over maxBuffered', { pipeline: this.pipelineId, source: this.source.name, backlog: this.status.backlog, maxBuffered: this.source.maxBuffered });
  }

  private take(d: Delivery): void {
    // Between two counts, what this process stored counts too.
    if (++this.sinceCheck + (this.status.backlog ?? 0) > this.source.maxBuffered && this.status.state === 'consuming') void this.pause();
    const done = this.handle(d).catch((err: unknown) => {
      this.d.logger.error('source message not handled; it will be redelivered', { pipeline: this.pipelineId, source: this.source.name, error: (err as Error).message });
      d.retry(this.o.retryMs);
    });
    this.inFlight.add(done);
    this.status.inFlight = this.inFlight.size;
    void done.finally(() => {
      this.inFlight.delete(done);
      this.status.inFlight = this.inFlight.size;
    });
  }

  private async handle(d: Delivery): Promise<void> {
    const decoded = decodeMessage(d.content, this.source.maxMessageBytes);
    if (!decoded.ok) return this.reject(d, decoded.code, decoded.reason);
    const entry = this.d.catalog.latest(this.pipelineId);
    let key: string | null;
    try {
      key = entry ? businessKeyOf(entry.pipeline, decoded.payload, null) : null;
    } catch (err) {
      return this.reject(d, (err as ConveyorError).code ?? ErrorCodes.BAD_PARAM, (err as Error).message);
    }
    const submit = (): Promise<void> => this.submit(d, decoded.payload);
    if (key === null) return submit();
    // One at a time per business key, in delivery order.
    const prev = this.chains.get(key) ?? Promise.resolve();
    const mine = prev.then(submit, submit);
    this.chains.set(key, mine);
    try {
      await mine;
    } finally {
      if (this.chains.get(key) === mine) this.chains.delete(key);
    }
  }

  private async submit(d: Delivery, payload: Record<string, unknown>): Promise<void> {
    let accepted: Accepted;
    try {
      accepted = await this.d.intake.accept({ pipelineId: this.pipelineId, payload, idempotencyKey: d.messageId });
    } catch (err) {
      if (err instanceof ConveyorError && err.status < 500) return this.reject(d, err.code, err.message);
      this.status.lastError = (err as Error).message;
      throw err;
    }
    d.ack();
    if (accepted.outcome === 'created') this.status.stored++;
    else this.status.duplicates++;
  }

  private async reject(d: Delivery, code: string, reason: string): Promise<void> {
    await this.d.store.recordReject({ id: newId(), pipelineId: this.pipelineId, source: this.source.name, messageId: d.messageId, code, reason, createdAt: Date.now() });
    d.deadLetter(reason);
    this.status.rejected++;
    this.d.logger.warn('source message rejected and dead-lettered', { pipeline: this.pipelineId, source: this.source.name, messageId: d.messageId, code, reason });
  }
}

/** Every source of every pipeline in this process. */
export class SourceRunner {
  private readonly running: RunningSource[] = [];

  constructor(
    private readonly d: SourceRunnerDeps,
    private readonly o: SourceRunnerOptions = {},
  ) {}

  start(): void {
    const o = { checkMs: this.o.checkMs ?? 500, retryMs: this.o.retryMs ?? 1000, reconnectMs: this.o.reconnectMs ?? 1000, maxReconnectMs: this.o.maxReconnectMs ?? 30_000 };
    for (const { pipeline } of this.d.catalog.list()) {
      for (const source of pipeline.sources ?? []) {
        const r = new RunningSource(pipeline.id, source, this.d, o);
        this.running.push(r);
        r.start();
      }
    }
    if (this.running.length > 0) this.d.logger.info('broker sources started', { count: this.running.length });
  }

  async stop(): Promise<void> {
    await Promise.all(this.running.splice(0).map((r) => r.stop()));
  }

  statuses(): SourceStatus[] {
    return this.running.map((r) => ({ ...r.status }));
  }
}
