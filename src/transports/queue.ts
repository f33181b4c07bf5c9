/**
 * The queue transport and the Redis side of distributed mode, on bull. Queues:
 * - `conveyor:module:<name>`: calls to a module, taken by `conveyor worker --modules <name>`;
 * - `conveyor:results:<engine>`: module answers for the engine that sent the call (those
 *   ready together in one job), taken by that engine, or by any other once it is gone;
 * - `conveyor:results`: answers for any engine (a callback's, one queued again, one from a
 *   call that named no engine);
 * - `conveyor:requests`: starts of accepted requests, taken by any engine.
 * Jobs are keyed by run or request id, so adding the same one twice does nothing while it waits.
 */
import Queue from 'bull';
import Redis, { type RedisOptions } from 'ioredis';
import type { BusEvents, ModuleCall } from '../bus/bus';
import type { Logger } from '../log/logger';
import type { RegisteredModule } from '../module/registry';
import { SpanKind } from '@opentelemetry/api';
import { endSpan, moduleSpanAttributes, runInSpan, startRemoteSpan } from '../tracing/spans';
import { parseDuration } from '../pipeline/duration';
import { moduleLogger, runModule } from './run-module';
import type { StepTransport } from './types';

export const MODULE_QUEUE_PREFIX = 'conveyor:module:';
export const REQUESTS_QUEUE = 'conveyor:requests';
export const RESULTS_QUEUE = 'conveyor:results';
/** An engine's own results queue is this prefix and its id ({@link ModuleCall.replyTo}). */
export const ENGINE_RESULTS_PREFIX = 'conveyor:results:';
/** A worker closes its producer for an engine's results queue after this long unused (an engine that restarted has a new one). */
const REPLY_QUEUE_IDLE_MS = 5 * 60_000;
/** How long a worker trusts what it read of an engine being alive. */
const ALIVE_CACHE_MS = 1000;

/** The set of the ids of engines that took a results queue of their own, under bull's key prefix. */
export const enginesKey = (prefix: string): string => `${prefix}:conveyor:engines`;
/** An engine's heartbeat key: it exists while the engine is alive. */
export const engineAliveKey = (prefix: string, id: string): string => `${prefix}:conveyor:engine:${id}`;
/** The most answers one `conveyor:results` job carries ({@link QueueHub.addResult}), and about the most bytes. */
export const RESULTS_PER_JOB = 200;
export const RESULT_JOB_BYTES = 1024 * 1024;

/** A module's answer on `conveyor:results`; `requeued`: how many times an engine could not commit it and queued it again. */
export type ResultJob = (({ type: 'completed' } & BusEvents['StepCompleted']) | ({ type: 'failed' } & BusEvents['StepFailed'])) & { requeued?: number };
/** An answer handed to `QueueHub.addResult`, settled once the job holding it is in Redis. */
interface PendingResult {
  job: ResultJob;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Several answers ready in one event-loop turn, in one job of `conveyor:results`. */
export interface ResultBatchJob {
  type: 'batch';
  results: ResultJob[];
}

export interface QueueHubOptions {
  /** Key prefix in Redis; tests use their own. @default 'bull' */
  prefix?: string;
  /** How long a worker holds a job before it counts as stalled (its worker died). @default 30000 */
  lockMs?: number;
}

/**
 * Opens (once) and closes the bull queues of one process.
 *
 * Each queue's command connection pipelines on its own (ioredis `enableAutoPipelining`): the
 * commands issued in one event-loop turn (a group commit's worth of job adds, the worker's
 * completions) leave in one socket write instead of one each. `distributed linear 5000`
 * went from ~5 writes a request to under 1 (strace), with 2–11% less engine CPU
 * (docs/performance.md). The blocking connection (`BRPOPLPUSH`) and the subscriber stay plain.
 */
export class QueueHub {
  private readonly queues = new Map<string, Queue.Queue>();
  /** The connections made for the queues, by queue: bull closes only those it made itself. */
  private readonly clients = new Map<string, Redis[]>();

  constructor(
    readonly redisUrl: string,
    private readonly o: QueueHubOptions = {},
  ) {}

  /** The key prefix in Redis (bull's, and the engines' heartbeats under it). */
  get prefix(): string {
    return this.o.prefix ?? 'bull';
  }

  /**
   * This process's engine's own results queue, once its inbox takes it: the calls this
   * process sends name it ({@link ModuleCall.replyTo}).
   */
  replyQueue: string | undefined;

  /** When each engine's results queue was last written to by this process (a worker's producers). */
  private readonly replyUsed = new Map<string, number>();
  private replySwept = 0;
  /** What this process last read of each engine being alive, and when. */
  private readonly alive = new Map<string, { alive: boolean; at: number }>();

  /**
   * Where the answer to a call that names `replyTo` goes: that engine's own results queue
   * while the engine is alive (its heartbeat key exists, read at most once a second), else
   * `conveyor:results`, which every engine takes. So an engine that is gone, or one of an
   * earlier release after a rollback, never has answers sent to a queue nobody takes.
   */
  async resultsQueueFor(replyTo: string | undefined): Promise<string> {
    if (!replyTo?.startsWith(ENGINE_RESULTS_PREFIX)) return RESULTS_QUEUE;
    const now = Date.now();
    let seen = this.alive.get(replyTo);
    if (!seen || now - seen.at > ALIVE_CACHE_MS) {
      const id = replyTo.slice(ENGINE_RESULTS_PREFIX.length);
      seen = { alive: (await this.queue(RESULTS_QUEUE).client.exists(engineAliveKey(this.prefix, id))) === 1, at: now };
      this.alive.set(replyTo, seen);
    }
    return seen.alive ? replyTo : RESULTS_QUEUE;
  }

  /**
   * This process's consumer of queue `name`: an instance of its own, apart from the producer
   * {@link queue} gives, so that closing either never stops the other.
   */
  consumer(name: string): Queue.Queue {
    return this.queue(name, undefined, `${name}#take`);
  }

  /**
   * Closes this process's instance of queue `key` (a name, or a {@link consumer}'s
   * `<name>#take`) and the connections made for it, if it has one. The jobs stay in Redis.
   */
  async closeQueue(key: string): Promise<void> {
    const q = this.queues.get(key);
    if (!q) return;
    this.queues.delete(key);
    await q.close().catch(() => undefined);
    for (const c of this.clients.get(key) ?? []) c.disconnect();
    this.clients.delete(key);
  }

  /** Closes the producers of engines' results queues this process has not written to for a while. */
  private sweepReplyQueues(now: number): void {
    if (now - this.replySwept < 60_000) return;
    this.replySwept = now;
    for (const [name, used] of this.replyUsed) {
      if (now - used < REPLY_QUEUE_IDLE_MS || name === this.replyQueue) continue;
      this.replyUsed.delete(name);
      this.alive.delete(name);
      void this.closeQueue(name);
    }
  }

  /**
   * The queue `name`. A consumer with a rate limit gets its own instance: bull applies the
   * limiter of the instance that processes, so a producer's instance must not be reused.
   */
  queue(name: string, limiter?: Queue.RateLimiter, instance?: string): Queue.Queue {
    const key = instance ?? (limiter ? `${name}#${limiter.max}/${limiter.duration}` : name);
    let q = this.queues.get(key);
    if (!q) {
      const lockDuration = this.o.lockMs ?? 30_000;
      q = new Queue(name, this.redisUrl, {
        prefix: this.o.prefix ?? 'bull',
        limiter,
        createClient: (type, config) => this.connect(key, type, config as RedisOptions),
        settings: { lockDuration, stalledInterval: lockDuration, maxStalledCount: 100 },
        defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
      });
      this.queues.set(key, q);
    }
    return q;
  }

  /** A connection as bull would make it, with auto-pipelining on the command connection. */
  private connect(key: string, type: 'client' | 'subscriber' | 'bclient', config: RedisOptions): Redis {
    // bull refuses a blocking or subscriber connection that retries per request.
    const c = type === 'client' ? new Redis({ ...config, enableAutoPipelining: true }) : new Redis({ ...config, maxRetriesPerRequest: null });
    const same = this.clients.get(key);
    if (same) same.push(c);
    else this.clients.set(key, [c]);
    return c;
  }

  /** Answers handed in during this turn, by the queue they go to. */
  private resultBatches = new Map<string, PendingResult[]>();

  /**
   * Queues a module's answer on `conveyor:results`; resolves once the job holding it is in
   * Redis. The answers handed in during one event-loop turn (a worker's jobs that ended
   * together) leave as one job, `{ type: 'batch', results }`, of at most
   * {@link RESULTS_PER_JOB} answers and about {@link RESULT_JOB_BYTES} of JSON (a larger
   * answer goes alone): a bull job costs Redis three Lua scripts and about twenty commands,
   * and the engine a fetch and an acknowledgement, where an answer inside a batch costs its
   * bytes. A lone answer is a job of its own, as before.
   *
   * `queue`: the results queue of the engine that sent the call (`ModuleCall.replyTo`), else
   * `conveyor:results`; the answers of one turn go in one job per queue.
   */
  addResult(job: ResultJob, queue = RESULTS_QUEUE): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const first = this.resultBatches.size === 0;
      const same = this.resultBatches.get(queue);
      if (same) same.push({ job, resolve, reject });
      else this.resultBatches.set(queue, [{ job, resolve, reject }]);
      if (first) setImmediate(() => this.sendResults());
    });
  }

  /** Sends the answers handed to {@link addResult} during the turn that ended. */
  private sendResults(): void {
    const now = Date.now();
    for (const [name, waiting] of this.resultBatches) {
      if (name !== RESULTS_QUEUE) this.replyUsed.set(name, now);
      this.sendResultsTo(name, waiting);
    }
    this.resultBatches = new Map();
    this.sweepReplyQueues(now);
  }

  private sendResultsTo(name: string, waiting: PendingResult[]): void {
    let part: typeof waiting = [];
    let bytes = 0;
    const send = (): void => {
      const sent = part;
      part = [];
      bytes = 0;
      const data: ResultJob | ResultBatchJob = sent.length === 1 ? sent[0]!.job : { type: 'batch', results: sent.map((p) => p.job) };
      this.queue(name).add(data).then(() => sent.forEach((p) => p.resolve()), (err: unknown) => sent.forEach((p) => p.reject(err)));
    };
    for (const w of waiting) {
      let size: number;
      try {
        size = JSON.stringify(w.job).length;
      } catch (err) {
        // Not JSON (bull could not store it either): this answer alone fails.
        w.reject(err);
        continue;
      }
      if (part.length > 0 && (part.length >= RESULTS_PER_JOB || bytes + size > RESULT_JOB_BYTES)) send();
      part.push(w);
      bytes += size;
    }
    if (part.length > 0) send();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    for (const cs of this.clients.values()) for (const c of cs) c.disconnect();
    this.clients.clear();
  }
}

/** Sends module calls to the module's queue; a worker process answers through `conveyor:results`. */
export class QueueTransport implements StepTransport {
  constructor(
    private readonly hub: QueueHub,
    private readonly logger: Logger,
  ) {}

  send(call: ModuleCall, module: RegisteredModule): void {
    const reply = this.hub.replyQueue;
    this.hub
      .queue(MODULE_QUEUE_PREFIX + module.name)
      .add(reply ? { ...call, replyTo: reply } : call, { jobId: call.runId })
      .catch((err: unknown) => {
        // The run's lease runs out and the sweeper sends it again.
        this.logger.error('queue add failed', { requestId: call.requestId, stepId: call.stepId, module: module.name, error: (err as Error).message });
      });
  }
}

/** Runs queue jobs for some in-process modules: `conveyor worker --modules a,b`. */
export class QueueWorker {
  constructor(
    private readonly hub: QueueHub,
    private readonly modules: RegisteredModule[],
    private readonly logger: Logger,
    /** Told of every run (the worker's `/metrics`). */
    private readonly observe?: (module: string, outcome: 'completed' | 'failed', durationMs: number) => void,
  ) {
    for (const m of modules) if (!m.def) throw new Error(`module "${m.name}" has no in-process implementation to run in a worker`);
  }

  start(): void {
    // Opened now, with the module queues, so that the close closes it too.
    this.hub.queue(RESULTS_QUEUE);
    for (const mod of this.modules) {
      const rate = mod.def?.queue?.rate;
      const limiter = rate ? { max: rate.max, duration: parseDuration(rate.per) ?? 1000 } : undefined;
      const concurrency = mod.def?.queue?.concurrency ?? 10;
      const q = this.hub.queue(MODULE_QUEUE_PREFIX + mod.name, limiter);
      void q.process(concurrency, async (job: Queue.Job<ModuleCall>) => {
        const call = job.data;
        const started = Date.now();
        // The attempt's trace came in the job data: this run is a child span of it.
        const span = call.traceparent ? startRemoteSpan(`conveyor.module ${mod.name}`, call.traceparent, moduleSpanAttributes(call), SpanKind.CONSUMER) : undefined;
        const res = await runInSpan(span, () => runModule(mod.def!, call, () => moduleLogger(this.logger, { requestId: call.requestId, stepId: call.stepId, module: mod.name }), undefined));
        endSpan(span, res.ok ? null : res.error);
        const base = { requestId: call.requestId, runId: call.runId, stepId: call.stepId, attempt: call.attempt, finishedAt: Date.now(), durationMs: Date.now() - started };
        const result: ResultJob = res.ok ? { type: 'completed', ...base, output: res.output } : { type: 'failed', ...base, error: res.error };
        this.observe?.(mod.name, res.ok ? 'completed' : 'failed', base.durationMs);
        // The answer is queued before the job is acknowledged: a worker that dies in between
        // leaves a stalled job that another worker runs again (at least once).
        await this.hub.addResult(result, await this.hub.resultsQueueFor(call.replyTo));
      });
    }
    this.logger.info('worker started', { modules: this.modules.map((m) => m.name) });
  }

  /** Takes no new jobs and waits for the running ones (bull's close does both). */
  async stop(): Promise<void> {
    await this.hub.close();
  }
}
