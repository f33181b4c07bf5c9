/** Keeping `request_participants` in step with each commit, and marking the commits that move a request. Pure: it only fills in the commit. */
import { OPEN_RUN_STATUSES } from '../model';
import type { CompiledPipeline } from '../pipeline/types';
import type { Decision, RequestState } from './decide';
import { accessRows, hasAccessRows, sameParticipants } from '../access/people';

const OPEN_RUN = new Set<string>(OPEN_RUN_STATUSES);

/**
 * Puts the request's access rows (participants, roles offered an action) in the commit when
 * the decision changes them, or when the request starts: so they are written in the same
 * transaction as the step that changed them.
 */
export function noteAccessRows(pipeline: CompiledPipeline, state: RequestState, decision: Decision, context: Record<string, unknown>, starting: boolean): void {
  if (!hasAccessRows(pipeline)) return;
  const c = decision.commit;
  const closed = new Set(c.cancelRuns);
  if (c.finishRun) closed.add(c.finishRun.id);
  const before = [...state.open.values()].map((r) => r.stepId);
  const after = [...state.open.values()].filter((r) => !closed.has(r.id)).map((r) => r.stepId);
  for (const run of c.insertRuns) if (OPEN_RUN.has(run.status)) after.push(run.stepId);
  const rows = accessRows(pipeline, context, after);
  if (starting || !sameParticipants(rows, accessRows(pipeline, state.context, before))) {
    c.participants = { createdAt: state.request.createdAt, rows };
  }
}

/**
 * Marks a commit that changes the request's status or finish time from what its decision saw
 * (`RequestCommit.moved`: a start, an end), so the store does not first try the guard that
 * keeps them.
 */
export function noteMoved(state: RequestState, decision: Decision): void {
  const c = decision.commit;
  if (c.request.status !== state.request.status || c.request.finishedAt !== state.request.finishedAt) c.moved = true;
}
