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

/**
 * The requests' rows of a batch, as one multi-row `INSERT … ON DUPLICATE KEY UPDATE` per chunk
 * of {@link BULK_ROWS}: every row exists, so each takes the update branch, which applies the
 * commit only where the row's `rev` is the expected one (`rev = VALUES(rev)`, the expected `rev`
 * riding in the `rev` column). The server counts 2 for a row it updated and 1 for one it left
 * as it was (a stale `rev`) or inserted (a row that is gone), so a chunk is whole only when it
 * counts twice its rows; any other count rolls the transaction back (`expect`).
 *
 * A row's insert branch never survives, so its columns only carry values: `version` carries
 * which of the optional fields the commit sets (1: the open attempt, 2: `vars`; an unset one
 * keeps the row's value), and `pipeline_id`, `payload` and `created_at` are fillers for the
 * columns an insert needs. `rev` is assigned last: each assignment before it still reads the
 * row's old `rev`.
 *
 * Measured against the `UPDATE … JOIN JSON_TABLE(…)` this replaced, 500-row chunks on the
 * real schema: the server's CPU 17–21 against 26–30 µs a row (`docs/performance.md`).
 */
const REQUEST_UPSERT_COLUMNS = 'id, pipeline_id, version, payload, created_at, rev, status, vars, error, joins, step_count, finished_at, updated_at, open_run, open_status, open_lease';
const REQUEST_UPSERT_TUPLE = "(?,'',?,'',0,?,?,?,?,?,?,?,?,?,?,?)";
const HELD = 'rev = VALUES(rev)';
const REQUEST_UPSERT_TAIL = ` ON DUPLICATE KEY UPDATE status = IF(${HELD}, VALUES(status), status), ` +
  `vars = IF(${HELD} AND VALUES(version) & 2, VALUES(vars), vars), error = IF(${HELD}, VALUES(error), error), joins = IF(${HELD}, VALUES(joins), joins), ` +
  `step_count = IF(${HELD}, VALUES(step_count), step_count), finished_at = IF(${HELD}, VALUES(finished_at), finished_at), updated_at = IF(${HELD}, VALUES(updated_at), updated_at), ` +
  `open_run = IF(${HELD} AND VALUES(version) & 1, VALUES(open_run), open_run), open_status = IF(${HELD} AND VALUES(version) & 1, VALUES(open_status), open_status), ` +
  `open_lease = IF(${HELD} AND VALUES(version) & 1, VALUES(open_lease), open_lease), rev = IF(${HELD}, rev + 1, rev)`;
const upsertRequestsSql = (rows: number): string => `INSERT INTO requests (${REQUEST_UPSERT_COLUMNS}) VALUES ${new Array<string>(rows).fill(REQUEST_UPSERT_TUPLE).join(',')}${REQUEST_UPSERT_TAIL}`;

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
 * - the requests' rows, one `INSERT … ON DUPLICATE KEY UPDATE` per chunk, each row only at
 *   its expected `rev`: every row must change (counted 2 a row);
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
  // Chunks of at most BULK_ROWS rows and about BULK_BYTES of values (`vars` may be large), under the packet limit.
  let params: unknown[] = [];
  let rows = 0;
  let bytes = 0;
  const flush = (): void => {
    out.push({ sql: upsertRequestsSql(rows), params, expect: 2 * rows });
    params = [];
    rows = 0;
    bytes = 0;
  };
  for (const c of sorted) {
    const r = c.request;
    // Which optional fields the commit sets: the others keep the row's values.
    const setVars = r.vars !== undefined;
    const setOpen = c.openRow !== undefined;
    const open = openRowParams(c.openRow ?? null);
    const vars = setVars ? varsParam(r.vars) : null;
    const error = json(r.error);
    const joins = json(r.joins);
    // Bytes on the wire: UTF-8, and escaping may double a JSON text.
    const size = 100 + 2 * ((vars ? Buffer.byteLength(vars) : 0) + (error ? Buffer.byteLength(error) : 0) + (joins ? Buffer.byteLength(joins) : 0) + (open[0] ? Buffer.byteLength(open[0]) : 0));
    if (rows > 0 && (rows >= BULK_ROWS || bytes + size > BULK_BYTES)) flush();
    params.push(c.requestId, (setVars ? 2 : 0) + (setOpen ? 1 : 0), c.expectRev, r.status, vars, error, joins, r.stepCount, r.finishedAt, r.updatedAt, open[0], open[1], open[2]);
    rows++;
    bytes += size;
  }
  if (rows > 0) flush();
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
        : `expected ${st.expect / 2} request row(s) changed under lock, counted ${n} (2 a row)`);
    }
  }
  return held;
}
