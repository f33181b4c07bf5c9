/**
 * The supervisor's pure core: `decide(pipeline, state, outcome, env) → decision`. It reads
 * no clock, store or network (time and ids come in through `env`), so it is tested with
 * tables. The shell commits the decision, then performs it.
 */
import { anyHolds, findRoute } from '../conditions';
import { ErrorCodes, type StepError } from '../errors';
import type { EndedBy, PollRecord, RequestCommit, RequestError, RequestStatus, StepRunRecord } from '../model';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { applyAssign } from './assign';
import { copyJoins } from './state';
import { computeBackoff, openAfter } from './rules';
import { unresumableParams } from './resumable';
import { answerPoll, endedByOf, isPollResult, WAIT_TIMEOUT, type PollAnswer } from './poll';
import { idempotencyKeyOf, type Decision, type DecisionEnv, type OpenRun, type Outcome, type RequestState } from './decision';

export { WAIT_TIMEOUT } from './poll';
export { idempotencyKeyOf, type Decision, type DecisionEnv, type OpenRun, type Outcome, type RequestState } from './decision';
export { applyDecision } from './state';
export { computeBackoff } from './rules';
/** Moved to the condition language (`src/conditions/evaluate.ts`); re-exported for the callers that import it from here. */
export { anyHolds } from '../conditions';

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
      const step = pipeline.steps[run.stepId];
      let result: Extract<Outcome, { finishedAt: number }> = outcome;
      if (isPollResult(step, outcome)) {
        // A poll's answer counts once: only for the poll in flight (not a duplicate delivery).
        if (run.status !== 'dispatched') return null;
        const polled = b.onPoll(step, run, outcome);
        if (polled === 'again') return b.finish();
        result = polled;
      }
      // A step's `assign` is rendered once its output is known; if it cannot be, the step fails.
      const assignError = result.type === 'completed' ? b.assign(run, result.output) : undefined;
      b.closeRun(run, result, endedByOf(step, result), assignError);
      if (result.type === 'failed') b.onFailed(run, result.error);
      else if (assignError) b.onFailed(run, assignError);
      else b.onCompleted(run, result.output);
      return b.finish();
    }
    case 'resume':
      if (status !== 'error_stop' || !b.resume(outcome.params, outcome.maxSteps)) return null;
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
  private repollRun: RequestCommit['repollRun'];
  private poll: PollRecord | undefined;
  private maxSteps: number;
  private budgetRaised = false;
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
    this.joins = copyJoins(r.joins);
    this.stepCount = r.stepCount;
    this.maxSteps = r.maxSteps ?? pipeline.maxSteps;
    this.seq = state.lastSeq;
    // Not `{ ...state.context }`: V8 gives each such copy a map of its own once a step's
    // output is added to it (~1 µs and ~360 bytes a step); Object.assign copies onto shared maps.
    this.context = Object.assign({}, state.context);
    this.vars = r.vars ?? {};
  }

  /** Renders the step's `assign` into `vars`; returns the step's error when that fails. */
  assign(run: OpenRun, output: unknown): StepError | undefined {
    const assign = this.pipeline.steps[run.stepId]?.assign;
    if (!assign) return undefined;
    // The context with the step's output, copied as in the constructor (not a spread that gains a key).
    const scope: Record<string, unknown> = Object.assign({}, this.context);
    scope[run.stepId] = output;
    const result = applyAssign(run.stepId, assign, this.vars, scope);
    if ('error' in result) return result.error;
    this.vars = result.vars;
    this.assigned = result.assigned;
    this.context.vars = result.vars;
    return undefined;
  }

  /**
   * Closes a run. Its row spans the whole step, from `startedAt` to now (a wait of days, a
   * delay), so `durationMs` is their difference; a clock behind the start cannot reverse it.
   * A run whose `assign` failed keeps its output and fails with that error.
   */
  closeRun(run: OpenRun, o: Extract<Outcome, { finishedAt: number }>, endedBy: EndedBy | null, assignError?: StepError): void {
    this.closedRunId = run.id;
    const finishedAt = Math.max(o.finishedAt, run.startedAt);
    this.finishRun = {
      id: run.id,
      status: o.type === 'completed' && !assignError ? 'completed' : 'failed',
      output: o.type === 'completed' ? o.output : undefined,
      error: o.type === 'failed' ? o.error : assignError,
      finishedAt,
      durationMs: finishedAt - run.startedAt,
      endedBy,
    };
    if (this.assigned) this.finishRun.assigned = this.assigned;
    if (this.poll) Object.assign(this.finishRun, { polls: this.poll.n, lastPollAt: this.poll.finishedAt });
  }

  /**
   * A poll answered (see `answerPoll`): `'again'` when the same run polls again, else the
   * result that closes the run.
   */
  onPoll(step: Extract<CompiledStep, { kind: 'wait' }>, run: OpenRun, o: PollAnswer): 'again' | PollAnswer {
    const answer = answerPoll(step.poll!, run, o, this.state.request.id, this.env.now);
    this.poll = answer.poll;
    if ('again' in answer) {
      this.repollRun = answer.again;
      return 'again';
    }
    return answer.result;
  }

  private setOutput(stepId: string, value: unknown): void {
    this.context[stepId] = value;
    this.outputs.push({ stepId, value });
  }

  onCompleted(run: Pick<OpenRun, 'id' | 'stepId' | 'attempt'>, output: unknown): void {
    const step = this.pipeline.steps[run.stepId];
    this.setOutput(run.stepId, output);
    if (!step) return this.fail(run, { code: ErrorCodes.UNKNOWN_STEP, message: `step "${run.stepId}" is not in pipeline version ${this.state.request.version}` });
    switch (step.kind) {
      case 'stop':
        this.status = step.status;
        this.stopAll = true;
        return;
      case 'loop': {
        const iteration = Number((output as { iteration?: unknown } | null)?.iteration ?? 0);
        return this.routeTo(iteration <= step.max ? [step.target] : step.onExhausted, step.id, run.id);
      }
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

  /**
   * Retries the step that failed; refuses a join that can never start. A request halted by
   * its step budget continues only with a larger `maxSteps`: from the route of the run it
   * stopped at when that run completed, else by retrying it.
   */
  resume(params?: Record<string, unknown>, maxSteps?: number): boolean {
    const e = this.state.request.error;
    const step = e ? this.pipeline.steps[e.stepId] : undefined;
    if (!e || !step || e.code === ErrorCodes.JOIN_INCOMPLETE) return false;
    const budget = e.code === ErrorCodes.MAX_STEPS;
    if (maxSteps !== undefined) {
      if (maxSteps <= this.stepCount) return false;
      this.maxSteps = maxSteps;
      this.budgetRaised = true;
    } else if (budget) return false;
    // Only the params the step lists as fixable may be replaced (seed 000 §8: fix, never ignore).
    if (unresumableParams(step, params).length > 0) return false;
    this.status = 'running';
    this.error = null;
    const closed = (e.details as { closed?: unknown } | undefined)?.closed;
    if (budget && closed === 'completed' && e.runId && !params) this.onCompleted({ id: e.runId, stepId: e.stepId, attempt: e.attempt }, this.context[e.stepId]);
    else this.addRun(step, 1, e.runId || null, null, undefined, params);
    this.notes.push({ message: 'request resumed', fields: { stepId: step.id, editedParams: params !== undefined, maxSteps: this.maxSteps } });
    return true;
  }

  stop(): void {
    this.status = 'stopped';
    this.stopAll = true;
  }

  private fail(run: Pick<OpenRun, 'id' | 'stepId' | 'attempt'>, error: Omit<StepError, 'retryable'> & { retryable?: boolean }): void {
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
      if (this.stepCount + this.newRuns.length >= this.maxSteps) {
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

  /** The step budget: new runs beyond `maxSteps` stop the request instead. */
  private checkBudget(): void {
    if (this.stopAll || this.stepCount + this.newRuns.length <= this.maxSteps) return;
    const run = this.closedRunId ? this.state.open.get(this.closedRunId) : undefined;
    this.status = 'error_stop';
    this.error = {
      stepId: run?.stepId ?? this.pipeline.start, runId: run?.id ?? '', attempt: run?.attempt ?? 0,
      code: ErrorCodes.MAX_STEPS, message: `request reached its limit of ${this.maxSteps} step runs; an operator may resume it with a larger maxSteps`,
      details: { maxSteps: this.maxSteps, closed: this.finishRun?.status ?? null },
    };
    this.stopAll = true;
  }

  /** The status once the decision is applied: ended, `waiting` on holding steps only, or `running`. */
  private settle(open: number, holdingOnly: boolean): void {
    if (this.stopAll || open > 0) {
      // Waiting: every open run is an engine-held wait (event, action, delay); nothing is in flight.
      if (isLive(this.status)) this.status = holdingOnly ? 'waiting' : 'running';
      return;
    }
    const waiting = Object.keys(this.joins);
    if (waiting.length > 0) {
      const run = this.closedRunId ? this.state.open.get(this.closedRunId) : undefined;
      this.status = 'error_stop';
      this.error = {
        stepId: waiting[0] ?? '', runId: run?.id ?? '', attempt: run?.attempt ?? 0, code: ErrorCodes.JOIN_INCOMPLETE,
        message: `join step "${waiting[0]}" can never start: ${JSON.stringify(this.joins[waiting[0] ?? ''])} arrived, it waits for ${JSON.stringify(this.pipeline.steps[waiting[0] ?? '']?.prev ?? [])}`,
      };
    } else if (isLive(this.status)) {
      this.status = 'completed';
    }
  }

  finish(): Decision {
    const now = this.env.now;
    this.checkBudget();
    const newRuns = this.stopAll ? [] : this.newRuns;
    // A run that polls again stays open; on a stop it is cancelled with the others.
    if (this.stopAll) this.repollRun = undefined;
    const after = openAfter(this.pipeline, this.state.open, this.closedRunId, newRuns, this.stopAll);
    this.settle(after.open, after.holdingOnly);
    const ended = !isLive(this.status);
    this.stepCount += newRuns.length;
    // The optional keys are set after the literal: V8 builds a literal with spreads in it slowly.
    const request: RequestCommit['request'] = { status: this.status, error: this.error, joins: this.joins, stepCount: this.stepCount, finishedAt: ended ? now : null, updatedAt: now };
    if (this.budgetRaised) request.maxSteps = this.maxSteps;
    if (this.assigned) request.vars = this.vars;
    return {
      commit: {
        requestId: this.state.request.id,
        expectRev: this.state.request.rev,
        request,
        finishRun: this.finishRun,
        repollRun: this.repollRun,
        poll: this.poll,
        cancelRuns: after.cancelRuns,
        insertRuns: newRuns,
      },
      dispatch: newRuns.filter((r) => r.status === 'dispatched'),
      schedule: newRuns.filter((r) => r.status === 'pending'),
      outputs: this.outputs,
      context: this.context,
      finished: ended ? this.status : undefined,
      notes: this.notes,
    };
  }
}
