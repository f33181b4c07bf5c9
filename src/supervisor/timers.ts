/**
 * The supervisor's clocks. In memory, one timer per pending run (a retry's backoff, a delay,
 * a poll's next interval) and per start held back by a `rate` policy. In the store, the
 * sweeper: the durable timer wheel that finds due pending runs, expired leases, waits past
 * their deadline and starts left buffered, whoever armed them and whatever crashed since.
 * Each of them becomes an inbox message handed back to the supervisor.
 */
import type { Logger } from '../log/logger';
import { ACTIVE_STATUSES } from '../model';
import type { Store } from '../store/store';
import type { InboxMessage } from './messages';

/** Longest single setTimeout; longer waits re-arm. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const SWEEP_BATCH = 200;

export interface TimerOptions {
  sweepIntervalMs: number;
  leaseGraceMs: number;
  queueLeaseMs: number;
  sweepBuffered: boolean;
}

export class SupervisorTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private stopped = false;
  /** When expired leases were last read. */
  private leasesSweptAt = -Infinity;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly o: TimerOptions,
    /** Where what comes due goes: the supervisor's `receive`. */
    private readonly receive: (m: InboxMessage) => void,
  ) {}

  /** Starts the sweeper. */
  start(): void {
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.sweeper);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** An in-memory timer for a pending run (the sweeper is the durable fallback). */
  arm(requestId: string, runId: string, at: number): void {
    this.set(runId, at, { type: 'due', requestId, runId, claimed: false });
  }

  /** A start held back by a `rate` policy is tried again as a moment frees up. */
  retryStart(requestId: string, at: number): void {
    this.set(`start:${requestId}`, at, { type: 'start', requestId });
  }

  private set(key: string, at: number, message: InboxMessage): void {
    clearTimeout(this.timers.get(key));
    const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS);
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      this.receive(message);
    }, delay));
  }

  /** The durable timer wheel: due pending runs, expired leases, and lost starts. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const lease = now + this.o.leaseGraceMs;
      for (const c of await this.store.claimDueRuns(now, lease, SWEEP_BATCH)) {
        clearTimeout(this.timers.get(c.id));
        this.timers.delete(c.id);
        this.receive({ type: 'due', requestId: c.requestId, runId: c.id, claimed: true });
      }
      // A queued run may wait long behind a rate limit: re-queueing it is idempotent (job id),
      // so it gets the long queue lease again rather than the short one.
      const leaseFor = (transport: string | null): number => (transport === 'queue' ? now + this.o.queueLeaseMs : lease);
      // Expired leases are read at the first sweep after a quarter of the shortest lease has
      // passed, not at every sweep: the read goes through every attempt in flight (a lease is not
      // in an index, or every step would move its request in it), and a lease set by a step runs
      // at least that long. (One ended at a shutdown is found as late.) A full batch is followed
      // by another at the next sweep.
      if (now - this.leasesSweptAt >= Math.min(this.o.leaseGraceMs, this.o.queueLeaseMs) / 4) {
        const expired = await this.store.claimExpiredLeases(now, leaseFor, SWEEP_BATCH);
        this.leasesSweptAt = expired.length >= SWEEP_BATCH ? -Infinity : now;
        for (const c of expired) this.receive({ type: 'lease-expired', requestId: c.requestId, runId: c.id });
      }
      for (const c of await this.store.claimExpiredWaits(now, SWEEP_BATCH)) {
        this.receive({ type: 'wait-expired', requestId: c.requestId, runId: c.id });
      }
      if (this.o.sweepBuffered) {
        for (const id of await this.store.listStaleBuffered(now - 5 * this.o.sweepIntervalMs, SWEEP_BATCH)) this.receive({ type: 'start', requestId: id });
      }
    } catch (err) {
      this.logger.warn('sweep failed', { error: (err as Error).message });
    } finally {
      this.sweeping = false;
    }
  }
}

/**
 * Single-process recovery: every unfinished request continues from its last committed step.
 * Open runs are sent again (at least once; the idempotency key lets modules drop duplicates)
 * and pending timers are re-armed. With several processes, leases do this.
 */
export async function recoverAll(store: Pick<Store, 'listRequestIds'>, receive: (m: InboxMessage) => Promise<unknown>, pageSize: number): Promise<number> {
  let after = '';
  let count = 0;
  for (;;) {
    const ids = await store.listRequestIds(ACTIVE_STATUSES, pageSize, after);
    if (ids.length === 0) return count;
    await Promise.all(ids.map((id) => receive({ type: 'resend', requestId: id })));
    count += ids.length;
    after = ids[ids.length - 1]!;
  }
}
