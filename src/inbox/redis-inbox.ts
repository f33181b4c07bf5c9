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

export class RedisInbox extends LocalInbox {
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
    void this.hub.queue(REQUESTS_QUEUE).process(20, (job) => this.supervisor.receive({ type: 'start', requestId: (job.data as { requestId: string }).requestId }));
    // A job holds one answer, or the answers a worker had ready together (`QueueHub.addResult`).
    // Each is taken on its own, and they commit together; the job ends once every one has, and
    // fails if one failed: that run's lease brings it back, as for a lone answer.
    void this.hub.queue(RESULTS_QUEUE).process(50, async (job) => {
      const data = job.data as ResultJob | ResultBatchJob;
      if (data.type !== 'batch') return this.take(data);
      const taken = await Promise.allSettled(data.results.map((r) => this.take(r)));
      const failed = taken.find((t) => t.status === 'rejected');
      if (failed) throw failed.reason;
      return taken.map((t) => (t as PromiseFulfilledResult<HandleResult>).value);
    });
  }

  private async take(result: ResultJob): Promise<HandleResult> {
    const handled = await this.supervisor.receive({ type: 'result', requestId: result.requestId, result });
    this.bus.emit('StepAnswered', result);
    return handled;
  }
}
