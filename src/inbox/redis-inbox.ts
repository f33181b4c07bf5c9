/**
 * The inbox of distributed mode. Starts and module answers that may reach any process (a
 * callback hits whichever API instance) travel through bull on Redis, so any engine takes
 * them and a crash loses none: a job is acknowledged only once its commit is done or found
 * to be no news. What this process's own bus carries, and commands that await a reply, are
 * decided here, as in one process; commits are guarded by the request's `rev`, so they never
 * race with another engine's.
 */
import type { Bus } from '../bus/bus';
import type { Logger } from '../log/logger';
import type { RequestRecord } from '../model';
import type { Supervisor } from '../supervisor/supervisor';
import { REQUESTS_QUEUE, RESULTS_QUEUE, type QueueHub, type ResultJob } from '../transports/queue';
import { LocalInbox, type InboxMessage } from './inbox';

export class RedisInbox extends LocalInbox {
  constructor(
    supervisor: Pick<Supervisor, 'receive'>,
    bus: Bus,
    private readonly hub: QueueHub,
    private readonly logger: Logger,
  ) {
    super(supervisor, bus);
  }

  /** Starts travel through Redis to whichever engine takes them, so none is started at submit. */
  override startNew(_record: RequestRecord): Promise<boolean> {
    return Promise.resolve(false);
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
      await this.hub.queue(RESULTS_QUEUE).add(job);
      return true;
    }
    return super.post(message);
  }

  /** Also takes any engine's share of the queued starts and results. */
  override start(): void {
    super.start();
    void this.hub.queue(REQUESTS_QUEUE).process(20, (job) => this.supervisor.receive({ type: 'start', requestId: (job.data as { requestId: string }).requestId }));
    void this.hub.queue(RESULTS_QUEUE).process(50, async (job) => {
      const result = job.data as ResultJob;
      const handled = await this.supervisor.receive({ type: 'result', requestId: result.requestId, result });
      this.bus.emit('StepAnswered', result);
      return handled;
    });
  }
}
