/** Rebuilding a request's state from its stored records: pure. */
import { OPEN_RUN_STATUSES, type RequestRecord, type StepRunRecord } from '../model';
import type { OpenRun, RequestState } from './decide';

const OPEN = new Set<string>(OPEN_RUN_STATUSES);

/** The `request` key of the context. */
export function requestInfo(r: RequestRecord): Record<string, unknown> {
  return { id: r.id, pipeline: r.pipelineId, version: r.version, businessKey: r.businessKey, mode: r.mode, test: r.test };
}

/**
 * The context is never stored as one blob: it is the payload plus, for each step, the output
 * of its latest completed run. `runs` must be in `seq` order.
 */
export function buildState(request: RequestRecord, runs: StepRunRecord[]): RequestState {
  const context: Record<string, unknown> = { payload: request.payload, request: requestInfo(request) };
  const open = new Map<string, OpenRun>();
  let lastSeq = 0;
  for (const run of runs) {
    lastSeq = Math.max(lastSeq, run.seq);
    if (run.status === 'completed') context[run.stepId] = run.output;
    else if (OPEN.has(run.status)) {
      open.set(run.id, {
        id: run.id, stepId: run.stepId, attempt: run.attempt, seq: run.seq,
        status: run.status as OpenRun['status'], availableAt: run.availableAt, causedBy: run.causedBy,
        deadlineAt: run.deadlineAt ?? null, waitEvent: run.waitEvent ?? null, waitKey: run.waitKey ?? null, override: run.override ?? null,
      });
    }
  }
  return { request, context, open, lastSeq };
}
