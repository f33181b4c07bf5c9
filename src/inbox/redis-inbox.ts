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
import { REQUESTS_QUEUE, RESULTS_QUEUE, type QueueHub, type ResultBatchJob, type ResultJob } from '../transports/queue';
import { LocalInbox, type InboxMessage } from './inbox';

/** Answers with the supervisor at once, per engine. */
const TAKING = 1000;
/** An answer that could not be committed is queued again after 1 s, then twice as long each time up to 60 s, at most {@link MAX_REQUEUES} times (about 5 minutes in all). */
const REQUEUE_DELAY_MS = 1000;
const MAX_REQUEUE_DELAY_MS = 60_000;
const MAX_REQUEUES = 10;

export class RedisInbox extends LocalInbox {
  private consuming = false;
  private taking = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    supervisor: Pick<Supervisor, 'receive'> & Partial<Pick<Supervisor, 'startNew'>>,
    bus: Bus,
    private readonly hub: QueueHub,
    private readonly logger: Logger,
  ) {
    super(supervisor, bus);
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
    void this.hub.queue(RESULTS_QUEUE).process(50, async (job) => {
      const data = job.data as ResultJob | ResultBatchJob;
      const answers = data.type === 'batch' ? data.results : [data];
      const outcomes = await Promise.all(answers.map((r) => this.take(r)));
      // Not committed (this engine is stopping, the commit failed or was refused again and
      // again): back on the queue for any engine, a second later and then less often, rather
      // than acknowledged and left to the run's lease.
      const again = answers.filter((_, i) => outcomes[i] === 'failed');
      if (again.length > 0) await this.requeue(again);
      return outcomes;
    });
  }

  /** Takes no more starts or answers, and waits for those being taken (the supervisor still runs). */
  override async stop(): Promise<void> {
    await super.stop();
    if (!this.consuming) return;
    this.consuming = false;
    await Promise.allSettled([REQUESTS_QUEUE, RESULTS_QUEUE].map((name) => this.hub.queue(name).pause(true)));
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
