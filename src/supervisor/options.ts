/** What the supervisor is built from, and its settings. */
import type { Bus } from '../bus/bus';
import type { Dispatcher } from '../dispatcher/dispatcher';
import type { Logger } from '../log/logger';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from '../pipeline/types';
import type { GroupCommitter } from '../store/group-commit';
import type { Store } from '../store/store';

/** Finds the compiled pipeline a request is pinned to. */
export interface PipelineSource {
  get(pipelineId: string, version: number): Promise<CompiledPipeline>;
  /** The same, when it is at hand without waiting (`PipelineCatalog.cached`); undefined: ask `get`. */
  cached?(pipelineId: string, version: number): CompiledPipeline | undefined;
  retryPolicy(pipeline: CompiledPipeline, step: CompiledStep): RetryPolicy;
}

export interface SupervisorDeps {
  store: Store;
  committer: GroupCommitter;
  bus: Bus;
  dispatcher: Dispatcher;
  pipelines: PipelineSource;
  logger: Logger;
}

export interface SupervisorOptions {
  /** How often to look for due timers, expired leases and lost starts. @default 1000 */
  sweepIntervalMs?: number;
  /**
   * How often (and after how long idle) the states of requests whose open runs may all be
   * answered to another engine are checked against the store, and dropped when another engine
   * carried the request on (`state-cache.ts`); 0 never. @default 5000 (the engine sets 0
   * without Redis: one process alone carries every request itself)
   */
  staleCheckMs?: number;
  /** Added to a step's timeout to make its lease. @default 10000 */
  leaseGraceMs?: number;
  /** Lease of a run handed to a queue (it may wait there, rate-limited). @default 600000 */
  queueLeaseMs?: number;
  /** Look for requests whose start was lost (only needed when starts travel over Redis). */
  sweepBuffered?: boolean;
  /**
   * Commit new runs as due-now `pending` instead of sending them: for an API-only process,
   * whose decisions (actions, resume) the engines' sweepers then carry out.
   */
  deferDispatch?: boolean;
  /**
   * The admin alert channels configured (`webhook`, `module:<name>`): a commit that stops a
   * request on an error also writes one alert row per channel. @default none
   */
  alertChannels?: string[];
  /**
   * Admission control: at most this many requests in flight in this process (running, with
   * their state in memory); further starts stay buffered in the store and are taken oldest
   * first as others end. 0: no cap. `CONVEYOR_MAX_IN_FLIGHT`. @default 4000
   */
  maxInFlight?: number;
  /**
   * Admission control's second bound: no new start while this many requests wait for the
   * store (step commits handed to the group commit and not answered yet, and starts under
   * way). Requests whose modules are still working do not count. 0: no such bound
   * (`src/supervisor/admission.ts`). `CONVEYOR_MAX_BACKLOG`. @default 0 (the engine sets
   * {@link SQLITE_MAX_BACKLOG} on SQLite)
   */
  maxBacklog?: number;
}

/**
 * The engine's {@link SupervisorOptions.maxBacklog} on SQLite, whose writes run on the engine's
 * own thread. Measured with 5,000 requests at once (docs/performance.md, "Admission by the
 * store's backlog"): 35–45% more requests a second than without the bound. MySQL has none:
 * there a batch waits on round trips, and more requests in flight fill the batches (the same
 * bound at 1,000–2,000 cost it 10–20%).
 */
export const SQLITE_MAX_BACKLOG = 250;
