/**
 * The supervisor core's vocabulary: what it knows of a request between events (`RequestState`,
 * `OpenRun`), what can happen to it (`Outcome`), the effects it is handed (`DecisionEnv`) and
 * what it decides (`Decision`). Types only, and the idempotency key of a run.
 */
import type { StepError } from '../errors';
import type { RequestCommit, RequestRecord, RequestStatus, StepRunRecord, Transport } from '../model';
import type { CompiledStep, RetryPolicy } from '../pipeline/types';

/** An open run as the supervisor tracks it. */
export interface OpenRun {
  id: string;
  stepId: string;
  attempt: number;
  seq: number;
  status: 'pending' | 'dispatched' | 'waiting';
  availableAt: number | null;
  /** For a retry: the first attempt's run. */
  causedBy: string | null;
  /** When the run started (a retry: when it came due). */
  startedAt: number;
  /** A polling wait's polls so far. */
  polls?: number;
  deadlineAt?: number | null;
  waitEvent?: string | null;
  waitKey?: string | null;
  override?: Record<string, unknown> | null;
  /**
   * The whole record when the run is open in its request's row rather than in `step_runs`
   * (`RequestCommit.openRow`): what it is inserted with when it ends.
   */
  row?: StepRunRecord;
}

/** Stable across every attempt of one activation of a step, so a module can drop duplicates. */
export function idempotencyKeyOf(run: { id: string; attempt: number; causedBy: string | null }): string {
  return run.attempt > 1 && run.causedBy ? run.causedBy : run.id;
}

/** What the supervisor knows of one request between events. */
export interface RequestState {
  request: RequestRecord;
  /** `{ payload, request, vars, <stepId>: latest output }` */
  context: Record<string, unknown>;
  open: Map<string, OpenRun>;
  lastSeq: number;
}

export type Outcome =
  | { type: 'start' }
  | { type: 'completed'; runId: string; output: unknown; finishedAt: number; durationMs: number; via?: 'event' | 'action'; trace?: string }
  | { type: 'failed'; runId: string; error: StepError; finishedAt: number; durationMs: number; trace?: string }
  /**
   * An operator retries the step that failed, optionally with edited params, or (after
   * `CONVEYOR_ERR_MAX_STEPS`) continues with a larger step budget.
   */
  | { type: 'resume'; params?: Record<string, unknown>; maxSteps?: number }
  /** An operator stops the request. */
  | { type: 'stop'; reason?: string };

/** The effects a decision needs, passed in so the core stays pure. */
export interface DecisionEnv {
  now: number;
  newId(): string;
  /** 0 ≤ x < 1, for backoff jitter. */
  random(): number;
  retryPolicy(step: CompiledStep): RetryPolicy;
  transportOf(step: CompiledStep): Transport;
}

export interface Decision {
  commit: RequestCommit;
  /** New runs to send as soon as the commit is durable. */
  dispatch: StepRunRecord[];
  /** New runs to send at their `availableAt` (backoff, delay, next poll). */
  schedule: StepRunRecord[];
  /** The output to merge into the context under its step id (the closed run's, then any skipped steps'). */
  outputs: Array<{ stepId: string; value: unknown }>;
  /**
   * The context as the decision leaves it: the request's, with `outputs` merged in and the
   * `vars` an `assign` made. A new object (the state's is not touched); the shell renders the
   * new runs' params with it. Not to be changed.
   */
  context: Record<string, unknown>;
  /** Set when the request ends with this decision. */
  finished?: RequestStatus;
  /** Human-readable facts for the log: `retry scheduled`, `join waiting`, ... */
  notes: Array<{ message: string; fields: Record<string, unknown> }>;
}
