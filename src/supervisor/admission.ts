/**
 * Admission control: at most `max` requests in flight in this process. A start beyond that
 * is not kept in memory: the request stays `buffered` in the store (where intake already put
 * it), and is pulled back, oldest release first, as room frees. So 100,000 requests
 * submitted at once cost rows, not heap.
 *
 * In flight = the requests whose state the supervisor keeps (running ones) plus the starts
 * under way. Several engine processes may pull the same request: its start is a guarded
 * commit, so one of them starts it and the others find it running.
 *
 * A second bound, `maxBacklog`, counts only the requests that are waiting for the store: the
 * step commits handed to the group commit and not answered yet, plus the starts under way
 * (intake's inserts of new requests do not count). A new start is admitted only while that
 * backlog is under it. The bound is soft: a pull is sized to the room when it asks, and the
 * starts it reads are admitted on the in-flight cap alone, so the backlog may pass the bound
 * by up to one pull while the requests already running hand in their next commits.
 *
 * A request whose module is still working (an HTTP call, a worker's queue, a timer) has no
 * write waiting, so it does not count: with slow modules, up to `max` requests stay in
 * flight. With fast in-process modules every request in flight has a commit waiting, and the
 * backlog keeps the engine from taking on more requests than its store can write in a batch
 * or two. On SQLite, whose writes run on the engine's own thread, commits queued beyond that
 * only wait, holding their records through young-generation collections: with 5,000 requests
 * at once the engine spent ~65% more CPU a request with 4,000 in flight than with its backlog
 * held at 250 (docs/performance.md, "Admission by the store's backlog").
 */
import type { Logger } from '../log/logger';

/** How many starts one pull asks the store for, at most. */
const PULL_CHUNK = 500;
/** A room smaller than a chunk is still filled after this long (ms), so a backlog never starves. */
const PULL_EVERY_MS = 200;
/** How often the store is checked for waiting starts in any case (see `Admission.start`). */
const TICK_MS = 1000;

export interface AdmissionDeps {
  /** Requests whose state the supervisor keeps in memory. */
  cached(): number;
  /** Ids of `buffered` requests released before `before`, oldest release first. */
  listStartable(before: number, limit: number): Promise<string[]>;
  /**
   * Hands the requests one pull found to the supervisor as starts, all at once: it reads
   * their rows in one query, so a start needs no read of its own (a 20,000 burst made
   * 16,000 single-row reads here before).
   */
  start(requestIds: string[]): void;
  logger: Logger;
  /** Step commits handed to the store and not answered yet (`GroupCommitter.pendingCommits`). */
  backlog?(): number;
}

/** What admission control tells of itself (the engine's `admitted`, `/metrics`). */
export interface AdmissionCounts {
  /** Requests in flight in this process. */
  inFlight: number;
  /** Of them, those waiting for the store: step commits not answered yet, and starts under way. */
  waitingForStore: number;
  /** Starts left `buffered` in the store, and starts pulled back from it. */
  deferred: number;
  pulled: number;
}

export class Admission {
  private readonly starting = new Set<string>();
  /** Whether a start was turned away since the store was last found empty of them. */
  private backlog = false;
  private pulling = false;
  private stopped = false;
  private lastPull = 0;
  private ticker: NodeJS.Timeout | undefined;
  /** Starts turned away and starts pulled back, for metrics and tests. */
  readonly stats = { deferred: 0, pulled: 0 };

  constructor(
    private readonly max: number,
    private readonly d: AdmissionDeps,
    /** No new start while this many requests wait for the store (see the file's comment); Infinity: no such bound. */
    private readonly maxBacklog = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * Every second, with room, looks in the store for starts waiting there longer than a tick,
   * whatever the backlog flag says. The flag spares the store a read as each request ends; it
   * is a hint; should it ever miss a start, the start is found here within two seconds.
   */
  start(): void {
    if (Number.isFinite(this.max) || Number.isFinite(this.maxBacklog)) this.ticker = setInterval(() => this.tick(), TICK_MS).unref();
  }

  /** The once-a-second look (see {@link start}); public for tests. */
  tick(): void {
    if (this.pulling || this.stopped || this.room() <= 0) return;
    this.backlog = true;
    this.pull(Date.now() - TICK_MS);
  }

  /** No more pulls: a batch answered after the stop (the engine drains its writes) starts nothing. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
  }

  get inFlight(): number {
    return this.d.cached() + this.starting.size;
  }

  /** The requests waiting for the store: their unanswered step commits and the starts under way. */
  get waitingForStore(): number {
    return (this.d.backlog?.() ?? 0) + this.starting.size;
  }

  /** How many more starts may go ahead now: room under both bounds. */
  private room(): number {
    const inFlight = this.max - this.inFlight;
    return Number.isFinite(this.maxBacklog) ? Math.min(inFlight, this.maxBacklog - this.waitingForStore) : inFlight;
  }

  /** Whether a start would be admitted now (without counting a refusal). */
  hasRoom(): boolean {
    return this.room() > 0;
  }

  /**
   * Whether the start of `requestId` may go ahead now; false leaves it in the store for later.
   * `pulled`: a start this admission's own pull read, sized to the room when it asked; only
   * the cap on requests in flight is checked again (the writes of the starts read with it
   * are what fills the backlog).
   */
  admit(requestId: string, pulled = false): boolean {
    if (this.starting.has(requestId) || (pulled ? this.inFlight < this.max : this.room() > 0)) {
      this.starting.add(requestId);
      return true;
    }
    this.backlog = true;
    this.stats.deferred++;
    return false;
  }

  /** The start of `requestId` is done (committed, refused or no news), or its state is now cached. */
  started(requestId: string): void {
    this.starting.delete(requestId);
  }

  /** Something ended or left memory: pulls waiting starts if there is room. */
  freed(): void {
    if (!this.backlog || this.pulling || this.stopped) return;
    const room = this.room();
    if (room <= 0) return;
    const now = Date.now();
    // A small room waits a little to fill: a quarter of the tighter bound, or a chunk.
    if (room < Math.min(PULL_CHUNK, this.max / 4, this.maxBacklog / 4) && now - this.lastPull < PULL_EVERY_MS) return;
    this.pull(now + 1);
  }

  /** Reads up to a room's worth of starts released before `before`, and starts them. */
  private pull(before: number): void {
    const room = this.room();
    if (room <= 0) return;
    this.pulling = true;
    this.lastPull = Date.now();
    const limit = Math.min(room, PULL_CHUNK);
    // A start turned away while this read runs may be stored after it: then the backlog stays.
    const deferredBefore = this.stats.deferred;
    const asked = limit + this.starting.size;
    void this.d.listStartable(before, asked)
      .then((ids) => {
        const unstarted = ids.filter((id) => !this.starting.has(id));
        const fresh = unstarted.slice(0, limit);
        // The store holds no more waiting starts only if the read came back short and this
        // pull starts every one it found. (`starting` may hold requests that are not buffered
        // rows, e.g. started at submit, so a short read can still find more than the room.)
        if (ids.length < asked && unstarted.length <= limit && this.stats.deferred === deferredBefore) this.backlog = false;
        this.stats.pulled += fresh.length;
        if (fresh.length > 0) this.d.start(fresh);
      })
      .catch((err: unknown) => this.d.logger.warn('admission: reading waiting starts failed', { error: (err as Error).message }))
      .finally(() => {
        this.pulling = false;
      });
  }
}
