/** Rebuilding a request's state from its stored records: pure. */
import { OPEN_RUN_STATUSES, requestInfo, type RequestCommit, type RequestRecord, type StepRunRecord } from '../model';
import type { Decision, OpenRun, RequestState } from './decision';
import { isInRow } from '../store/rows';

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
      const o: OpenRun = {
        id: run.id, stepId: run.stepId, attempt: run.attempt, seq: run.seq,
        status: run.status as OpenRun['status'], availableAt: run.availableAt, causedBy: run.causedBy, startedAt: run.startedAt, polls: run.polls ?? 0,
        deadlineAt: run.deadlineAt ?? null, waitEvent: run.waitEvent ?? null, waitKey: run.waitKey ?? null, override: run.override ?? null,
      };
      // Open in the request's row: it ends by being inserted whole (`RequestCommit.endedRows`).
      if (isInRow(run)) o.row = run;
      open.set(run.id, o);
    }
  }
  return { request, context, open, lastSeq };
}

/**
 * A copy of a request's join arrivals that a decision may change. Most requests have none,
 * and `structuredClone` of an empty object on every step was measurable.
 */
export function copyJoins(joins: Record<string, string[]>): Record<string, string[]> {
  for (const key in joins) if (Object.hasOwn(joins, key)) return structuredClone(joins);
  return {};
}

/** The keys a type may leave out. */
type OptionalKeyOf<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];

/** The optional keys of a request record, which {@link copyRequest} copies only when present. */
type CopiedOptionalKeys = 'vars' | 'maxSteps' | 'submittedBy' | 'hasCallback' | 'traceContext';
type AssertNever<T extends never> = T;
/** Fails to compile when `RequestRecord` gains an optional key that {@link copyRequest} does not copy. */
export type CopyRequestCopiesEveryKey = AssertNever<Exclude<OptionalKeyOf<RequestRecord>, CopiedOptionalKeys>>;

/**
 * A copy of a request record, written out field by field rather than as `{ ...r }` and then
 * changed: V8 builds a spread with overrides, or a spread copy that then gains a key, slowly
 * (about 2 µs and ~900 bytes for a request record; `Object.assign` is no better for so many
 * keys), and a literal in ~50 ns. The required keys are checked by the compiler; an optional
 * key is copied only when the record has it, so the copy has the keys the record had.
 */
export function copyRequest(r: RequestRecord): RequestRecord {
  const next: RequestRecord = {
    id: r.id, pipelineId: r.pipelineId, version: r.version, status: r.status, businessKey: r.businessKey,
    idempotencyKey: r.idempotencyKey, mode: r.mode, test: r.test, payload: r.payload, error: r.error, joins: r.joins,
    stepCount: r.stepCount, rev: r.rev, releaseAt: r.releaseAt, createdAt: r.createdAt, updatedAt: r.updatedAt,
    finishedAt: r.finishedAt,
  };
  if ('vars' in r) next.vars = r.vars;
  if ('maxSteps' in r) next.maxSteps = r.maxSteps;
  if ('submittedBy' in r) next.submittedBy = r.submittedBy;
  if ('hasCallback' in r) next.hasCallback = r.hasCallback;
  if ('traceContext' in r) next.traceContext = r.traceContext;
  return next;
}

/**
 * A new record: `r` as a commit of its request leaves it (status, error, joins, step count,
 * times, and the next `rev`); once a step (4% of the embedded benchmark's CPU as a spread).
 * The caller's record is not changed: the one intake hands over is the one its caller gets back.
 */
export function requestAfter(r: RequestRecord, c: RequestCommit['request']): RequestRecord {
  const next = copyRequest(r);
  next.status = c.status;
  next.error = c.error;
  next.joins = c.joins;
  next.stepCount = c.stepCount;
  next.rev = r.rev + 1;
  next.updatedAt = c.updatedAt;
  next.finishedAt = c.finishedAt;
  return next;
}

/** Applies a committed decision to the in-memory state (the shell's cache). */
export function applyDecision(state: RequestState, d: Decision): void {
  const c = d.commit;
  state.request = requestAfter(state.request, c.request);
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
    const open: OpenRun = {
      id: r.id, stepId: r.stepId, attempt: r.attempt, seq: r.seq, status: r.status as OpenRun['status'],
      availableAt: r.availableAt, causedBy: r.causedBy, startedAt: r.startedAt, polls: r.polls ?? 0, deadlineAt: r.deadlineAt ?? null,
      waitEvent: r.waitEvent ?? null, waitKey: r.waitKey ?? null, override: r.override ?? null,
    };
    if (r === c.openRow) open.row = r;
    state.open.set(r.id, open);
  }
  for (const o of d.outputs) state.context[o.stepId] = o.value;
}
