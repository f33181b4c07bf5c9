/** Rebuilding a request's state from its stored records: pure. */
import { OPEN_RUN_STATUSES, requestInfo, type RequestRecord, type StepRunRecord } from '../model';
import type { Decision, OpenRun, RequestState } from './decision';

const OPEN = new Set<string>(OPEN_RUN_STATUSES);

/**
 * The context is never stored as one blob: it is the payload, the request's `vars`, and for
 * each step the output of its latest completed run. `runs` must be in `seq` order.
 */
export function buildState(request: RequestRecord, runs: StepRunRecord[]): RequestState {
  const context: Record<string, unknown> = { payload: request.payload, request: requestInfo(request), vars: request.vars ?? {} };
  const open = new Map<string, OpenRun>();
  let lastSeq = 0;
  for (const run of runs) {
    lastSeq = Math.max(lastSeq, run.seq);
    if (run.status === 'completed') context[run.stepId] = run.output;
    else if (OPEN.has(run.status)) {
      open.set(run.id, {
        id: run.id, stepId: run.stepId, attempt: run.attempt, seq: run.seq,
        status: run.status as OpenRun['status'], availableAt: run.availableAt, causedBy: run.causedBy, startedAt: run.startedAt, polls: run.polls ?? 0,
        deadlineAt: run.deadlineAt ?? null, waitEvent: run.waitEvent ?? null, waitKey: run.waitKey ?? null, override: run.override ?? null,
      });
    }
  }
  return { request, context, open, lastSeq };
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
  if (c.request.vars) {
    state.request.vars = c.request.vars;
    state.context.vars = c.request.vars;
  }
  if (c.request.maxSteps !== undefined) state.request.maxSteps = c.request.maxSteps;
  if (c.finishRun) state.open.delete(c.finishRun.id);
  const repolled = c.repollRun ? state.open.get(c.repollRun.id) : undefined;
  if (repolled && c.repollRun) Object.assign(repolled, { status: 'pending', availableAt: c.repollRun.availableAt, polls: c.repollRun.polls });
  for (const id of c.cancelRuns) state.open.delete(id);
  for (const r of c.insertRuns) {
    state.lastSeq = Math.max(state.lastSeq, r.seq);
    if (r.status === 'completed') continue;
    state.open.set(r.id, {
      id: r.id, stepId: r.stepId, attempt: r.attempt, seq: r.seq, status: r.status as OpenRun['status'],
      availableAt: r.availableAt, causedBy: r.causedBy, startedAt: r.startedAt, polls: r.polls ?? 0, deadlineAt: r.deadlineAt ?? null,
      waitEvent: r.waitEvent ?? null, waitKey: r.waitKey ?? null, override: r.override ?? null,
    });
  }
  for (const o of d.outputs) state.context[o.stepId] = o.value;
}
