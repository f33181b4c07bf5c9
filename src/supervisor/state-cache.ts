/**
 * The request states a supervisor keeps between events. A state is *active* while the
 * request's next event will reach this process: a module answering on its bus, a timer it
 * armed. It is *parked* once every open run of the request can be answered to any engine
 * (a queue step's result, taken from the shared results queue by whichever engine is free;
 * a `202` callback, posted to any API): in distributed mode most of those answers go to
 * another engine, which reads the request from the store and finishes it there, and this
 * process would never hear of it again.
 *
 * Admission control counts the active states only (`size`): parked ones are not in flight
 * here, and before they were parked an engine's count grew with every request another engine
 * finished, until it admitted nothing (1,381 stale of 3,000 after one bench batch with two
 * engines). Parked states are kept, at most {@link MAX_PARKED}, oldest dropped first, because
 * the answer often comes back here (always with one engine): the state is then used again
 * without a read. A parked state may be stale; the commit's `rev` guard refuses a decision
 * built on it, and the supervisor reads the request again.
 */
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline } from '../pipeline/types';
import type { RequestRecord } from '../model';
import { markRunWaiting } from './commit-rows';
import type { RequestState } from './decision';

/** The most parked states kept per process. */
export const MAX_PARKED = 10_000;

export class StateCache {
  private readonly active = new Map<string, RequestState>();
  private readonly parked = new Map<string, RequestState>();

  constructor(private readonly maxParked = MAX_PARKED) {}

  /** Active states: the requests in flight in this process. */
  get size(): number {
    return this.active.size;
  }

  /** Parked states, for tests and metrics. */
  get parkedCount(): number {
    return this.parked.size;
  }

  has(id: string): boolean {
    return this.active.has(id) || this.parked.has(id);
  }

  /** The state, made active again if it was parked (an event for it is being handled here). */
  get(id: string): RequestState | undefined {
    const state = this.active.get(id);
    if (state) return state;
    const parked = this.parked.get(id);
    if (parked) {
      this.parked.delete(id);
      this.active.set(id, parked);
    }
    return parked;
  }

  set(id: string, state: RequestState): void {
    this.parked.delete(id);
    this.active.set(id, state);
  }

  delete(id: string): void {
    this.active.delete(id);
    this.parked.delete(id);
  }

  /** The active states (the runs this process has with a module are among theirs). */
  entries(): IterableIterator<[string, RequestState]> {
    return this.active.entries();
  }

  /**
   * A run a module accepted for later (`202`): marked waiting in the state, if this process has
   * it, which is then parked if nothing else of the request is answered here.
   */
  runWaiting(id: string, runId: string, until: number, pipelineOf: (request: RequestRecord) => CompiledPipeline | undefined): void {
    const state = this.active.get(id) ?? this.parked.get(id);
    const run = state?.open.get(runId);
    if (!state || !run) return;
    markRunWaiting(run, until);
    if (this.active.has(id)) this.parkIfRemote(id, pipelineOf(state.request));
  }

  /** Parks the request's state if every open run of it can be answered to another engine ({@link remoteOnly}). */
  parkIfRemote(id: string, pipeline: CompiledPipeline | undefined): void {
    const state = this.active.get(id);
    if (!state || !pipeline || !remoteOnly(pipeline, state)) return;
    this.active.delete(id);
    this.parked.set(id, state);
    if (this.parked.size > this.maxParked) this.parked.delete(this.parked.keys().next().value!);
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
