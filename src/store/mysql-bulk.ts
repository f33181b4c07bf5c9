/** The MySQL group-commit write: a whole batch in a handful of bulk statements. */
import { all, InvariantError, run, type Checked, type Script } from './sql-executor';
import { alertStmts, FINISH_RUN_SQL, insertStmts, json, NEW_REQUEST_COLUMNS, newRequestParams, num, OPEN, openRowParams, RUN_COLUMNS, runParams, varsParam } from './rows';
import { newParticipantStmts, participantStmts } from './participants';
import type { WriteBatch } from './write';

/** Rows per bulk statement, and roughly the most parameter bytes in one (under MySQL's 16 MB packet). */
const BULK_ROWS = 500;
const BULK_BYTES = 4 * 1024 * 1024;

function chunked<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Splits rows into JSON arrays of arrays (one parameter each), bounded in rows and in bytes.
 * The server reads one with `JSON_TABLE`: one string to scan, where a derived table of
 * `SELECT ? … UNION ALL SELECT ? …` made it parse and prepare a SELECT per row.
 */
function* jsonChunks<T>(items: T[], toRow: (item: T) => unknown[]): Generator<{ rows: number; json: string }> {
  let parts: string[] = [];
  let bytes = 0;
  for (const item of items) {
    const row = JSON.stringify(toRow(item));
    if (parts.length > 0 && (parts.length >= BULK_ROWS || bytes + row.length > BULK_BYTES)) {
      yield { rows: parts.length, json: `[${parts.join(',')}]` };
      parts = [];
      bytes = 0;
    }
    parts.push(row);
    bytes += row.length;
  }
  if (parts.length > 0) yield { rows: parts.length, json: `[${parts.join(',')}]` };
}

/**
 * `JSON_TABLE(?, '$[*]' COLUMNS (…)) v STRAIGHT_JOIN <table>`: the rows of one chunk as a
 * table, read first, each joined to its row of `table` by primary key (`eq_ref`). Ids are
 * compared in the tables' own collation, so the primary key serves the join. A JSON `null`
 * reads as NULL.
 */
function jsonRows(columns: Array<[name: string, type: string]>, table: string): string {
  const cols = columns.map(([name, type], i) => `${name} ${type === 'id' ? 'VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' : type} PATH '$[${i}]'`);
  return `JSON_TABLE(?, '$[*]' COLUMNS (${cols.join(', ')})) v STRAIGHT_JOIN ${table}`;
}

/** Locks the batch's requests (in id order) and tells, per commit, whether its `rev` is still the expected one. */
function* lockRevs(commits: WriteBatch['commits']): Script<boolean[]> {
  const held = new Array<boolean>(commits.length).fill(false);
  if (commits.length === 0) return held;
  const ids = commits.map((c) => c.requestId).sort();
  const revs = new Map<string, number>();
  for (const chunk of chunked(ids, BULK_ROWS)) {
    const rows = yield* all<{ id: unknown; rev: unknown }>(`SELECT id, rev FROM requests WHERE id IN (${chunk.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`, chunk);
    for (const r of rows) revs.set(String(r.id), num(r.rev));
  }
  commits.forEach((c, i) => (held[i] = revs.get(c.requestId) === c.expectRev));
  return held;
}

const REQUEST_JSON_COLUMNS: Array<[string, string]> = [
  ['id', 'id'], ['rev', 'INT'], ['status', 'VARCHAR(16)'], ['set_vars', 'INT'], ['vars', 'LONGTEXT'], ['error', 'LONGTEXT'], ['joins', 'LONGTEXT'],
  ['step_count', 'INT'], ['finished_at', 'BIGINT'], ['updated_at', 'BIGINT'],
  ['set_open', 'INT'], ['open_run', 'LONGTEXT'], ['open_status', 'VARCHAR(16)'], ['open_lease', 'BIGINT'],
];
/** `set_vars` 0 keeps the request's vars, `set_open` 0 its open attempt (the commit changes neither). */
const UPDATE_REQUESTS_SQL = `UPDATE ${jsonRows(REQUEST_JSON_COLUMNS, 'requests r')} ON r.id = v.id AND r.rev = v.rev ` +
  'SET r.status = v.status, r.vars = IF(v.set_vars = 1, v.vars, r.vars), r.error = v.error, r.joins = v.joins, r.step_count = v.step_count, r.finished_at = v.finished_at, r.updated_at = v.updated_at, ' +
  'r.open_run = IF(v.set_open = 1, v.open_run, r.open_run), r.open_status = IF(v.set_open = 1, v.open_status, r.open_status), r.open_lease = IF(v.set_open = 1, v.open_lease, r.open_lease), r.rev = r.rev + 1';

const CLOSE_JSON_COLUMNS: Array<[string, string]> = [
  ['id', 'id'], ['status', 'VARCHAR(16)'], ['output', 'LONGTEXT'], ['error', 'LONGTEXT'], ['assigned', 'LONGTEXT'], ['finished_at', 'BIGINT'], ['ended_by', 'VARCHAR(16)'],
];
// decide() never ends a run before its start; the duration is derived from the row's own start.
const CLOSE_RUNS_SQL = `UPDATE ${jsonRows(CLOSE_JSON_COLUMNS, 'step_runs s')} ON s.id = v.id ` +
  'SET s.status = v.status, s.output = v.output, s.error = v.error, s.assigned = v.assigned, s.duration_ms = v.finished_at - s.started_at, ' +
  `s.finished_at = v.finished_at, s.ended_by = v.ended_by WHERE s.status IN (${OPEN})`;
const CANCEL_RUNS_SQL = `UPDATE ${jsonRows([['id', 'id'], ['finished_at', 'BIGINT']], 'step_runs s')} ON s.id = v.id SET s.status = 'cancelled', ` +
  `s.finished_at = v.finished_at, s.duration_ms = GREATEST(0, v.finished_at - s.started_at) WHERE s.status IN (${OPEN})`;

/**
 * Every write of a batch whose held commits are `ok`, in order, each with the rows it must
 * change where that is known (`expect`):
 *
 * - the requests' rows, one `UPDATE … JOIN` per chunk, each row only at its expected `rev`:
 *   every row must change;
 * - the runs the commits close: every one must still be open (the exactly-once net: the
 *   UPDATE only closes open runs). No locking read of the runs first: the request rows,
 *   locked by the statement before, already serialise every writer of their runs;
 * - the runs they cancel (any that are still open), then the inserts: new requests, next
 *   runs, alerts and participants.
 *
 * The commits go in request id order, so two transactions lock requests in the same order.
 */
export function bulkWrites(batch: WriteBatch, ok: WriteBatch['commits']): Checked[] {
  const out: Checked[] = [];
  const sorted = ok.length > 1 ? [...ok].sort((a, b) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0)) : ok;
  for (const { rows, json: rowsJson } of jsonChunks(sorted, (c) => {
    const r = c.request;
    // `set_vars` 0 keeps the request's vars (the commit assigned nothing).
    const setVars = r.vars !== undefined;
    const setOpen = c.openRow !== undefined;
    return [
      c.requestId, c.expectRev, r.status, setVars ? 1 : 0, setVars ? varsParam(r.vars) : null, json(r.error), json(r.joins), r.stepCount, r.finishedAt, r.updatedAt,
      setOpen ? 1 : 0, ...openRowParams(c.openRow ?? null),
    ];
  })) out.push({ sql: UPDATE_REQUESTS_SQL, params: [rowsJson], expect: rows });
  // A run open in its request's row is not in `step_runs` to close: it is inserted there, ended.
  for (const { rows, json: rowsJson } of jsonChunks(sorted.filter((c) => c.finishRun && !c.finishRun.inRow), (c) => {
    const f = c.finishRun!;
    return [f.id, f.status, json(f.output), json(f.error), json(f.assigned), f.finishedAt, f.endedBy ?? null];
  })) out.push({ sql: CLOSE_RUNS_SQL, params: [rowsJson], expect: rows });
  const cancels = sorted.flatMap((c) => c.cancelRuns.map((id) => [id, c.request.updatedAt]));
  for (const { json: rowsJson } of jsonChunks(cancels, (row) => row)) out.push({ sql: CANCEL_RUNS_SQL, params: [rowsJson] });
  const runs: unknown[][] = [];
  for (const c of ok) {
    for (const r of c.insertRuns) if (r !== c.openRow) runs.push(runParams(r));
    if (c.endedRows) for (const r of c.endedRows) runs.push(runParams(r));
  }
  out.push(
    ...insertStmts('requests', NEW_REQUEST_COLUMNS, batch.newRequests.map((r) => newRequestParams(r, batch.newOpenRows))), ...insertStmts('step_runs', RUN_COLUMNS, runs),
    ...alertStmts(ok), ...participantStmts(ok, BULK_ROWS), ...newParticipantStmts(batch.newAccess ?? [], BULK_ROWS),
  );
  return out;
}

/**
 * MySQL: one batch in a handful of round trips instead of three per commit. The requests
 * of the batch are locked first (`FOR UPDATE`, in id order so that engines never deadlock
 * on each other); a commit holds when its `rev` is still the expected one, exactly as the
 * per-commit guard decides, and the rows stay locked until the transaction ends. Then
 * {@link bulkWrites} applies every held commit, and a row count that differs from what the
 * locks promised aborts the batch (a broken invariant, as in the per-commit path).
 */
export function* bulkScript(batch: WriteBatch): Script<boolean[]> {
  const held = yield* lockRevs(batch.commits);
  const ok = batch.commits.filter((_, i) => held[i]);
  for (const st of bulkWrites(batch, ok)) {
    const n = yield* run(st.sql, st.params);
    if (st.expect !== undefined && n !== st.expect) {
      throw new InvariantError(st.sql === CLOSE_RUNS_SQL
        ? `expected ${st.expect} open step run(s) closed, got ${n}: ${FINISH_RUN_SQL}`
        : `expected ${st.expect} request row(s) changed under lock, got ${n}`);
    }
  }
  return held;
}
