/**
 * The steps the engine does itself and at once: `setData`, `stop`, `delay` (once due) and
 * `loop`. Their output is a pure function of the step and the context, so the supervisor
 * works it out right after the commit that opened the run and takes it back as the run's
 * result, on a later turn, without a trip through the dispatcher and the bus.
 */
import { toStepError, type StepError } from '../errors';
import type { Logger } from '../log/logger';
import type { CompiledStep } from '../pipeline/types';
import { maskedSecrets, nullMarkers, renderValue } from '../templates/render';
import type { StepResult } from './messages';

/** Step kinds whose result the supervisor computes itself. */
export const ENGINE_STEP_KINDS: ReadonlySet<string> = new Set(['setData', 'stop', 'delay', 'loop']);

/** The output of an engine step. Throws when a `setData` template cannot be rendered. */
export function engineStepOutput(step: CompiledStep, context: Record<string, unknown>): unknown {
  switch (step.kind) {
    case 'setData':
      return nullMarkers(renderValue(step.data, context, maskedSecrets));
    case 'stop':
      return { status: step.status, reason: step.reason ?? null };
    case 'delay':
      return { delayedMs: step.durationMs };
    case 'loop': {
      const previous = Number((context[step.id] as { iteration?: unknown } | undefined)?.iteration ?? 0);
      return { iteration: previous + 1, max: step.max };
    }
    default:
      return undefined;
  }
}

/** An engine step's output, or the error that fails it (a template that cannot be rendered). */
export function engineStepAnswer(step: CompiledStep, context: Record<string, unknown>): { output: unknown } | { error: StepError } {
  try {
    return { output: engineStepOutput(step, context) };
  } catch (err) {
    return { error: toStepError(err) };
  }
}

/**
 * Does an engine step now and hands its result to `take` on a later turn (as a module's
 * answer would come): finished then, timed from now. A template that cannot be rendered
 * fails the step, as a module call that cannot be sent does.
 */
export function runEngineStep(
  run: { requestId: string; step: CompiledStep; runId: string; attempt: number; context: Record<string, unknown> },
  logger: Logger, take: (result: StepResult) => void,
): void {
  const { requestId, step } = run;
  const started = Date.now();
  const base = (now: number) => ({ requestId, runId: run.runId, stepId: step.id, attempt: run.attempt, finishedAt: now, durationMs: now - started });
  const answer = engineStepAnswer(step, run.context);
  if ('error' in answer) logger.warn('step dispatch failed', { requestId, stepId: step.id, code: answer.error.code, message: answer.error.message });
  setImmediate(() => take({ ...base(Date.now()), ...answer }));
}
