/**
 * The inbox of distributed mode. Starts and module answers that may reach any process (a
 * callback hits whichever API instance) travel through bull on Redis, so any engine takes
 * them and a crash loses none: a job is acknowledged only once its commit is done or found
 * to be no news. What this process's own bus carries, and commands that await a reply, are
 * decided here, as in one process; commits are guarded by the request's `rev`, so they never
 * race with another engine's.
 *
 * A new request that this engine would start at once is started where it is submitted, in
 * the transaction that stores it (`Inbox.startNew`, as in one process): no start job, no
 * second transaction. The rest is stored `buffered` and its start queued, as before: a
 * request with a key, a hold (a `rate`, `batch` or `schedule` policy, or `maxActive`, whose
 * bounds hold across processes only in the store) or a callback, a pipeline with access rows,
 * a start beyond this engine's admission cap (another engine with room takes it), and every
 * submit to a process that runs no engine (`conveyor api`).
 */
import type { Bus } from '../bus/bus';
import type { Logger } from '../log/logger';
import type { HandleResult, Supervisor } from '../supervisor/supervisor';
import { randomBytes } from 'node:crypto';
import type Queue from 'bull';
import { ENGINE_RESULTS_PREFIX, engineAliveKey, enginesKey, REQUESTS_QUEUE, RESULTS_QUEUE, type QueueHub, type ResultBatchJob, type ResultJob } from '../transports/queue';
import { LocalInbox, type InboxMessage } from './inbox';

/** Answers with the supervisor at once, per engine. */
const TAKING = 1000;
/** An answer that could not be committed is queued again after 1 s, then twice as long each time up to 60 s, at most {@link MAX_REQUEUES} times (about 5 minutes in all). */
const REQUEUE_DELAY_MS = 1000;
const MAX_REQUEUE_DELAY_MS = 60_000;
const MAX_REQUEUES = 10;
/** How often an engine says it is alive, and looks for the results queues of engines that are gone (`CONVEYOR_HEARTBEAT_MS`). */
export const HEARTBEAT_MS = 10_000;
/**
 * A gone engine's results queue, found empty for this long, is forgotten. A worker stops
 * sending to it within about a second of the engine's heartbeat key going
 * (`QueueHub.resultsQueueFor`); this is that second with a wide margin.
 */
const FORGET_AFTER_MS = 2 * 60_000;

export interface RedisInboxOptions {
  /** {@link HEARTBEAT_MS}; an engine counts as gone three beats after its last. `CONVEYOR_HEARTBEAT_MS`; tests shorten it. */
  heartbeatMs?: number;
}

/**
 * Answers go back to the engine that sent the call (results affinity). Each engine takes a
 * results queue of its own, `conveyor:results:<id>`, and names it in every call it sends
 * (`ModuleCall.replyTo`); a worker sends the answer there. The engine that holds a request in
 * memory thus takes its answers: with a shared queue, two engines took each other's answers
 * half the time, and each such answer cost a read of the request, and often a commit refused
 * because the other engine's copy had moved on (two engines on one machine spent twice the
 * CPU a request of one).
 *
 * Every engine still takes `conveyor:results` (callbacks, answers queued again, answers whose
 * engine is gone) and starts. An engine's id is in the set `<prefix>:conveyor:engines`, with
 * a heartbeat key that expires three beats after its last (or is deleted when it stops). A
 * worker sends an answer to an engine's own queue only while that key exists, and to
 * `conveyor:results` otherwise. Every engine looks each beat for ids whose key is gone, takes
 * what is left in their queues, and forgets each once it has stayed empty for
 * {@link FORGET_AFTER_MS}. An answer sent to an engine just before it was killed thus waits
 * about four beats at most (40 s by default), plus bull's stall check for a job it had taken.
 */
export class RedisInbox extends LocalInbox {
  private consuming = false;
  private taking = 0;
  private readonly waiting: Array<() => void> = [];
  /** This engine's id, and its own results queue. */
  readonly id = randomBytes(8).toString('hex');
  readonly ownQueue = ENGINE_RESULTS_PREFIX + this.id;
  private beat: NodeJS.Timeout | undefined;
  /** The heartbeat under way, if any: beats never overlap, and `stop` waits for it. */
  private beating: Promise<void> | undefined;
  /** Results queues of gone engines this engine is emptying, and since when each has been found empty. */
  private readonly draining = new Set<string>();
  private readonly emptySince = new Map<string, number>();
  private readonly heartbeatMs: number;

  constructor(
    supervisor: Pick<Supervisor, 'receive'> & Partial<Pick<Supervisor, 'startNew'>>,
    bus: Bus,
    private readonly hub: QueueHub,
    private readonly logger: Logger,
    options: RedisInboxOptions = {},
  ) {
    super(supervisor, bus);
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

  /** The command connection the heartbeats use (the shared results queue's). */
  private get redis(): Queue.Queue['client'] {
    return this.hub.queue(RESULTS_QUEUE).client;
  }

  private get enginesKey(): string {
    return enginesKey(this.hub.prefix);
  }

  private aliveKey(id: string): string {
    return engineAliveKey(this.hub.prefix, id);
  }

  override async post(message: InboxMessage): Promise<boolean> {
    if (message.type === 'start') {
      const { requestId } = message;
      // The sweeper starts requests left buffered too long.
      return this.hub.queue(REQUESTS_QUEUE).add({ requestId }, { jobId: requestId }).then(() => true, (err: unknown) => {
        this.logger.error('start not queued', { requestId, error: (err as Error).message });
        return false;
      });
    }
    if (message.type === 'result') {
      const r = message.result;
      const job: ResultJob = 'output' in r ? { type: 'completed', ...r } : { type: 'failed', ...r };
      await this.hub.addResult(job);
      return true;
    }
    return super.post(message);
  }

  /** Also takes any engine's share of the queued starts and results. */
  override start(): void {
    super.start();
    this.consuming = true;
    void this.hub.queue(REQUESTS_QUEUE).process(20, (job) => this.supervisor.receive({ type: 'start', requestId: (job.data as { requestId: string }).requestId }));
    // A job holds one answer, or the answers a worker had ready together (`QueueHub.addResult`):
    // each is taken on its own, and those whose states are cached commit together. The job is
    // acknowledged once every answer is committed, found to be no news, or queued again.
    void this.hub.queue(RESULTS_QUEUE).process(50, this.takeJob);
    // Its own queue, named in the calls it sends from now on; alive before any call names it.
    this.hub.replyQueue = this.ownQueue;
    void this.hub.consumer(this.ownQueue).process(50, this.takeJob);
    const beat = (): void => {
      this.beating ??= this.heartbeat().finally(() => (this.beating = undefined));
    };
    beat();
    this.beat = setInterval(beat, this.heartbeatMs);
    this.beat.unref();
  }

  /** Takes a results job: each of its answers on its own, acknowledged once all are settled. */
  private readonly takeJob = async (job: Queue.Job): Promise<HandleResult[]> => {
    const data = job.data as ResultJob | ResultBatchJob;
    const answers = data.type === 'batch' ? data.results : [data];
    const outcomes = await Promise.all(answers.map((r) => this.take(r)));
    // Not committed (this engine is stopping, the commit failed or was refused again and
    // again): back on the queue for any engine, a second later and then less often, rather
    // than acknowledged and left to the run's lease.
    const again = answers.filter((_, i) => outcomes[i] === 'failed');
    if (again.length > 0) await this.requeue(again);
    return outcomes;
  };

  /**
   * Says this engine is alive, then takes what is left in the results queues of engines that
   * are not (never throws: Redis down now is tried again next beat).
   */
  private async heartbeat(): Promise<void> {
    if (!this.consuming) return;
    try {
      const redis = this.redis;
      await redis.multi().set(this.aliveKey(this.id), '1', 'PX', 3 * this.heartbeatMs).sadd(this.enginesKey, this.id).exec();
      const ids = await redis.smembers(this.enginesKey);
      for (const id of ids) {
        if (id === this.id || !this.consuming) continue;
        if ((await redis.exists(this.aliveKey(id))) === 1) {
          // Alive again (its beats were late, not gone): its answers are its own again.
          const name = ENGINE_RESULTS_PREFIX + id;
          if (this.draining.delete(name)) await this.hub.closeQueue(`${name}#take`);
          this.emptySince.delete(name);
          continue;
        }
        if (this.consuming) await this.drain(id);
      }
    } catch (err) {
      this.logger.warn('engine heartbeat failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Takes the answers left for gone engine `id`. Its id is forgotten (removed from the set, its
   * consumer here closed) once its queue has stayed empty for {@link FORGET_AFTER_MS}; what
   * is left of the queue in Redis is its job counter.
   */
  private async drain(id: string): Promise<void> {
    const name = ENGINE_RESULTS_PREFIX + id;
    const q = this.hub.consumer(name);
    if (!this.draining.has(name)) {
      this.draining.add(name);
      this.emptySince.delete(name);
      this.logger.info('engine gone, taking the answers left in its queue', { engine: id });
      void q.process(50, this.takeJob);
      return;
    }
    const counts = await q.getJobCounts();
    if (counts.waiting + counts.active + counts.delayed > 0) {
      this.emptySince.delete(name);
      return;
    }
    const since = this.emptySince.get(name) ?? Date.now();
    this.emptySince.set(name, since);
    if (Date.now() - since < FORGET_AFTER_MS) return;
    await this.redis.srem(this.enginesKey, id);
    this.draining.delete(name);
    this.emptySince.delete(name);
    await this.hub.closeQueue(`${name}#take`);
  }

  /** Takes no more starts or answers, and waits for those being taken (the supervisor still runs). */
  override async stop(): Promise<void> {
    await super.stop();
    if (!this.consuming) return;
    this.consuming = false;
    clearInterval(this.beat);
    await this.beating;
    await Promise.allSettled([
      ...[REQUESTS_QUEUE, RESULTS_QUEUE].map((name) => this.hub.queue(name).pause(true)),
      ...[this.ownQueue, ...this.draining].map((name) => this.hub.consumer(name).pause(true)),
    ]);
    // No longer alive: another engine takes what still comes to this one's queue.
    await this.redis.del(this.aliveKey(this.id)).catch(() => undefined);
  }

  /**
   * At most {@link TAKING} answers are with the supervisor at once, whatever the jobs hold (a
   * freed place goes straight to the next in line). Never rejects: an answer that could not be
   * taken is `failed`, and queued again.
   */
  private async take(result: ResultJob): Promise<HandleResult> {
    if (this.taking < TAKING) this.taking++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      const handled = await this.supervisor.receive({ type: 'result', requestId: result.requestId, result });
      if (handled !== 'failed') this.bus.emit('StepAnswered', result);
      return handled;
    } catch (err) {
      this.logger.error('answer not taken', { requestId: result.requestId, runId: result.runId, error: err instanceof Error ? err.message : String(err) });
      return 'failed';
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.taking--;
    }
  }

  /** Back on the queue after 1, 2, 4 … 60 s: an answer that keeps failing fails few of the commits batched with it. */
  private async requeue(answers: ResultJob[]): Promise<void> {
    const again = answers.map((a) => ({ ...a, requeued: (a.requeued ?? 0) + 1 }));
    const dropped = again.filter((a) => a.requeued > MAX_REQUEUES);
    if (dropped.length > 0) this.logger.warn('answers not committed after retries, left to their leases', { runIds: dropped.map((a) => a.runId) });
    const byDelay = new Map<number, ResultJob[]>();
    for (const a of again) {
      if (a.requeued > MAX_REQUEUES) continue;
      const delay = Math.min(MAX_REQUEUE_DELAY_MS, REQUEUE_DELAY_MS * 2 ** (a.requeued - 1));
      const same = byDelay.get(delay);
      if (same) same.push(a);
      else byDelay.set(delay, [a]);
    }
    for (const [delay, kept] of byDelay) {
      try {
        await this.hub.queue(RESULTS_QUEUE).add(kept.length === 1 ? kept[0]! : { type: 'batch', results: kept }, { delay });
      } catch (err) {
        // The job fails, and these runs' leases bring them back.
        this.logger.error('answers not queued again, left to their leases', { runIds: kept.map((a) => a.runId), error: err instanceof Error ? err.message : String(err) });
        throw err;
      }
    }
  }
}
