/**
 * A new request started in the transaction that stores it (issue 18 "Performance"). Intake
 * would store the request `buffered` and post a start; the start would then read the request
 * back and commit `running` with its first runs: two transactions, and the status indexes
 * written twice (distributed, also a job through `conveyor:requests`, ~70 Redis commands).
 * When this process will start it at once anyway (no `rate` slot to claim, no `maxActive`, no
 * access rows, room under admission control), the supervisor decides the start on the record
 * intake hands over, and intake stores the request already started, with those runs, in one
 * transaction. Embedded, and distributed on an engine process that takes the submit (an
 * API-only process does not listen, so it queues the start). Everything else takes the usual way.
 */
import { hasAccessRows } from '../access/people';
import type { RequestRecord } from '../model';
import type { CompiledPipeline } from '../pipeline/types';
import { decide, type Decision, type DecisionEnv, type RequestState } from './decide';
import { placeOpenRun } from './commit-rows';
import { prepareRuns, type PrepareOptions } from './prepare';
import { buildState, requestAfter } from './state';

export interface NewStart {
  state: RequestState;
  decision: Decision;
  /** The request as it is stored: already started (`rev` 1). */
  started: RequestRecord;
}

/**
 * The start of a `buffered` record not stored yet, or undefined when it must take the usual
 * way: a `rate` pipeline (the first dispatch claims a slot in the store), a `maxActive` one
 * (its bound is counted in the store, across processes, by the release loop), access rows, a
 * start that does more than insert runs (ends the request, owes alerts), or one that throws
 * here (the usual way stores the request first, and handles the error as it always did).
 */
export function decideNewStart(pipeline: CompiledPipeline, record: RequestRecord, env: DecisionEnv, o: PrepareOptions): NewStart | undefined {
  try {
    return decideOrDecline(pipeline, record, env, o);
  } catch {
    return undefined;
  }
}

function decideOrDecline(pipeline: CompiledPipeline, record: RequestRecord, env: DecisionEnv, o: PrepareOptions): NewStart | undefined {
  if (record.status !== 'buffered' || pipeline.intake.kind === 'rate' || pipeline.intakeOptions?.maxActive !== undefined || hasAccessRows(pipeline)) return undefined;
  const state = buildState(record, []);
  const decision = decide(pipeline, state, { type: 'start' }, env);
  if (!decision || decision.finished) return undefined;
  const c = decision.commit;
  const plain = !c.finishRun && !c.repollRun && !c.poll && c.request.maxSteps === undefined && c.cancelRuns.length === 0 && !c.participants && c.request.vars === undefined;
  if (!plain || decision.outputs.length > 0) return undefined;
  prepareRuns(pipeline, decision, decision.context, o);
  if (c.alerts) return undefined;
  placeOpenRun(state, decision);
  return { state, decision, started: requestAfter(record, c.request) };
}
