/**
 * The request states a supervisor keeps between events, and the ones that went stale.
 *
 * In distributed mode a request's next event may reach another engine: a queue step's result
 * is taken from the shared results queue by whichever engine is free, and a `202` callback is
 * posted to any API. That engine reads the request from the store and carries it on; this one
 * never hears of it again, and the state it cached stayed, counted in flight by admission
 * control, until the process ended. Before 2026-12-07 every engine's count so grew with the
 * requests the others finished, until it admitted no new start (1,381 counted, all finished,
 * after one bench batch of 3,000 with two engines).
 *
 * Each state now records when it was last used. Every `checkMs` the supervisor reads the rows
 * of the states idle that long whose open runs may all be answered elsewhere
 * ({@link remoteOnly}) and drops each whose request moved on without this process (a newer
 * `rev`) or ended ({@link MovedStates}). A state still current stays, and stays counted:
 * admission keeps bounding the queue steps and callbacks this engine has outstanding.
 */
import type { Logger } from '../log/logger';
import type { RequestRecord } from '../model';
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline } from '../pipeline/types';
import type { RequestState } from './decision';

export class StateCache {
  private readonly states = new Map<string, RequestState>();
  /** When each state was last used, oldest first (a use moves it to the end). */
  private readonly used = new Map<string, number>();

  /** The requests in flight here (admission control counts them). */
  get size(): number {
    return this.states.size;
  }

  has(id: string): boolean {
    return this.states.has(id);
  }

  /** The state, without counting it as used. */
  peek(id: string): RequestState | undefined {
    return this.states.get(id);
  }

  get(id: string): RequestState | undefined {
    const state = this.states.get(id);
    if (state) this.touch(id);
    return state;
  }

  set(id: string, state: RequestState): void {
    this.states.set(id, state);
    this.touch(id);
  }

  delete(id: string): void {
    this.states.delete(id);
    this.used.delete(id);
  }

  entries(): IterableIterator<[string, RequestState]> {
    return this.states.entries();
  }

  /** The states unused since `before` whose open runs may all be answered to another engine, oldest first, at most `limit`. */
  idleRemote(before: number, limit: number, pipelineOf: (request: RequestRecord) => CompiledPipeline | undefined): RequestState[] {
    const out: RequestState[] = [];
    for (const [id, at] of this.used) {
      if (at >= before || out.length >= limit) break;
      const state = this.states.get(id);
      const pipeline = state && pipelineOf(state.request);
      if (state && pipeline && remoteOnly(pipeline, state)) out.push(state);
    }
    return out;
  }

  private touch(id: string): void {
    this.used.delete(id);
    this.used.set(id, Date.now());
  }
}

/** Whether the request has open runs and each of them is a queue step sent, or waits for a `202` callback. */
export function remoteOnly(pipeline: CompiledPipeline, state: RequestState): boolean {
  if (state.open.size === 0) return false;
  for (const run of state.open.values()) {
    if (run.status === 'waiting') continue;
    if (run.status !== 'dispatched' || deliveryOf(pipeline, run.stepId).transport !== 'queue') return false;
  }
  return true;
}

/** What {@link MovedStates} needs of the supervisor. */
export interface MovedStatesDeps {
  cache: StateCache;
  pipelineOf(request: RequestRecord): CompiledPipeline | undefined;
  /** The stored rows of these requests (those it finds). */
  read(ids: string[]): Promise<RequestRecord[]>;
  /** Some states were dropped: admission has room again. */
  dropped(n: number): void;
  /** Where a failed read is reported (the next check tries again). */
  logger: Pick<Logger, 'warn'>;
}

/** Drops, every `checkMs`, the cached states whose requests moved on in another engine ({@link StateCache}). */
export class MovedStates {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly d: MovedStatesDeps,
    private readonly checkMs: number,
    private readonly limit = 1000,
  ) {}

  start(): void {
    if (this.checkMs > 0) this.timer = setInterval(() => void this.check(), this.checkMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One check: answers how many states it dropped. */
  async check(now = Date.now()): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const idle = this.d.cache.idleRemote(now - this.checkMs, this.limit, this.d.pipelineOf).map((state) => ({ state, rev: state.request.rev, status: state.request.status }));
      if (idle.length === 0) return 0;
      const rows = new Map((await this.d.read(idle.map((s) => s.state.request.id))).map((r) => [r.id, r]));
      let dropped = 0;
      for (const { state, rev, status } of idle) {
        const id = state.request.id;
        const row = rows.get(id);
        // Still the state, unchanged here since it was read, and its request moved on (or ended) without this process.
        const unchanged = this.d.cache.peek(id) === state && state.request.rev === rev;
        if (unchanged && (!row || row.rev !== rev || row.status !== status)) {
          this.d.cache.delete(id);
          dropped++;
        }
      }
      if (dropped > 0) this.d.dropped(dropped);
      return dropped;
    } catch (err) {
      // The store could not answer: the next check tries again.
      this.d.logger.warn('check of cached states failed', { error: err instanceof Error ? err.message : String(err) });
      return 0;
    } finally {
      this.running = false;
    }
  }
}
