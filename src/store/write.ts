/**
 * The group commit's write: new requests, keyed inserts and step commits of one batch, in one
 * transaction. Each commit is a guarded unit (its `rev` check first, then its writes); on
 * MySQL a larger batch takes the bulk path (`mysql-bulk.ts`) instead.
 */
import type { RequestCommit, RequestRecord, StepRunRecord } from '../model';
import { bulkScript, bulkWrites } from './mysql-bulk';
import { newParticipantStmts, participantStmts, type NewAccess } from './participants';
import {
  alertStmts, cancelRunsStmt, FINISH_RUN_SQL, finishRunParams, INSERT_CHUNK, insertStmts, json, KEYED_COLUMNS, keyedParams, NEW_REQUEST_COLUMNS, newRequestParams,
  OPEN_ROW_COLUMNS, openRowParams, POLL_COLUMNS, pollParams, repollStmt, RUN_COLUMNS, runParams, varsParam, type IntakeInsert,
} from './rows';
import { all, dialectSql, MysqlExecutor, run, unitsScript, type Checked, type GuardedUnit, type Script, type SqlExecutor, type Stmt } from './sql-executor';

export interface WriteBatch {
  newRequests: RequestRecord[];
  commits: RequestCommit[];
  /**
   * Requests with an idempotency key, a business key, a hold or a callback: each is inserted
   * unless a unique index refuses it (`ON CONFLICT DO NOTHING`), which refuses that one
   * request only, never the batch.
   */
  keyed?: IntakeInsert[];
  /** Participant rows of `newRequests` (only those that have some). */
  newAccess?: NewAccess[];
  /** The first runs of `newRequests` inserted already started, written after them. */
  newRuns?: StepRunRecord[];
  /** The attempts open in the rows of `newRequests`, by request id (`RequestCommit.openRow`). */
  newOpenRows?: Map<string, StepRunRecord>;
}

const GUARD_SQL = 'status = ?, error = ?, joins = ?, step_count = ?, finished_at = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ?';
/**
 * The same guard for a commit that leaves the status as it is (most steps): SQLite rewrites
 * every index on a column named in SET even when its value does not change, and `status`
 * is in several (`finished_at` in one). It holds only when the status and the finish time
 * already are the new ones; otherwise {@link GUARD_SQL} runs next. A commit that says it
 * moves them (`moved`: a start, an end) runs {@link GUARD_SQL} alone.
 */
const GUARD_SAME_STATUS_SQL = 'error = ?, joins = ?, step_count = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ? AND status = ? AND finished_at IS ?';
/**
 * The guards' texts: `UPDATE requests SET`, then `vars` when the commit's step assigned some
 * (most commits leave it alone) and the open attempt when the commit changes it
 * (`RequestCommit.openRow`), then the guard. Their parameters come first, in that order.
 */
const GUARD_TEXTS: string[] = [];
function guardText(guard: string, vars: boolean, open: boolean): string {
  // An index, not a string key: this runs once or twice a step.
  const key = (guard === GUARD_SQL ? 4 : 0) + (vars ? 2 : 0) + (open ? 1 : 0);
  return (GUARD_TEXTS[key] ??= `UPDATE requests SET ${vars ? 'vars = ?, ' : ''}${open ? `${OPEN_ROW_COLUMNS.split(', ').map((c) => `${c} = ?`).join(', ')}, ` : ''}${guard}`);
}

/**
 * SQLite's first guard for a commit whose new attempt takes the row with the status the row
 * has (`RequestCommit.openStatusKept`: most steps): it writes the attempt and its lease but
 * does not name `open_status`, so SQLite leaves `ix_requests_open_status` as it is (migration
 * `1763800000380`), and it holds only if the row's status is that one.
 */
const GUARD_KEPT_TEXTS: string[] = [];
function guardKeptText(vars: boolean): string {
  return (GUARD_KEPT_TEXTS[vars ? 1 : 0] ??= `UPDATE requests SET ${vars ? 'vars = ?, ' : ''}open_run = ?, open_lease = ?, ${GUARD_SAME_STATUS_SQL} AND open_status IS ?`);
}

/** The parameters that go before a guard's own: `vars` and the open attempt, where the commit writes them. */
function headParams(vars: string | null | undefined, open: ReturnType<typeof openRowParams> | undefined, rest: unknown[]): unknown[] {
  if (vars === undefined && open === undefined) return rest;
  const out: unknown[] = vars === undefined ? [] : [vars];
  if (open) out.push(open[0], open[1], open[2]);
  for (let i = 0; i < rest.length; i++) out.push(rest[i]);
  return out;
}

/** {@link guardKeptText}'s parameters: `vars`, the attempt and its lease, the guard's own, then the status the row must have. */
function keptParams(vars: string | null | undefined, open: ReturnType<typeof openRowParams>, rest: unknown[]): unknown[] {
  const out: unknown[] = vars === undefined ? [] : [vars];
  out.push(open[0], open[2]);
  for (let i = 0; i < rest.length; i++) out.push(rest[i]);
  out.push(open[1]);
  return out;
}

/** Turns one commit into its guarded statements: the rev check first, then its writes. */
function commitUnit(c: RequestCommit, dialect: 'sqlite' | 'mysql'): GuardedUnit {
  const r = c.request;
  // Most commits close one run and do nothing else: a one-item literal, not a push into `[]`
  // (which gives the array room for 17). A run open in the request's row is not in
  // `step_runs` to close: it is inserted there, ended (`endedRows`, in the tail).
  const then: GuardedUnit['then'] = c.finishRun && !c.finishRun.inRow ? [{ sql: FINISH_RUN_SQL, params: finishRunParams(c.finishRun), expectAffected: 1 }] : [];
  if (c.repollRun) then.push(repollStmt(c.repollRun));
  if (c.poll) then.push(...insertStmts('step_polls', POLL_COLUMNS, [pollParams(c.poll)], 1));
  if (c.request.maxSteps !== undefined) then.push({ sql: 'UPDATE requests SET max_steps = ? WHERE id = ?', params: [c.request.maxSteps, c.requestId] });
  if (c.cancelRuns.length > 0) then.push(cancelRunsStmt(c.cancelRuns, r.updatedAt));
  const error = json(r.error);
  const joins = json(r.joins);
  // `vars` and the open attempt are written only by a commit that changes them; their
  // parameters go first, where the guard's text names them.
  const withVars = r.vars !== undefined;
  const withOpen = c.openRow !== undefined;
  const vars = withVars ? varsParam(r.vars) : undefined;
  const open = withOpen ? openRowParams(c.openRow!) : undefined;
  const guard = { sql: guardText(GUARD_SQL, withVars, withOpen), params: headParams(vars, open, [r.status, error, joins, r.stepCount, r.finishedAt, r.updatedAt, c.requestId, c.expectRev]) };
  // InnoDB skips index entries whose values did not change, and a second round trip would cost more there.
  let guardFirst: Stmt | undefined;
  if (dialect === 'sqlite' && !c.moved) {
    const rest = [error, joins, r.stepCount, r.updatedAt, c.requestId, c.expectRev, r.status, r.finishedAt];
    guardFirst = open && c.openStatusKept
      ? { sql: guardKeptText(withVars), params: keptParams(vars, open, rest) }
      : { sql: guardText(GUARD_SAME_STATUS_SQL, withVars, withOpen), params: headParams(vars, open, rest) };
  }
  return { guard, guardFirst, then };
}

/**
 * Rows per INSERT: one on SQLite (in-process, no round trips, no statement journal), chunks
 * of `INSERT_CHUNK` on MySQL.
 */
const chunkFor = (dialect: 'sqlite' | 'mysql'): number => (dialect === 'sqlite' ? 1 : INSERT_CHUNK);

/**
 * Keyed inserts, skipping any that would break a unique index (the same idempotency key, or
 * a business key already held). Answers, per row, whether it was inserted.
 *
 * On SQLite each row is a single-row statement, whose change count answers. A multi-row
 * INSERT there needs a statement journal (it may have to undo its earlier rows), and a
 * journal of 400 rows' pages outgrew its 64 KiB in memory and went to a temporary file:
 * 12.7 KiB written per event at 300,000 events (`CONVEYOR_SQL_IO`, `scripts/bench/sql-time.cjs`).
 * On MySQL, chunks of `INSERT_CHUNK` rows (round trips); the ids found afterwards are the ones
 * inserted (they are new).
 */
function* keyedScript(rows: IntakeInsert[], dialect: 'sqlite' | 'mysql'): Script<boolean[]> {
  if (rows.length === 0) return [];
  const onConflict = dialectSql.skipDuplicates(dialect);
  const inserted = new Set<string>();
  const stmts = insertStmts('requests', KEYED_COLUMNS, rows.map(keyedParams), chunkFor(dialect));
  if (dialect === 'sqlite') {
    for (let i = 0; i < stmts.length; i++) {
      if ((yield* run(stmts[i]!.sql + onConflict, stmts[i]!.params)) === 1) inserted.add(rows[i]!.record.id);
    }
  } else {
    for (let i = 0; i < stmts.length; i++) {
      yield* run(stmts[i]!.sql + onConflict, stmts[i]!.params);
      const ids = rows.slice(i * INSERT_CHUNK, (i + 1) * INSERT_CHUNK).map((r) => r.record.id);
      const found = yield* all<{ id: string }>(`SELECT id FROM requests WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
      for (const f of found) inserted.add(String(f.id));
    }
  }
  const access = rows.filter((r) => r.access && r.access.length > 0 && inserted.has(r.record.id))
    .map((r) => ({ requestId: r.record.id, createdAt: r.record.createdAt, rows: r.access! }));
  for (const st of newParticipantStmts(access, chunkFor(dialect))) yield* run(st.sql, st.params);
  return rows.map((r) => inserted.has(r.record.id));
}

/** MySQL takes the bulk path for three or more commits of distinct requests without polls or budgets. */
function bulkable(batch: WriteBatch): boolean {
  return batch.commits.length >= 3 && !batch.newRuns?.length && new Set(batch.commits.map((c) => c.requestId)).size === batch.commits.length
    && batch.commits.every((c) => !c.poll && !c.repollRun && c.request.maxSteps === undefined);
}

/**
 * Inserts new requests, applies commits and makes the keyed inserts, all in one transaction.
 * Resolves with one answer per commit (held, in the batch's order), then one per keyed
 * insert (inserted).
 */
export function writeBatch(x: SqlExecutor, batch: WriteBatch): Promise<boolean[]> {
  const dialect = x.dialect;
  const keyed = batch.keyed ?? [];
  // Below a few commits the per-commit path takes fewer round trips than the bulk one.
  if (dialect === 'mysql' && bulkable(batch)) {
    if (keyed.length === 0 && x instanceof MysqlExecutor) return bulkOptimistic(x, batch);
    return x.script(function* () {
      const held = yield* bulkScript(batch);
      return keyed.length === 0 ? held : [...held, ...(yield* keyedScript(keyed, dialect))];
    }, { readCommitted: true });
  }
  // Sorting by request id (stable, so one request's commits keep their order) makes
  // concurrent MySQL transactions lock rows in the same order, which avoids deadlocks.
  // SQLite runs one transaction at a time, so there the batch keeps its order.
  const order = dialect === 'mysql'
    ? batch.commits.map((c, i) => ({ c, i })).sort((a, b) => (a.c.requestId < b.c.requestId ? -1 : a.c.requestId > b.c.requestId ? 1 : a.i - b.i))
    : undefined;
  const commits = order ? order.map((o) => o.c) : batch.commits;
  const units = commits.map((c) => commitUnit(c, dialect));
  const tail = (held: boolean[]): Stmt[] => {
    const chunk = chunkFor(dialect);
    const out = tailStmts(batch.newRequests, commits, held, chunk, batch.newRuns, batch.newOpenRows);
    return batch.newAccess?.length ? [...out, ...newParticipantStmts(batch.newAccess, chunk)] : out;
  };
  const script = keyed.length === 0
    ? () => unitsScript(units, tail)
    : function* (): Script<boolean[]> {
      const held = yield* unitsScript(units, tail);
      return [...held, ...(yield* keyedScript(keyed, dialect))];
    };
  if (keyed.length === 0) {
    if (x instanceof MysqlExecutor) return sendAllFirst(x, units, tail, order, script);
    // SQLite: the units without the script's generator (`SqliteExecutor.transaction`).
    return x.transaction(units, tail).then((held) => inBatchOrder(held, order));
  }
  return x.script(script).then((held) => inBatchOrder(held, order));
}

/** Answers in the batch's order, from answers in the order the commits were written. */
function inBatchOrder(held: boolean[], order: Array<{ i: number }> | undefined): boolean[] {
  if (!order) return held.map((h) => h ?? false);
  const result = held.slice(0);
  order.forEach(({ i }, k) => (result[i] = held[k] ?? false));
  return result;
}

const SEND_ALL_BYTES = 1024 * 1024;

/**
 * MySQL, a small batch (one request in flight sends one commit at a time): written as if
 * every guard holds, in one multi-statement query and a `COMMIT` (`MysqlExecutor.sendAll`),
 * instead of a round trip per statement. When a guard or a `then` count is not the expected
 * one, that transaction is rolled back whole and the batch goes the statement-by-statement
 * way, which decides per commit exactly as before.
 */
async function sendAllFirst(x: MysqlExecutor, units: GuardedUnit[], tail: (held: boolean[]) => Stmt[], order: Array<{ i: number }> | undefined, script: () => Script<boolean[]>): Promise<boolean[]> {
  const stmts: Checked[] = [];
  for (const unit of units) stmts.push({ ...unit.guard, expect: 1 }, ...unit.then.map((st) => ({ sql: st.sql, params: st.params, expect: st.expectAffected })));
  const held = units.map(() => true);
  stmts.push(...tail(held));
  // A large batch (many new requests, large outputs) keeps one statement per query, well under the packet limit.
  if (paramBytes(stmts) <= SEND_ALL_BYTES && (await x.sendAll(stmts))) return inBatchOrder(held, order);
  return x.script(script).then((h) => inBatchOrder(h, order));
}

/**
 * The most bytes of parameters a bulk batch sends as one multi-statement query. Escaping can
 * double a JSON string, and MariaDB's `max_allowed_packet` is 16 MB by default; a server with
 * a smaller one refuses the query, and the batch then goes the statement-by-statement way.
 */
const BULK_SEND_ALL_BYTES = 4 * 1024 * 1024;

const paramBytes = (stmts: Stmt[]): number => stmts.reduce((n, st) => st.params.reduce<number>((m, v) => m + (typeof v === 'string' ? v.length : 8), n), 0);

/**
 * MySQL, a bulk batch: written as if every commit holds, in one multi-statement query and a
 * `COMMIT` (two round trips; the statement-by-statement bulk path takes one per statement,
 * and a locking read of every request first). Each request's `UPDATE` names its expected
 * `rev`, so a stale commit changes no row; when any count is not the expected one (a commit
 * no longer holds, or a run is no longer open), that transaction is rolled back whole and
 * the batch goes the locking way ({@link bulkScript}), which decides per commit.
 */
async function bulkOptimistic(x: MysqlExecutor, batch: WriteBatch): Promise<boolean[]> {
  const stmts = bulkWrites(batch, batch.commits);
  if (paramBytes(stmts) <= BULK_SEND_ALL_BYTES && (await x.sendAll(stmts, { readCommitted: true }))) return batch.commits.map(() => true);
  return x.script(() => bulkScript(batch), { readCommitted: true });
}

/** The inserts that follow the guarded units: new requests, the held commits' runs, alerts and participants. */
function tailStmts(newRequests: RequestRecord[], commits: RequestCommit[], held: boolean[], chunk: number, newRuns: StepRunRecord[] = [], newOpenRows?: Map<string, StepRunRecord>): Stmt[] {
  // After the requests: a run's request must exist (foreign key).
  const runs: unknown[][] = newRuns.map(runParams);
  commits.forEach((c, k) => {
    if (!held[k]) return;
    for (const r of c.insertRuns) if (r !== c.openRow) runs.push(runParams(r));
    if (c.endedRows) for (const r of c.endedRows) runs.push(runParams(r));
  });
  const requests = insertStmts('requests', NEW_REQUEST_COLUMNS, newRequests.map((r) => newRequestParams(r, newOpenRows)), chunk);
  const steps = insertStmts('step_runs', RUN_COLUMNS, runs, chunk);
  const alerts = alertStmts(commits.filter((c, k) => held[k] && c.alerts), chunk);
  const people = participantStmts(commits.filter((_, k) => held[k]), chunk);
  const out = requests.length === 0 ? steps : steps.length === 0 ? requests : [...requests, ...steps];
  return alerts.length === 0 && people.length === 0 ? out : [...out, ...alerts, ...people];
}
