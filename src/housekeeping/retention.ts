/**
 * Retention: requests that ended (completed or stopped) longer ago than the retention age are
 * deleted with their step runs and audit, in small batches, yielding between batches so the
 * engine never stalls. `error_stop` requests are kept: they wait for an operator.
 */
import type { Logger } from '../log/logger';
import type { Store } from '../store/store';

export interface RetentionOptions {
  /** Delete requests that ended more than this long ago. */
  maxAgeMs: number;
  /** @default 500 */
  batchSize?: number;
  /** How often to look. @default 60000 */
  intervalMs?: number;
  /** Called with the ids of each batch before it is deleted (e.g. to archive them). */
  beforeDelete?: (ids: string[]) => Promise<void>;
}

/** Prunes once, batch by batch, until nothing is left or `maxBatches` ran. Returns the count. */
export async function pruneOnce(store: Store, o: RetentionOptions, maxBatches = Number.POSITIVE_INFINITY): Promise<number> {
  const before = Date.now() - o.maxAgeMs;
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const ids = await store.pruneFinished(before, o.batchSize ?? 500, o.beforeDelete);
    total += ids.length;
    if (ids.length < (o.batchSize ?? 500)) break;
    await new Promise((r) => setImmediate(r));
  }
  return total;
}

/** Runs `pruneOnce` on an interval; a slow pass is never overlapped by the next. */
export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly store: Store,
    private readonly o: RetentionOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs ?? 60_000);
    this.timer.unref();
  }

  async tick(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const n = await pruneOnce(this.store, this.o, 20);
      if (n > 0) this.logger.info('old requests pruned', { count: n, maxAgeMs: this.o.maxAgeMs });
      return n;
    } catch (err) {
      this.logger.warn('retention failed', { error: (err as Error).message });
      return 0;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
