/**
 * Keeping `request_participants` in step with each commit, marking the commits that move a
 * request, and placing the attempt that is open in the request's row: pure, they only fill in
 * the commit. Then two helpers of the cached state for attempts open in requests' rows.
 */
import { OPEN_RUN_STATUSES } from '../model';
import { cancelledRun, endedRun } from '../store/rows';
import type { CompiledPipeline } from '../pipeline/types';
import type { Decision, RequestState } from './decide';
import type { OpenRun } from './decision';
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

/**
 * The step log written once per attempt (migration `1763800000370`, issue "Performance"): a
 * request's row holds at most one open attempt, a module step sent at once, which is inserted
 * into `step_runs` only when it ends. Every other open run (a retry or poll not yet due, a
 * wait, an action, a deferred send, a second parallel branch) is a row of `step_runs` from
 * its start, as before; each run stays where it started until it ends.
 *
 * Fills in the commit: the row's attempt that this commit ends or cancels (`endedRows`,
 * `finishRun.inRow`), and the attempt that takes the row (`openRow`: a run of `insertRuns`
 * that is therefore not inserted, and `openStatusKept` when it follows a dispatched one), or
 * `null` when the row is left without one.
 */
export function placeOpenRun(state: RequestState, decision: Decision): void {
  const c = decision.commit;
  let current: OpenRun | undefined;
  for (const run of state.open.values()) {
    if (run.row) {
      current = run;
      break;
    }
  }
  if (current?.row) {
    if (c.finishRun?.id === current.id) {
      c.finishRun.inRow = true;
      (c.endedRows ??= []).push(endedRun(current.row, c.finishRun));
    } else if (c.cancelRuns.includes(current.id)) {
      // Its id stays in `cancelRuns` (the state drops it by that); the log's cancel matches no row of it.
      (c.endedRows ??= []).push(cancelledRun(current.row, c.request.updatedAt));
    } else return;
  }
  for (const run of c.insertRuns) {
    if (run.status === 'dispatched' && run.kind === 'module') {
      c.openRow = run;
      if (current?.status === 'dispatched') c.openStatusKept = true;
      return;
    }
  }
  if (current) c.openRow = null;
}

/** Which of the runs `ids` are open in their requests' rows, with their requests (from the cached states). */
export function runsInRows(states: { entries(): Iterable<[string, RequestState]> }, ids: ReadonlySet<string>): Array<{ id: string; requestId: string }> {
  const out: Array<{ id: string; requestId: string }> = [];
  for (const [requestId, state] of states.entries()) {
    for (const run of state.open.values()) if (run.row && ids.has(run.id)) out.push({ id: run.id, requestId });
  }
  return out;
}

/** A run a module accepted for later, in the cached state: it waits until `until`, which an attempt in the request's row also ends with. */
export function markRunWaiting(run: OpenRun, until: number): void {
  run.status = 'waiting';
  if (run.row) run.row.leaseUntil = until;
}
