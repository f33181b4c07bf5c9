/** Small pure rules of the decision core: retry backoff, and what stays open after a decision. */
import type { StepRunRecord } from '../model';
import type { CompiledPipeline, RetryPolicy } from '../pipeline/types';
import type { OpenRun } from './decision';

/** Step kinds that hold a request without work in flight: the request is `waiting` on them. */
const HOLDING_KINDS: ReadonlySet<string> = new Set(['wait', 'action', 'delay']);

/** Computes the delay before attempt `nextAttempt` (2 for the first retry). */
export function computeBackoff(policy: RetryPolicy, nextAttempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.backoffMs * policy.factor ** Math.max(0, nextAttempt - 2));
  const spread = base * policy.jitter * (2 * random - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(base + spread)));
}

/** The runs open once a decision is applied: how many, whether they all only hold the request, and those a stop cancels. */
export interface OpenAfter {
  open: number;
  /** Every open run is an engine-held wait (event, action, delay): nothing is in flight. */
  holdingOnly: boolean;
  cancelRuns: string[];
}

/**
 * What stays open once a decision is applied: the open runs but the one it closes (on a stop,
 * none: they are cancelled), and its new runs not completed at once. One pass, without the
 * arrays of ids and step ids it used to build on every step.
 */
export function openAfter(pipeline: CompiledPipeline, open: ReadonlyMap<string, OpenRun>, closedRunId: string | null, newRuns: readonly StepRunRecord[], stopAll: boolean): OpenAfter {
  const after: OpenAfter = { open: 0, holdingOnly: true, cancelRuns: [] };
  for (const run of open.values()) {
    if (run.id === closedRunId) continue;
    if (stopAll) after.cancelRuns.push(run.id);
    else stays(after, pipeline, run.stepId);
  }
  if (!stopAll) for (const r of newRuns) if (r.status !== 'completed') stays(after, pipeline, r.stepId);
  return after;
}

function stays(after: OpenAfter, pipeline: CompiledPipeline, stepId: string): void {
  after.open++;
  if (!HOLDING_KINDS.has(pipeline.steps[stepId]?.kind ?? '')) after.holdingOnly = false;
}
