/**
 * The supervisor's pure core: `decide(pipeline, state, outcome, env) → decision`. It reads
 * no clock, store or network (time and ids come in through `env`), so it is tested with
 * tables. The shell commits the decision, then performs it.
 */
import { findRoute } from '../conditions';
import type { StepError } from '../errors';
import type { RequestCommit, RequestError, RequestRecord, RequestStatus, StepRunRecord, Transport } from '../model';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from '../pipeline/types';

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
}

/** Stable across every attempt of one activation of a step, so a module can drop duplicates. */
export function idempotencyKeyOf(run: { id: string; attempt: number; causedBy: string | null }): string {
  return run.attempt > 1 && run.causedBy ? run.causedBy : run.id;
}

/** What the supervisor knows of one request between events. */
export interface RequestState {
  request: RequestRecord;
  /** `{ payload, request, <stepId>: latest output }` */
  context: Record<string, unknown>;
  open: Map<string, OpenRun>;
  lastSeq: number;
}

export type Outcome =
  | { type: 'start' }
  | { type: 'completed'; runId: string; output: unknown; finishedAt: number; durationMs: number }
  | { type: 'failed'; runId: string; error: StepError; finishedAt: number; durationMs: number };

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
  /** New runs to send at their `availableAt` (backoff). */
  schedule: StepRunRecord[];
  /** The output to merge into the context under its step id. */
  output?: { stepId: string; value: unknown };
  /** Set when the request ends with this decision. */
  finished?: RequestStatus;
  /** Human-readable facts for the log: `retry scheduled`, `join waiting`, ... */
  notes: Array<{ message: string; fields: Record<string, unknown> }>;
}

/** Computes the delay before attempt `nextAttempt` (2 for the first retry). */
export function computeBackoff(policy: RetryPolicy, nextAttempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.backoffMs * policy.factor ** Math.max(0, nextAttempt - 2));
  const spread = base * policy.jitter * (2 * random - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(base + spread)));
}

/**
 * Decides what follows an outcome. Returns `null` when the outcome is not news: a result for
 * a run that is no longer open (a duplicate delivery), or a start for a request that started.
 */
export function decide(pipeline: CompiledPipeline, state: RequestState, outcome: Outcome, env: DecisionEnv): Decision | null {
  const b = new DecisionBuilder(pipeline, state, env);
  switch (outcome.type) {
    case 'start':
      if (state.request.status !== 'buffered') return null;
      b.startRuns([pipeline.start], null);
      return b.finish();
    case 'completed': {
      const run = state.open.get(outcome.runId);
      if (!run || !isLive(state.request.status)) return null;
      b.closeRun(run, 'completed', outcome);
      b.onCompleted(run, outcome.output);
      return b.finish();
    }
    case 'failed': {
      const run = state.open.get(outcome.runId);
      if (!run || !isLive(state.request.status)) return null;
      b.closeRun(run, 'failed', outcome);
      b.onFailed(run, outcome.error);
      return b.finish();
    }
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
  private output: Decision['output'];
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
  }

  closeRun(run: OpenRun, status: 'completed' | 'failed', o: Extract<Outcome, { finishedAt: number }>): void {
    this.closedRunId = run.id;
    this.finishRun = {
      id: run.id,
      status,
      output: o.type === 'completed' ? o.output : undefined,
      error: o.type === 'failed' ? o.error : undefined,
      finishedAt: o.finishedAt,
      durationMs: o.durationMs,
    };
  }

  onCompleted(run: OpenRun, output: unknown): void {
    const step = this.pipeline.steps[run.stepId];
    this.output = { stepId: run.stepId, value: output };
    if (!step) return this.fail(run, { code: 'CONVEYOR_ERR_UNKNOWN_STEP', message: `step "${run.stepId}" is not in pipeline version ${this.state.request.version}`, retryable: false });
    if (step.kind === 'stop') {
      this.status = step.status;
      this.stopAll = true;
      return;
    }
    const context = { ...this.state.context, [run.stepId]: output };
    const route = findRoute(step.condition, context) ?? step.next;
    this.routeTo(route, run.stepId, run.id);
  }

  onFailed(run: OpenRun, error: StepError): void {
    const step = this.pipeline.steps[run.stepId];
    if (step && error.retryable) {
      const policy = this.env.retryPolicy(step);
      if (run.attempt < policy.attempts) {
        const delay = computeBackoff(policy, run.attempt + 1, this.env.random());
        this.addRun(step, run.attempt + 1, idempotencyKeyOf(run), this.env.now + delay);
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

  private fail(run: OpenRun, error: Omit<StepError, 'retryable'> & { retryable?: boolean }): void {
    this.status = 'error_stop';
    this.error = { stepId: run.stepId, runId: run.id, attempt: run.attempt, code: error.code, message: error.message, details: error.details };
    this.stopAll = true;
  }

  startRuns(targets: string[], causedBy: string | null): void {
    for (const t of targets) {
      const step = this.pipeline.steps[t];
      if (step) this.addRun(step, 1, causedBy, null);
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
      this.addRun(step, 1, causedBy, null);
    }
  }

  private addRun(step: CompiledStep, attempt: number, causedBy: string | null, availableAt: number | null): void {
    const transport = this.env.transportOf(step);
    this.newRuns.push({
      id: this.env.newId(),
      requestId: this.state.request.id,
      pipelineId: this.pipeline.id,
      stepId: step.id,
      seq: ++this.seq,
      attempt,
      status: availableAt === null ? 'dispatched' : 'pending',
      kind: step.kind,
      module: step.kind === 'module' ? step.subsystem : null,
      transport,
      params: null,
      output: null,
      error: null,
      causedBy,
      availableAt,
      startedAt: availableAt ?? this.env.now,
      finishedAt: null,
      durationMs: null,
    });
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
    if (!this.stopAll && stillOpen.length === 0 && newRuns.length === 0) {
      const waiting = Object.keys(this.joins);
      if (waiting.length > 0) {
        const run = this.closedRunId ? this.state.open.get(this.closedRunId) : undefined;
        this.status = 'error_stop';
        this.error = {
          stepId: waiting[0] ?? '', runId: run?.id ?? '', attempt: run?.attempt ?? 0, code: 'CONVEYOR_ERR_JOIN_INCOMPLETE',
          message: `join step "${waiting[0]}" can never start: ${JSON.stringify(this.joins[waiting[0] ?? ''])} arrived, it waits for ${JSON.stringify(this.pipeline.steps[waiting[0] ?? '']?.prev ?? [])}`,
        };
      } else if (this.status === 'running' || this.status === 'waiting') {
        this.status = 'completed';
      }
    }
    const ended = this.status !== 'running' && this.status !== 'waiting';
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
        },
        finishRun: this.finishRun,
        cancelRuns,
        insertRuns: newRuns,
      },
      dispatch: newRuns.filter((r) => r.availableAt === null),
      schedule: newRuns.filter((r) => r.availableAt !== null),
      output: this.output,
      finished: ended ? this.status : undefined,
      notes: this.notes,
    };
  }
}

/** Applies a committed decision to the in-memory state (the shell's cache). */
export function applyDecision(state: RequestState, d: Decision): void {
  const c = d.commit;
  state.request = {
    ...state.request,
    status: c.request.status,
    error: c.request.error,
    joins: c.request.joins,
    stepCount: c.request.stepCount,
    finishedAt: c.request.finishedAt,
    updatedAt: c.request.updatedAt,
    rev: state.request.rev + 1,
  };
  if (c.finishRun) state.open.delete(c.finishRun.id);
  for (const id of c.cancelRuns) state.open.delete(id);
  for (const r of c.insertRuns) {
    state.open.set(r.id, { id: r.id, stepId: r.stepId, attempt: r.attempt, seq: r.seq, status: r.status as OpenRun['status'], availableAt: r.availableAt, causedBy: r.causedBy });
    state.lastSeq = Math.max(state.lastSeq, r.seq);
  }
  if (d.output) state.context[d.output.stepId] = d.output.value;
}
