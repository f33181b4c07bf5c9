/**
 * Long polling, pure: a polling wait is one step run however often it polls. Each poll that
 * is not done sends the run back to `pending` until the next interval (growing by `backoff`
 * up to `maxEvery`), and goes to the run's poll history. Polls never count toward `maxSteps`:
 * the wait's `timeout` (or `maxPolls`) decides when waiting is over.
 */
import { ErrorCodes, type StepError } from '../errors';
import type { EndedBy, PollRecord, RequestCommit } from '../model';
import type { CompiledPoll, CompiledStep } from '../pipeline/types';
import type { OpenRun, Outcome } from './decision';

/** Step errors that mean "the wait ran out", which the step's `onTimeout` route handles. */
export const WAIT_TIMEOUT = ErrorCodes.WAIT_TIMEOUT;

/**
 * The error of a wait or action step's run that ran out of time. A module that answered 202
 * and never called back fails that attempt, retryably.
 */
export function timeoutError(run: Pick<OpenRun, 'stepId' | 'deadlineAt'>): StepError {
  // Only wait and action steps have a deadline; a module run waiting without one is a 202.
  return run.deadlineAt !== null && run.deadlineAt !== undefined
    ? { code: WAIT_TIMEOUT, message: `step "${run.stepId}" waited past its timeout`, retryable: false }
    : { code: ErrorCodes.TIMEOUT, message: `step "${run.stepId}" accepted the call (202) but did not call back in time`, retryable: true };
}

/** The interval after poll number `n` (1 for the first poll). */
export function pollIntervalMs(poll: CompiledPoll, n: number): number {
  return Math.min(poll.maxEveryMs, Math.round(poll.everyMs * poll.backoff ** Math.max(0, n - 1)));
}

/** When the next poll is due: the interval after poll `n`, but never after the wait's deadline. */
export function nextPollAt(poll: CompiledPoll, n: number, now: number, deadlineAt: number | null | undefined): number {
  const at = now + pollIntervalMs(poll, n);
  return deadlineAt === null || deadlineAt === undefined ? at : Math.min(at, deadlineAt);
}

/** The shape of a result as far as ending a holding step goes. */
interface ResultLike {
  type: 'completed' | 'failed';
  via?: 'event' | 'action';
  error?: StepError;
}

/** Whether a result is a poll's answer (not an event, an action, or the wait's timeout). */
export function isPollResult(step: CompiledStep | undefined, o: ResultLike): step is Extract<CompiledStep, { kind: 'wait' }> {
  if (step?.kind !== 'wait' || !step.poll || o.via === 'event') return false;
  return o.type === 'completed' || o.error?.code !== WAIT_TIMEOUT;
}

/** How a wait or action step ended, for its step log row; null for other kinds. */
export function endedByOf(step: CompiledStep | undefined, o: ResultLike): EndedBy | null {
  if (step?.kind !== 'wait' && step?.kind !== 'action') return null;
  if (o.type === 'failed' && o.error?.code === WAIT_TIMEOUT) return 'timeout';
  if (o.via === 'event' || o.via === 'action') return o.via;
  return step.kind === 'wait' && step.poll ? 'poll' : null;
}

/** A result that a poll may be: a module's answer, or the wait's timeout. */
export type PollAnswer = Extract<Outcome, { finishedAt: number }>;

/**
 * A poll answered: its history row, and either the result that closes the run (the final
 * poll, its non-retryable failure, or a timeout once `maxPolls` polls were not done) or,
 * when not done (or failed retryably), the same run back to `pending` until the next poll.
 */
export function answerPoll(
  poll: CompiledPoll, run: OpenRun, o: PollAnswer, requestId: string, now: number,
): { poll: PollRecord } & ({ result: PollAnswer } | { again: NonNullable<RequestCommit['repollRun']> }) {
  const n = (run.polls ?? 0) + 1;
  const startedAt = Math.max(run.startedAt, o.finishedAt - o.durationMs);
  const finishedAt = Math.max(startedAt, o.finishedAt);
  const record: PollRecord = {
    runId: run.id, requestId, n, startedAt, finishedAt, durationMs: finishedAt - startedAt,
    output: o.type === 'completed' ? o.output : null, error: o.type === 'failed' ? o.error : null,
  };
  const done = o.type === 'completed' && (o.output as Record<string, unknown> | null)?.[poll.doneField] === true;
  if (done || (o.type === 'failed' && !o.error.retryable)) return { poll: record, result: o };
  if (poll.maxPolls !== undefined && n >= poll.maxPolls) {
    return {
      poll: record,
      result: {
        type: 'failed', runId: run.id, finishedAt: o.finishedAt, durationMs: o.durationMs,
        error: { code: WAIT_TIMEOUT, message: `step "${run.stepId}" polled ${n} times (maxPolls) without "${poll.doneField}"`, retryable: false },
      },
    };
  }
  const again = {
    id: run.id, availableAt: nextPollAt(poll, n, now, run.deadlineAt), polls: n,
    output: o.type === 'completed' ? o.output : { error: o.error }, lastPollAt: finishedAt,
  };
  return { poll: record, again };
}
