/**
 * How requests and step runs map to rows: the column lists, the parameters of an insert, the
 * records read back, and the statement that closes a run. The one mapper of request rows,
 * shared by the store's per-commit path (`write.ts`), the MySQL bulk path (`mysql-bulk.ts`),
 * the intake's keyed inserts and every read.
 */
import { OPEN_RUN_STATUSES, type AdminAlertRow, type ParticipantRow, type PollRecord, type RequestCommit, type RequestRecord, type RequestStatus, type StepRunRecord } from '../model';
import type { Stmt } from './sql-executor';

export const REQUEST_COLUMNS =
  'id, pipeline_id, version, status, business_key, idempotency_key, mode, test, payload, vars, error, joins, step_count, rev, release_at, created_at, updated_at, finished_at, trace_context, max_steps, submitted_by';
export const RUN_COLUMNS =
  'id, request_id, pipeline_id, step_id, seq, attempt, status, kind, module, transport, params, output, error, caused_by, available_at, lease_until, wait_event, wait_key, deadline_at, override, assigned, started_at, finished_at, duration_ms, polls, last_poll_at, ended_by';
export const ALERT_COLUMNS = 'id, request_id, pipeline_id, channel, status, attempts, due_at, created_at';
export const OPEN = OPEN_RUN_STATUSES.map((s) => `'${s}'`).join(',');
/** Rows per multi-row INSERT (SQLite allows 32,766 variables). */
export const INSERT_CHUNK = 400;

export const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
export const parse = (v: unknown): unknown => (v === null || v === undefined ? null : JSON.parse(String(v)));
export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Empty `vars` (every new request's) are stored as NULL: most requests never assign any. */
export function varsParam(vars: Record<string, unknown> | undefined): string | null {
  return vars && Object.keys(vars).length > 0 ? JSON.stringify(vars) : null;
}

export function requestParams(r: RequestRecord): unknown[] {
  return [
    r.id, r.pipelineId, r.version, r.status, r.businessKey, r.idempotencyKey, r.mode, r.test ? 1 : 0,
    JSON.stringify(r.payload), varsParam(r.vars), json(r.error), json(r.joins), r.stepCount, r.rev, r.releaseAt,
    r.createdAt, r.updatedAt, r.finishedAt, r.traceContext ?? null, r.maxSteps ?? null, r.submittedBy ?? null,
  ];
}

/** How a new request waits: for its pipeline's intake policy, for its business key, or not at all. */
export type Hold = 'gate' | 'key' | null;

/** A request as the intake inserts it (a keyed insert), with the intake's own columns. */
export interface IntakeInsert {
  record: RequestRecord;
  hold: Hold;
  /** The business key, when this request takes it on insert. */
  activeKey: string | null;
  callbackUrl: string | null;
  /** The participant rows the request has from its payload alone (written only if it is inserted). */
  access?: ParticipantRow[];
}

/** A keyed insert writes the request's columns, then the intake's. */
export const KEYED_COLUMNS = `${REQUEST_COLUMNS}, hold, active_key, callback_url, callback_due`;

/** The parameters of one keyed insert, in {@link KEYED_COLUMNS} order: a callback is due from the request's creation. */
export function keyedParams(r: IntakeInsert): unknown[] {
  const params = requestParams(r.record);
  params.push(r.hold, r.activeKey, r.callbackUrl, r.callbackUrl ? r.record.createdAt : null);
  return params;
}

export function runParams(r: StepRunRecord): unknown[] {
  return [
    r.id, r.requestId, r.pipelineId, r.stepId, r.seq, r.attempt, r.status, r.kind, r.module, r.transport,
    json(r.params), json(r.output), json(r.error), r.causedBy, r.availableAt, r.leaseUntil ?? null,
    r.waitEvent ?? null, r.waitKey ?? null, r.deadlineAt ?? null, json(r.override), json(r.assigned), r.startedAt, r.finishedAt, r.durationMs,
    r.polls ?? null, r.lastPollAt ?? null, r.endedBy ?? null,
  ];
}

/** New admin alerts are `pending` and due at once. */
export function alertParams(a: AdminAlertRow): unknown[] {
  return [a.id, a.requestId, a.pipelineId, a.channel, 'pending', 0, a.createdAt, a.createdAt];
}

/** The alert rows of the commits that held, as INSERT statements (none in the usual case). */
export function alertStmts(held: RequestCommit[], chunkSize = INSERT_CHUNK): Stmt[] {
  const rows = held.flatMap((c) => (c.alerts ?? []).map(alertParams));
  return rows.length === 0 ? [] : insertStmts('admin_alerts', ALERT_COLUMNS, rows, chunkSize);
}

export function toRequest(row: Record<string, unknown>): RequestRecord {
  const r: RequestRecord = {
    id: String(row.id),
    pipelineId: String(row.pipeline_id),
    version: num(row.version),
    status: row.status as RequestStatus,
    businessKey: (row.business_key as string | null) ?? null,
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    mode: (row.mode as string | null) ?? null,
    test: num(row.test) === 1,
    payload: parse(row.payload),
    error: parse(row.error) as RequestRecord['error'],
    joins: (parse(row.joins) as Record<string, string[]> | null) ?? {},
    stepCount: num(row.step_count),
    rev: num(row.rev),
    releaseAt: numOrNull(row.release_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    finishedAt: numOrNull(row.finished_at),
    // NULL is a request without vars (`{}`); the key is left out, as in a new record.
    ...(row.vars === null || row.vars === undefined ? {} : { vars: parse(row.vars) as Record<string, unknown> }),
    // Only an operator's resume sets a budget of its own; most records never carry the key.
    ...(row.max_steps === null || row.max_steps === undefined ? {} : { maxSteps: num(row.max_steps) }),
    // Left out when unknown (a trigger's request, or one from before issue 12), as in a new record.
    ...(row.submitted_by === null || row.submitted_by === undefined ? {} : { submittedBy: String(row.submitted_by) }),
  };
  // Only traced requests carry the key, so untraced records look as they always did.
  if (row.trace_context) r.traceContext = String(row.trace_context);
  return r;
}

export function toRun(row: Record<string, unknown>): StepRunRecord {
  return {
    id: String(row.id),
    requestId: String(row.request_id),
    pipelineId: String(row.pipeline_id),
    stepId: String(row.step_id),
    seq: num(row.seq),
    attempt: num(row.attempt),
    status: row.status as StepRunRecord['status'],
    kind: String(row.kind),
    module: (row.module as string | null) ?? null,
    transport: (row.transport as StepRunRecord['transport']) ?? null,
    params: parse(row.params),
    output: parse(row.output),
    error: parse(row.error),
    causedBy: (row.caused_by as string | null) ?? null,
    availableAt: numOrNull(row.available_at),
    leaseUntil: numOrNull(row.lease_until),
    waitEvent: (row.wait_event as string | null) ?? null,
    waitKey: (row.wait_key as string | null) ?? null,
    deadlineAt: numOrNull(row.deadline_at),
    override: parse(row.override) as Record<string, unknown> | null,
    assigned: parse(row.assigned) as Record<string, unknown> | null,
    startedAt: num(row.started_at),
    finishedAt: numOrNull(row.finished_at),
    durationMs: numOrNull(row.duration_ms),
    polls: num(row.polls ?? 0),
    lastPollAt: numOrNull(row.last_poll_at),
    endedBy: (row.ended_by as StepRunRecord['endedBy']) ?? null,
  };
}

export function insertStmts(table: string, columns: string, rows: unknown[][], chunkSize = INSERT_CHUNK): Stmt[] {
  const width = columns.split(',').length;
  const tuple = `(${new Array(width).fill('?').join(',')})`;
  if (chunkSize === 1) {
    // One prepared single-row statement per row: on SQLite (in-process, no round trips) this
    // is as fast as a multi-row INSERT, and it builds no large parameter arrays or SQL texts.
    const sql = `INSERT INTO ${table} (${columns}) VALUES ${tuple}`;
    return rows.map((params) => ({ sql, params }));
  }
  const out: Stmt[] = [];
  for (let i = 0; i < rows.length; i += chunkSize) {
    const chunk = rows.slice(i, i + chunkSize);
    out.push({ sql: `INSERT INTO ${table} (${columns}) VALUES ${chunk.map(() => tuple).join(',')}`, params: chunk.flat() });
  }
  return out;
}

/**
 * Closes an open run. The row's times are made truthful here, at the one door every close
 * goes through: it never ends before it started, and its duration is end minus start.
 */
export const FINISH_RUN_SQL =
  'UPDATE step_runs SET status = ?, output = ?, error = ?, assigned = ?, finished_at = CASE WHEN started_at > ? THEN started_at ELSE ? END, ' +
  'duration_ms = CASE WHEN started_at > ? THEN 0 ELSE ? - started_at END, ended_by = ?, polls = COALESCE(?, polls), last_poll_at = COALESCE(?, last_poll_at) ' +
  `WHERE id = ? AND status IN (${OPEN})`;

/** The parameters of {@link FINISH_RUN_SQL}. */
export function finishRunParams(f: NonNullable<RequestCommit['finishRun']>): unknown[] {
  const at = f.finishedAt;
  return [f.status, json(f.output), json(f.error), json(f.assigned), at, at, at, at, f.endedBy ?? null, f.polls ?? null, f.lastPollAt ?? null, f.id];
}

/**
 * Closes open runs as `cancelled` at `now`. A run not due yet (a retry, the next poll) has
 * not started: it ends at its own start, so no row ever ends before it starts.
 */
export function cancelRunsStmt(ids: string[], now: number): Stmt {
  return {
    sql: 'UPDATE step_runs SET status = \'cancelled\', finished_at = CASE WHEN started_at > ? THEN started_at ELSE ? END, ' +
      `duration_ms = CASE WHEN started_at > ? THEN 0 ELSE ? - started_at END WHERE id IN (${ids.map(() => '?').join(',')}) AND status IN (${OPEN})`,
    params: [now, now, now, now, ...ids],
  };
}

/** A polling wait that polls again: the run goes back to `pending` until the next poll. */
export function repollStmt(r: NonNullable<RequestCommit['repollRun']>): Stmt & { expectAffected: number } {
  return {
    sql: "UPDATE step_runs SET status = 'pending', available_at = ?, lease_until = NULL, output = ?, polls = ?, last_poll_at = ? WHERE id = ? AND status = 'dispatched' AND COALESCE(polls, 0) = ?",
    params: [r.availableAt, json(r.output), r.polls, r.lastPollAt, r.id, r.polls - 1],
    expectAffected: 1,
  };
}

export const POLL_COLUMNS = 'run_id, n, request_id, started_at, finished_at, duration_ms, output, error';

export function pollParams(p: PollRecord): unknown[] {
  return [p.runId, p.n, p.requestId, p.startedAt, p.finishedAt, p.durationMs, json(p.output), json(p.error)];
}

// ---- the attempt open in a request's row (migration 1763800000370) --------------------------

/**
 * Runs read back from a request's row rather than from `step_runs`: the one mark that tells
 * the supervisor (and a migration) where an open attempt lives. A set of records, not a key
 * on them, so the records the API answers with look as they always did.
 */
const IN_ROW = new WeakSet<StepRunRecord>();

/** True when `run` is the attempt open in its request's row (read back, or placed there by a commit). */
export const isInRow = (run: StepRunRecord): boolean => IN_ROW.has(run);
export function markInRow(run: StepRunRecord): StepRunRecord {
  IN_ROW.add(run);
  return run;
}

/** The request columns that hold its open attempt, in the order of {@link openRowParams}. */
export const OPEN_ROW_COLUMNS = 'open_run, open_status, open_lease';
/** What {@link toOpenRow} reads: the request's id and pipeline, then {@link OPEN_ROW_COLUMNS}. */
export const OPEN_ROW_READ = `id, pipeline_id, ${OPEN_ROW_COLUMNS}`;

/**
 * `requests` read through the index of the attempts open in rows, named: without statistics
 * SQLite would rather walk a pipeline's whole history (`ix_requests_pipeline_version`) to find
 * its few attempts in flight, or sort every waiting one, and MariaDB may too. Both dialects have
 * `ix_requests_open_status` (every open attempt, by status) and `ix_requests_open_wait` (the
 * callback deadlines, in order, `byDeadline`): partial indexes on SQLite (migration
 * `1763800000380`), and on MariaDB an index on the status and one on the generated
 * `open_wait_lease` (`1763800000390`). A query through SQLite's must say `open_status` is not
 * NULL (`open_status = …` does); one by deadline names {@link openLeaseBefore}'s column.
 */
export function openRowsFrom(dialect: 'sqlite' | 'mysql', byDeadline = false): string {
  const index = byDeadline ? 'ix_requests_open_wait' : 'ix_requests_open_status';
  return dialect === 'mysql' ? `requests FORCE INDEX (${index})` : `requests INDEXED BY ${index}`;
}

/**
 * The condition and the order of a read of the attempts open in rows with this status whose
 * lease (or, waiting, deadline) is before `?`, earliest first, to go with
 * {@link openRowsFrom}: dispatched ones through `ix_requests_open_status`; waiting ones
 * through `ix_requests_open_wait`, partial on `open_status = 'waiting'` on SQLite (written
 * out), and on `open_wait_lease` on MariaDB (the lease of a waiting attempt, else NULL), which
 * the query must name.
 */
export function openLeaseBefore(dialect: 'sqlite' | 'mysql', status: 'dispatched' | 'waiting'): { where: string; order: string } {
  if (status === 'waiting' && dialect === 'mysql') return { where: 'open_wait_lease < ?', order: 'open_wait_lease' };
  return { where: `open_status = '${status}' AND open_lease < ?`, order: 'open_lease' };
}

/**
 * The JSON text of an open attempt: what the request's row does not already say (its id,
 * pipeline, status and lease are columns), without the fields an open attempt has no value
 * for (output, end, duration, …), and starting with the attempt's id (`{"id":"…"`), so a
 * statement can name the attempt by a prefix of the text ({@link openRunIs}). Every step
 * rewrites it in the request's row: a smaller row is fewer pages written.
 */
export function openRunJson(r: StepRunRecord): string {
  // An object, then one `JSON.stringify`: one flat string (the same text written out by
  // concatenation allocated twice as much, in its intermediate strings).
  const o: Record<string, unknown> = { id: r.id, stepId: r.stepId, seq: r.seq, attempt: r.attempt, kind: r.kind, startedAt: r.startedAt };
  if (r.module !== null) o.module = r.module;
  if (r.transport !== null) o.transport = r.transport;
  if (r.params !== null && r.params !== undefined) o.params = r.params;
  if (r.causedBy !== null) o.causedBy = r.causedBy;
  if (r.availableAt !== null) o.availableAt = r.availableAt;
  if (r.waitEvent) o.waitEvent = r.waitEvent;
  if (r.waitKey !== null && r.waitKey !== undefined) o.waitKey = r.waitKey;
  if (r.deadlineAt !== null && r.deadlineAt !== undefined) o.deadlineAt = r.deadlineAt;
  if (r.override) o.override = r.override;
  return JSON.stringify(o);
}

const openRunPrefix = (id: string): string => `{"id":${JSON.stringify(id)}`;

/** `open_run` names the attempt `id` (its JSON starts with it): SQL text and its parameters. */
export function openRunIs(id: string): { sql: string; params: unknown[] } {
  const prefix = openRunPrefix(id);
  return { sql: "SUBSTR(open_run, 1, ?) = ?", params: [prefix.length, prefix] };
}

/** The values of {@link OPEN_ROW_COLUMNS}: the attempt, or three NULLs for none. */
export function openRowParams(run: StepRunRecord | null): [string | null, string | null, number | null] {
  return run ? [openRunJson(run), run.status, run.leaseUntil ?? null] : [null, null, null];
}

/**
 * The attempt in a request row's columns ({@link OPEN_ROW_READ}), as {@link toRun} reads one
 * from the step log, or `undefined` when the row has none.
 */
export function toOpenRow(row: Record<string, unknown>): StepRunRecord | undefined {
  if (row.open_run === null || row.open_run === undefined) return undefined;
  const o = JSON.parse(String(row.open_run)) as Partial<StepRunRecord> & Pick<StepRunRecord, 'id' | 'stepId' | 'seq' | 'attempt' | 'kind' | 'startedAt'>;
  return markInRow({
    id: o.id, requestId: String(row.id), pipelineId: String(row.pipeline_id), stepId: o.stepId, seq: o.seq, attempt: o.attempt,
    status: row.open_status as StepRunRecord['status'], kind: o.kind, module: o.module ?? null, transport: o.transport ?? null,
    params: o.params ?? null, output: null, error: null, causedBy: o.causedBy ?? null, availableAt: o.availableAt ?? null,
    leaseUntil: numOrNull(row.open_lease), waitEvent: o.waitEvent ?? null, waitKey: o.waitKey ?? null, deadlineAt: o.deadlineAt ?? null,
    override: o.override ?? null, assigned: null, startedAt: o.startedAt, finishedAt: null, durationMs: null, polls: 0, lastPollAt: null, endedBy: null,
  });
}

/**
 * A request's runs (in `seq` order) with the attempt open in its row put in its place, unless
 * the runs have it already (read from the log after it ended there: the log's row is kept).
 */
export function withOpenRun(runs: StepRunRecord[], open: StepRunRecord | undefined): StepRunRecord[] {
  if (!open || runs.some((r) => r.id === open.id)) return runs;
  let at = runs.length;
  while (at > 0 && runs[at - 1]!.seq > open.seq) at--;
  runs.splice(at, 0, open);
  return runs;
}

/** A copy of an open attempt as it is inserted, ended, into `step_runs`; field by field (a spread with overrides is slow in V8). */
function endedCopy(r: StepRunRecord, status: StepRunRecord['status'], at: number): StepRunRecord {
  // As FINISH_RUN_SQL makes a row truthful: it never ends before it started.
  const finishedAt = Math.max(at, r.startedAt);
  return {
    id: r.id, requestId: r.requestId, pipelineId: r.pipelineId, stepId: r.stepId, seq: r.seq, attempt: r.attempt, status, kind: r.kind,
    module: r.module, transport: r.transport, params: r.params, output: r.output, error: r.error, causedBy: r.causedBy, availableAt: r.availableAt,
    leaseUntil: r.leaseUntil ?? null, waitEvent: r.waitEvent ?? null, waitKey: r.waitKey ?? null, deadlineAt: r.deadlineAt ?? null,
    override: r.override ?? null, assigned: r.assigned ?? null, polls: r.polls, lastPollAt: r.lastPollAt ?? null, endedBy: r.endedBy ?? null,
    startedAt: r.startedAt, finishedAt, durationMs: finishedAt - r.startedAt,
  };
}

/** The row an attempt that was open in its request's row ends with, as `finishRun` closes one in `step_runs`. */
export function endedRun(r: StepRunRecord, f: NonNullable<RequestCommit['finishRun']>): StepRunRecord {
  const run = endedCopy(r, f.status, f.finishedAt);
  run.output = f.output ?? null;
  run.error = f.error ?? null;
  run.assigned = f.assigned ?? null;
  run.endedBy = f.endedBy ?? null;
  if (f.polls !== undefined) run.polls = f.polls;
  if (f.lastPollAt !== undefined) run.lastPollAt = f.lastPollAt;
  return run;
}

/** The row an attempt that was open in its request's row ends with when it is cancelled at `now`. */
export const cancelledRun = (r: StepRunRecord, now: number): StepRunRecord => endedCopy(r, 'cancelled', now);

/** The columns of a new request's INSERT: its own, then its open attempt's. */
export const NEW_REQUEST_COLUMNS = `${REQUEST_COLUMNS}, ${OPEN_ROW_COLUMNS}`;

/** The parameters of a new request's INSERT ({@link NEW_REQUEST_COLUMNS}). */
export function newRequestParams(r: RequestRecord, openRows: Map<string, StepRunRecord> | undefined): unknown[] {
  const params = requestParams(r);
  params.push(...openRowParams(openRows?.get(r.id) ?? null));
  return params;
}
