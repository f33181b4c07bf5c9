/** The MySQL group-commit write: a whole batch in a handful of bulk statements. */
import { all, InvariantError, run, type Script } from './sql-executor';
import { alertStmts, FINISH_RUN_SQL, insertStmts, json, num, OPEN, REQUEST_COLUMNS, requestParams, RUN_COLUMNS, runParams, varsParam } from './rows';
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

/** Splits rows (as parameter lists) into chunks bounded in rows and in bytes. */
function* derivedChunks<T>(items: T[], toRow: (item: T) => unknown[]): Generator<{ rows: number; params: unknown[] }> {
  let params: unknown[] = [];
  let rows = 0;
  let bytes = 0;
  for (const item of items) {
    const row = toRow(item);
    const size = row.reduce<number>((n, v) => n + (typeof v === 'string' ? v.length : 8), 0);
    if (rows > 0 && (rows >= BULK_ROWS || bytes + size > BULK_BYTES)) {
      yield { rows, params };
      params = [];
      rows = 0;
      bytes = 0;
    }
    for (const v of row) params.push(v);
    rows++;
    bytes += size;
  }
  if (rows > 0) yield { rows, params };
}

/** `SELECT ? AS a, ? AS b UNION ALL SELECT ?, ? …`: a derived table of `rows` rows. */
function unionSelect(columns: string[], rows: number): string {
  const first = `SELECT ${columns.map((c) => `? AS ${c}`).join(', ')}`;
  const rest = ` UNION ALL SELECT ${columns.map(() => '?').join(', ')}`;
  return first + rest.repeat(rows - 1);
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

/** The held commits' request rows, one `UPDATE … JOIN` per chunk. */
function* updateRequests(ok: WriteBatch['commits']): Script<void> {
  for (const { rows, params } of derivedChunks(ok, (c) => {
    const r = c.request;
    // `set_vars` 0 keeps the request's vars (the commit assigned nothing).
    const setVars = r.vars !== undefined;
    return [c.requestId, c.expectRev, r.status, setVars ? 1 : 0, setVars ? varsParam(r.vars) : null, json(r.error), json(r.joins), r.stepCount, r.finishedAt, r.updatedAt];
  })) {
    const n = yield* run(
      `UPDATE requests r JOIN (${unionSelect(['id', 'rev', 'status', 'set_vars', 'vars', 'error', 'joins', 'step_count', 'finished_at', 'updated_at'], rows)}) v ON r.id = v.id AND r.rev = v.rev ` +
      'SET r.status = v.status, r.vars = IF(v.set_vars = 1, v.vars, r.vars), r.error = v.error, r.joins = v.joins, r.step_count = v.step_count, r.finished_at = v.finished_at, r.updated_at = v.updated_at, r.rev = r.rev + 1',
      params,
    );
    if (n !== rows) throw new InvariantError(`expected ${rows} request row(s) changed under lock, got ${n}`);
  }
}

/** The runs the held commits close or cancel. */
function* closeRuns(ok: WriteBatch['commits']): Script<void> {
  const finishing = ok.filter((c) => c.finishRun);
  // Every run a held commit closes must still be open: the exactly-once net. The UPDATE
  // below only closes open runs, and a count short of the batch throws, which rolls the
  // whole transaction back (nothing of it is written). A locking read first would only
  // cost a round trip: the request rows locked above already serialise every writer of
  // these runs.
  for (const { rows, params } of derivedChunks(finishing, (c) => {
    const f = c.finishRun!;
    return [f.id, f.status, json(f.output), json(f.error), json(f.assigned), f.finishedAt, f.durationMs, f.endedBy ?? null];
  })) {
    const n = yield* run(
      `UPDATE step_runs s JOIN (${unionSelect(['id', 'status', 'output', 'error', 'assigned', 'finished_at', 'duration_ms', 'ended_by'], rows)}) v ON s.id = v.id ` +
      // decide() never ends a run before its start; the duration is derived from the row's own start.
      'SET s.status = v.status, s.output = v.output, s.error = v.error, s.assigned = v.assigned, s.duration_ms = v.finished_at - s.started_at, ' +
      `s.finished_at = v.finished_at, s.ended_by = v.ended_by WHERE s.status IN (${OPEN})`,
      params,
    );
    if (n !== rows) throw new InvariantError(`expected ${rows} open step run(s) closed, got ${n}: ${FINISH_RUN_SQL}`);
  }
  const cancels = ok.flatMap((c) => c.cancelRuns.map((id) => [id, c.request.updatedAt]));
  for (const { rows, params } of derivedChunks(cancels, (row) => row)) {
    yield* run(
      `UPDATE step_runs s JOIN (${unionSelect(['id', 'finished_at'], rows)}) v ON s.id = v.id SET s.status = 'cancelled', ` +
      `s.finished_at = v.finished_at, s.duration_ms = GREATEST(0, v.finished_at - s.started_at) WHERE s.status IN (${OPEN})`,
      params,
    );
  }
}

/**
 * MySQL: one batch in a handful of round trips instead of three per commit. The requests
 * of the batch are locked first (`FOR UPDATE`, in id order so that engines never deadlock
 * on each other); a commit holds when its `rev` is still the expected one, exactly as the
 * per-commit guard decides, and the rows stay locked until the transaction ends. Then one
 * `UPDATE … JOIN` per table applies every held commit, and a row count that differs from
 * what the locks promised aborts the batch (a broken invariant, as in the per-commit path).
 */
export function* bulkScript(batch: WriteBatch): Script<boolean[]> {
  const held = yield* lockRevs(batch.commits);
  const ok = batch.commits.filter((_, i) => held[i]);
  yield* updateRequests(ok);
  yield* closeRuns(ok);
  const runs = ok.flatMap((c) => c.insertRuns.map(runParams));
  for (const st of [...insertStmts('requests', REQUEST_COLUMNS, batch.newRequests.map(requestParams)), ...insertStmts('step_runs', RUN_COLUMNS, runs), ...alertStmts(ok), ...participantStmts(ok, BULK_ROWS), ...newParticipantStmts(batch.newAccess ?? [], BULK_ROWS)]) {
    yield* run(st.sql, st.params);
  }
  return held;
}
