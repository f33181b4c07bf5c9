/**
 * The supervisor's pure core: `decide(pipeline, state, outcome, env) → decision`. It reads
 * no clock, store or network (time and ids come in through `env`), so it is tested with
 * tables. The shell commits the decision, then performs it.
 */
import { evaluateCondition, findRoute } from '../conditions';
import type { StepError } from '../errors';
import type { RequestCommit, RequestError, RequestRecord, RequestStatus, StepRunRecord, Transport } from '../model';
import type { CompiledCondition, CompiledPipeline, CompiledStep, RetryPolicy } from '../pipeline/types';
import { applyAssign } from './assign';
import { unresumableParams } from './resumable';

export { applyDecision } from './state';

/** An open run as the supervisor tracks it. */
export interface OpenRun {
  id: string;
  stepId: string;
  attempt: number;
  seq: number;
  status: 'pending' | 'dispatched' | 'waiting';
  availableAt: number | null;
  /** For a retry: the first attempt's run. For a repeated poll: the previous poll. */
  causedBy: string | null;
  deadlineAt?: number | null;
  waitEvent?: string | null;
  waitKey?: string | null;
  override?: Record<string, unknown> | null;
  /** When the run was inserted (its attempt span starts then, or at `availableAt` if later). */
  startedAt?: number;
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

/** Step errors that mean "the wait ran out", which the step's `onTimeout` route handles. */
export const WAIT_TIMEOUT = 'CONVEYOR_ERR_WAIT_TIMEOUT';

export type Outcome =
  | { type: 'start' }
  | { type: 'completed'; runId: string; output: unknown; finishedAt: number; durationMs: number; via?: 'event' | 'action'; trace?: string }
  | { type: 'failed'; runId: string; error: StepError; finishedAt: number; durationMs: number; trace?: string }
  /** An operator retries the step that failed, optionally with edited params. */
  | { type: 'resume'; params?: Record<string, unknown> }
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
  /** Set when the request ends with this decision. */
  finished?: RequestStatus;
  /** Human-readable facts for the log: `retry scheduled`, `join waiting`, ... */
  notes: Array<{ message: string; fields: Record<string, unknown> }>;
}

/** Step kinds that hold a request without work in flight: the request is `waiting` on them. */
const HOLDING_KINDS: ReadonlySet<string> = new Set(['wait', 'action', 'delay']);

/** Computes the delay before attempt `nextAttempt` (2 for the first retry). */
export function computeBackoff(policy: RetryPolicy, nextAttempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.backoffMs * policy.factor ** Math.max(0, nextAttempt - 2));
  const spread = base * policy.jitter * (2 * random - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(base + spread)));
}

/** True when one entry holds (siblings are "or", nested `success` entries are "and"). */
export function anyHolds(entries: readonly CompiledCondition[], context: Record<string, unknown>): boolean {
  return entries.some((c) => evaluateCondition(c, context) && (!c.success || anyHolds(c.success, context)));
}

/**
 * Decides what follows an outcome. Returns `null` when the outcome is not news: a result for
 * a run that is no longer open (a duplicate delivery), a start for a request that started,
 * or an operator command that does not apply to the request's status.
 */
export function decide(pipeline: CompiledPipeline, state: RequestState, outcome: Outcome, env: DecisionEnv): Decision | null {
  const b = new DecisionBuilder(pipeline, state, env);
  const status = state.request.status;
  switch (outcome.type) {
    case 'start':
      if (status !== 'buffered') return null;
      b.startRuns([pipeline.start], null);
      return b.finish();
    case 'completed':
    case 'failed': {
      const run = state.open.get(outcome.runId);
      if (!run || !isLive(status)) return null;
      // A step's `assign` is rendered once its output is known; if it cannot be, the step fails.
      const assignError = outcome.type === 'completed' ? b.assign(run, outcome.output) : undefined;
      b.closeRun(run, outcome, assignError);
      if (outcome.type === 'failed') b.onFailed(run, outcome.error);
      else if (assignError) b.onFailed(run, assignError);
      else b.onCompleted(run, outcome.output, outcome.via);
      return b.finish();
    }
    case 'resume':
      if (status !== 'error_stop' || !b.resume(outcome.params)) return null;
      return b.finish();
    case 'stop':
      if (status === 'completed' || status === 'stopped') return null;
      b.stop();
      return b.finish();
  }
}

function isLive(status: RequestStatus): boolean {
  return status === 'running' || status === 'waiting';
}

class DecisionBuilder {
  private status: RequestStatus;
  private error: RequestError | null;
  private readonly joins: Record<string, string[]>;
  private stepCount: number;
  private seq: number;
  private finishRun: RequestCommit['finishRun'];
  private closedRunId: string | null = null;
  private readonly newRuns: StepRunRecord[] = [];
  private readonly outputs: Decision['outputs'] = [];
  private readonly context: Record<string, unknown>;
  private vars: Record<string, unknown>;
  private assigned: Record<string, unknown> | undefined;
  private stopAll = false;
  private readonly notes: Decision['notes'] = [];

  constructor(
    private readonly pipeline: CompiledPipeline,
    private readonly state: RequestState,
    private readonly env: DecisionEnv,
  ) {
    const r = state.request;
    this.status = r.status === 'buffered' ? 'running' : r.status;
    this.error = r.error;
    this.joins = structuredClone(r.joins);
    this.stepCount = r.stepCount;
    this.seq = state.lastSeq;
    this.context = { ...state.context };
    this.vars = r.vars ?? {};
  }

  /** Renders the step's `assign` into `vars`; returns the step's error when that fails. */
  assign(run: OpenRun, output: unknown): StepError | undefined {
    const assign = this.pipeline.steps[run.stepId]?.assign;
    if (!assign) return undefined;
    const result = applyAssign(run.stepId, assign, this.vars, { ...this.context, [run.stepId]: output });
    if ('error' in result) return result.error;
    this.vars = result.vars;
    this.assigned = result.assigned;
    this.context.vars = result.vars;
    return undefined;
  }

  /** Closes the run; a run whose `assign` failed keeps its output and fails with that error. */
  closeRun(run: OpenRun, o: Extract<Outcome, { finishedAt: number }>, assignError?: StepError): void {
    this.closedRunId = run.id;
    this.finishRun = {
      id: run.id,
      status: o.type === 'completed' && !assignError ? 'completed' : 'failed',
      output: o.type === 'completed' ? o.output : undefined,
      error: o.type === 'failed' ? o.error : assignError,
      finishedAt: o.finishedAt,
      durationMs: o.durationMs,
    };
    if (this.assigned) this.finishRun.assigned = this.assigned;
  }

  private setOutput(stepId: string, value: unknown): void {
    this.context[stepId] = value;
    this.outputs.push({ stepId, value });
  }

  onCompleted(run: OpenRun, output: unknown, via?: 'event' | 'action'): void {
    const step = this.pipeline.steps[run.stepId];
    this.setOutput(run.stepId, output);
    if (!step) return this.fail(run, { code: 'CONVEYOR_ERR_UNKNOWN_STEP', message: `step "${run.stepId}" is not in pipeline version ${this.state.request.version}` });
    switch (step.kind) {
      case 'stop':
        this.status = step.status;
        this.stopAll = true;
        return;
      case 'loop': {
        const iteration = Number((output as { iteration?: unknown } | null)?.iteration ?? 0);
        return this.routeTo(iteration <= step.max ? [step.target] : step.onExhausted, step.id, run.id);
      }
      case 'wait':
        if (step.poll && via !== 'event' && (output as Record<string, unknown> | null)?.[step.poll.doneField] !== true) {
          // Not done yet: poll again after the interval, keeping the wait's deadline and key.
          this.addRun(step, 1, run.id, this.env.now + step.poll.everyMs, run);
          return;
        }
        break;
      case 'action': {
        const code = (output as { action?: unknown } | null)?.action;
        const chosen = typeof code === 'string' ? step.actions[code] : undefined;
        if (chosen?.result) return this.routeTo(chosen.result, step.id, run.id);
        break;
      }
      default:
        break;
    }
    this.routeTo(findRoute(step.condition, this.context) ?? step.next, run.stepId, run.id);
  }

  onFailed(run: OpenRun, error: StepError): void {
    const step = this.pipeline.steps[run.stepId];
    if (step && error.code === WAIT_TIMEOUT && (step.kind === 'wait' || step.kind === 'action') && step.onTimeout.length > 0) {
      this.notes.push({ message: 'wait timed out', fields: { stepId: run.stepId, onTimeout: step.onTimeout } });
      return this.routeTo(step.onTimeout, run.stepId, run.id);
    }
    if (step && error.retryable) {
      const policy = this.env.retryPolicy(step);
      if (run.attempt < policy.attempts) {
        const delay = computeBackoff(policy, run.attempt + 1, this.env.random());
        this.addRun(step, run.attempt + 1, idempotencyKeyOf(run), this.env.now + delay, run);
        this.notes.push({ message: 'retry scheduled', fields: { stepId: run.stepId, attempt: run.attempt + 1, delayMs: delay } });
        return;
      }
    }
    if (step && step.kind === 'module' && step.onError.length > 0) {
      this.notes.push({ message: 'error route taken', fields: { stepId: run.stepId, onError: step.onError } });
      this.routeTo(step.onError, run.stepId, run.id);
      return;
    }
    this.fail(run, error);
  }

  /** Retries the step that failed; refuses errors that are not a step's (joins, limits). */
  resume(params?: Record<string, unknown>): boolean {
    const e = this.state.request.error;
    const step = e ? this.pipeline.steps[e.stepId] : undefined;
    if (!e || !step || e.code === 'CONVEYOR_ERR_JOIN_INCOMPLETE' || e.code === 'CONVEYOR_ERR_MAX_STEPS') return false;
    // Only the params the step lists as fixable may be replaced (seed 000 §8: fix, never ignore).
    if (unresumableParams(step, params).length > 0) return false;
    this.status = 'running';
    this.error = null;
    this.addRun(step, 1, e.runId || null, null, undefined, params);
    this.notes.push({ message: 'request resumed', fields: { stepId: step.id, editedParams: params !== undefined } });
    return true;
  }

  stop(): void {
    this.status = 'stopped';
    this.stopAll = true;
  }

  private fail(run: OpenRun, error: Omit<StepError, 'retryable'> & { retryable?: boolean }): void {
    this.status = 'error_stop';
    this.error = { stepId: run.stepId, runId: run.id, attempt: run.attempt, code: error.code, message: error.message, details: error.details };
    this.stopAll = true;
  }

  startRuns(targets: string[], causedBy: string | null): void {
    for (const t of targets) {
      const step = this.pipeline.steps[t];
      if (step) this.enter(step, causedBy);
    }
  }

  private routeTo(targets: string[], fromStep: string, causedBy: string): void {
    for (const target of targets) {
      const step = this.pipeline.steps[target];
      if (!step) continue; // validation rules this out for the pinned version
      if (step.join === 'all') {
        const arrived = new Set([...(this.joins[target] ?? []), fromStep]);
        if (!step.prev.every((p) => arrived.has(p))) {
          this.joins[target] = [...arrived];
          this.notes.push({ message: 'join waiting', fields: { stepId: target, arrived: [...arrived], prev: step.prev } });
          continue;
        }
        delete this.joins[target];
      }
      this.enter(step, causedBy);
    }
  }

  /** Starts a step. An action step whose `when` does not hold completes at once and routes on. */
  private enter(step: CompiledStep, causedBy: string | null): void {
    if (step.kind === 'action' && step.when.length > 0 && !anyHolds(step.when, this.context)) {
      if (this.stepCount + this.newRuns.length >= this.pipeline.maxSteps) {
        this.addRun(step, 1, causedBy, null);
        return;
      }
      const output = { skipped: true, reason: 'no "when" entry held' };
      const run = this.addRun(step, 1, causedBy, null);
      Object.assign(run, { status: 'completed', output, finishedAt: this.env.now, durationMs: 0 });
      this.setOutput(step.id, output);
      this.notes.push({ message: 'action not required', fields: { stepId: step.id } });
      return this.routeTo(findRoute(step.condition, this.context) ?? step.next, step.id, run.id);
    }
    const delay = step.kind === 'delay' ? this.env.now + step.durationMs : null;
    this.addRun(step, 1, causedBy, delay);
  }

  private addRun(
    step: CompiledStep, attempt: number, causedBy: string | null, availableAt: number | null,
    carry?: OpenRun, override?: Record<string, unknown>,
  ): StepRunRecord {
    const holds = (step.kind === 'wait' && !step.poll) || step.kind === 'action';
    const timeoutMs = step.kind === 'wait' || step.kind === 'action' ? step.timeoutMs : undefined;
    const deadlineAt = carry?.deadlineAt ?? (timeoutMs !== undefined ? this.env.now + timeoutMs : null);
    const run: StepRunRecord = {
      id: this.env.newId(),
      requestId: this.state.request.id,
      pipelineId: this.pipeline.id,
      stepId: step.id,
      seq: ++this.seq,
      attempt,
      status: holds ? 'waiting' : availableAt === null ? 'dispatched' : 'pending',
      kind: step.kind,
      module: step.kind === 'module' ? step.subsystem : step.kind === 'wait' && step.poll ? step.poll.subsystem : null,
      transport: this.env.transportOf(step),
      params: null,
      output: null,
      error: null,
      causedBy,
      availableAt,
      leaseUntil: holds ? deadlineAt : null,
      waitEvent: carry?.waitEvent ?? (step.kind === 'wait' && step.event ? step.event.name : null),
      waitKey: carry?.waitKey ?? null,
      deadlineAt,
      override: override ?? carry?.override ?? null,
      // A delay starts now and ends at availableAt; a retry or a later poll starts when it is due.
      startedAt: step.kind === 'delay' ? this.env.now : availableAt ?? this.env.now,
      finishedAt: null,
      durationMs: null,
    };
    this.newRuns.push(run);
    return run;
  }

  finish(): Decision {
    const now = this.env.now;
    let newRuns = this.newRuns;
    if (!this.stopAll && this.stepCount + newRuns.length > this.pipeline.maxSteps) {
      const run = this.closedRunId ? this.state.open.get(this.closedRunId) : undefined;
      this.status = 'error_stop';
      this.error = {
        stepId: run?.stepId ?? this.pipeline.start, runId: run?.id ?? '', attempt: run?.attempt ?? 0,
        code: 'CONVEYOR_ERR_MAX_STEPS', message: `request reached the pipeline's limit of ${this.pipeline.maxSteps} step runs`,
      };
      this.stopAll = true;
    }
    if (this.stopAll) newRuns = [];
    const stillOpen = [...this.state.open.keys()].filter((id) => id !== this.closedRunId);
    const cancelRuns = this.stopAll ? stillOpen : [];
    const openAfter = this.stopAll ? [] : [...stillOpen.map((id) => this.state.open.get(id)!.stepId), ...newRuns.filter((r) => r.status !== 'completed').map((r) => r.stepId)];
    if (!this.stopAll && openAfter.length === 0) {
      const waiting = Object.keys(this.joins);
      if (waiting.length > 0) {
        const run = this.closedRunId ? this.state.open.get(this.closedRunId) : undefined;
        this.status = 'error_stop';
        this.error = {
          stepId: waiting[0] ?? '', runId: run?.id ?? '', attempt: run?.attempt ?? 0, code: 'CONVEYOR_ERR_JOIN_INCOMPLETE',
          message: `join step "${waiting[0]}" can never start: ${JSON.stringify(this.joins[waiting[0] ?? ''])} arrived, it waits for ${JSON.stringify(this.pipeline.steps[waiting[0] ?? '']?.prev ?? [])}`,
        };
      } else if (isLive(this.status)) {
        this.status = 'completed';
      }
    } else if (isLive(this.status)) {
      // Waiting: every open run is an engine-held wait (event, action, delay); nothing is in flight.
      this.status = openAfter.every((id) => HOLDING_KINDS.has(this.pipeline.steps[id]?.kind ?? '')) ? 'waiting' : 'running';
    }
    const ended = !isLive(this.status);
    this.stepCount += newRuns.length;
    return {
      commit: {
        requestId: this.state.request.id,
        expectRev: this.state.request.rev,
        request: {
          status: this.status,
          error: this.error,
          joins: this.joins,
          stepCount: this.stepCount,
          finishedAt: ended ? now : null,
          updatedAt: now,
          ...(this.assigned ? { vars: this.vars } : {}),
        },
        finishRun: this.finishRun,
        cancelRuns,
        insertRuns: newRuns,
      },
      dispatch: newRuns.filter((r) => r.status === 'dispatched'),
      schedule: newRuns.filter((r) => r.status === 'pending'),
      outputs: this.outputs,
      finished: ended ? this.status : undefined,
      notes: this.notes,
    };
  }
}
