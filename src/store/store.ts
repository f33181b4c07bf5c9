import type { DataSource } from 'typeorm';
import {
  type PollRecord,
  type RequestCommit,
  type RequestRecord,
  type RequestStatus,
  type StepRunRecord,
} from '../model';
import { openDataSource, type StoreOptions } from './data-source';
import { IntakeStore } from './intake-store';
import { AlertStore } from './alert-store';
import { readOverview, type OverviewData, type OverviewOptions } from './overview';
import { SourceStore } from './source-store';
import { countRequestsByStatus, runLabels, searchRequestRows, searchStepRows, type RequestSearch, type SearchCursor, type StepSearch } from './search';
import { writeBulk } from './mysql-bulk';
import { participantStmts, requestsOfActors } from './participants';
import {
  alertStmts, cancelRunsStmt, FINISH_RUN_SQL, finishRunParams, INSERT_CHUNK, insertStmts, json, num, numOrNull, OPEN, parse, POLL_COLUMNS, pollParams,
  repollStmt, REQUEST_COLUMNS, requestParams, RUN_COLUMNS, runParams, toRequest, toRun, varsParam,
} from './rows';
import { MysqlExecutor, SqliteExecutor, type GuardedUnit, type SqlExecutor, type Stmt } from './sql-executor';

/** The narrow persistence interface the engine depends on. */
export interface Store {
  readonly dialect: 'sqlite' | 'mysql';
  /** Returns the version number of this exact definition, creating it if it is new. */
  ensurePipelineVersion(pipelineId: string, hash: string, definition: string): Promise<number>;
  getPipelineVersion(pipelineId: string, version: number): Promise<{ hash: string; definition: string } | undefined>;
  listPipelineVersions(pipelineId: string): Promise<Array<{ version: number; hash: string; createdAt: number }>>;
  /** Inserts new requests and applies commits, all in one transaction. */
  write(batch: WriteBatch): Promise<boolean[]>;
  /** The request as written; with `callback`, also whether it has an end-of-request callback URL (`hasCallback`). */
  getRequest(id: string, options?: { callback?: boolean }): Promise<RequestRecord | undefined>;
  listStepRuns(requestId: string): Promise<StepRunRecord[]>;
  getStepRun(id: string): Promise<StepRunRecord | undefined>;
  /** Ids of requests in the given statuses, in id order, after `afterId`. */
  listRequestIds(statuses: readonly RequestStatus[], limit: number, afterId?: string): Promise<string[]>;
  countRequests(statuses?: readonly RequestStatus[]): Promise<number>;
  /** Claims pending runs whose time has come (pending → dispatched), at most once across processes. */
  claimDueRuns(now: number, leaseUntil: number, limit: number): Promise<ClaimedRun[]>;
  /** Claims dispatched runs whose lease has passed (their sender died), at most once across processes. */
  claimExpiredLeases(now: number, leaseUntil: (transport: string | null) => number, limit: number): Promise<ClaimedRun[]>;
  /** Ends the leases of these runs now, so any engine sends them again at its next sweep. */
  expireLeases(ids: string[]): Promise<void>;
  /** Deletes up to `limit` requests that ended before `before`, with their step runs and audit. Returns what was deleted. */
  pruneFinished(before: number, limit: number, beforeDelete?: (ids: string[]) => Promise<void>): Promise<string[]>;
  /** Claims one pending run (pending → dispatched); false if another process got it first. */
  claimRun(id: string, leaseUntil: number): Promise<boolean>;
  /** Open runs of wait steps waiting for this event and key. */
  findWaitingForEvent(name: string, key: string, limit: number): Promise<ClaimedRun[]>;
  insertAudit(e: AuditRecord): Promise<void>;
  listAudit(requestId: string): Promise<AuditRecord[]>;
  /** Marks a dispatched run as waiting for its module's callback, until `until`. */
  markWaiting(id: string, until: number): Promise<boolean>;
  /** Replaces a request's trace context if it is still `from`: true for the one process that did. */
  claimTraceContext(id: string, from: string, to: string): Promise<boolean>;
  /** Claims runs whose callback did not come by their deadline, at most once across processes. */
  claimExpiredWaits(now: number, limit: number): Promise<ClaimedRun[]>;
  /** Returns the stored value, or stores `value` if there is none yet (first writer wins). */
  ensureSetting(name: string, value: string): Promise<string>;
  /** A `rate` policy at dispatch: the moment this request may dispatch its first step, or when to ask again. */
  claimFirstDispatch(pipelineId: string, requestId: string, rate: { max: number; perMs: number }, now: number): Promise<{ at: number } | { retryAt: number }>;
  /** A polling wait's poll history, oldest first. */
  listPolls(runId: string, limit: number, afterN?: number): Promise<PollRecord[]>;
  /** Requests still `buffered` although due before `before` (their start event was lost). */
  listStaleBuffered(before: number, limit: number): Promise<string[]>;
  insertApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKey(hash: string): Promise<ApiKeyRecord | undefined>;
  countApiKeys(): Promise<number>;
  close(): Promise<void>;
}

export interface WriteBatch {
  newRequests: RequestRecord[];
  commits: RequestCommit[];
}

export interface AuditRecord {
  id: string;
  requestId: string;
  actor: string;
  /** The key or token issuer the actor's call came through (`key:crm`, `jwt:<iss>`). */
  via?: string | null;
  action: string;
  outcome: string;
  details: unknown;
  createdAt: number;
}

export interface ClaimedRun {
  id: string;
  requestId: string;
}

export interface ApiKeyRecord {
  id: string;
  hash: string;
  name: string;
  roles: string[];
  createdAt: number;
  revokedAt: number | null;
}

const GUARD_SQL = 'UPDATE requests SET status = ?, error = ?, joins = ?, step_count = ?, finished_at = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ?';
/**
 * The same guard for a commit that leaves the status as it is (most steps): SQLite rewrites
 * every index on a column named in SET even when its value does not change, and `status`
 * is in several. It holds only when the status already is the new one; otherwise
 * {@link GUARD_SQL} runs next.
 */
const GUARD_SAME_STATUS_SQL = 'UPDATE requests SET error = ?, joins = ?, step_count = ?, finished_at = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ? AND status = ?';
/** The two guards for a commit that also writes the request's `vars`. */
const GUARD_VARS_SQL = GUARD_SQL.replace('error = ?', 'vars = ?, error = ?');
const GUARD_SAME_STATUS_VARS_SQL = GUARD_SAME_STATUS_SQL.replace('error = ?', 'vars = ?, error = ?');

/** Turns one commit into its guarded statements: the rev check first, then its writes. */
function commitUnit(c: RequestCommit, dialect: 'sqlite' | 'mysql'): GuardedUnit {
  const r = c.request;
  const then: GuardedUnit['then'] = [];
  if (c.finishRun) then.push({ sql: FINISH_RUN_SQL, params: finishRunParams(c.finishRun), expectAffected: 1 });
  if (c.repollRun) then.push(repollStmt(c.repollRun));
  if (c.poll) then.push(...insertStmts('step_polls', POLL_COLUMNS, [pollParams(c.poll)], 1));
  if (c.request.maxSteps !== undefined) then.push({ sql: 'UPDATE requests SET max_steps = ? WHERE id = ?', params: [c.request.maxSteps, c.requestId] });
  if (c.cancelRuns.length > 0) then.push(cancelRunsStmt(c.cancelRuns, r.updatedAt));
  const error = json(r.error);
  const joins = json(r.joins);
  // `vars` is written only by a commit whose step assigned some: most commits leave it alone.
  const withVars = r.vars !== undefined;
  const vars = withVars ? [varsParam(r.vars)] : [];
  return {
    guard: { sql: withVars ? GUARD_VARS_SQL : GUARD_SQL, params: [r.status, ...vars, error, joins, r.stepCount, r.finishedAt, r.updatedAt, c.requestId, c.expectRev] },
    // InnoDB skips index entries whose values did not change, and a second round trip would cost more there.
    guardFirst: dialect === 'sqlite'
      ? { sql: withVars ? GUARD_SAME_STATUS_VARS_SQL : GUARD_SAME_STATUS_SQL, params: [...vars, error, joins, r.stepCount, r.finishedAt, r.updatedAt, c.requestId, c.expectRev, r.status] }
      : undefined,
    then,
  };
}

/** The SQL store for SQLite (better-sqlite3) and MySQL/MariaDB. Only `store/` touches the database. */
export class SqlStore implements Store {
  private constructor(
    private readonly ds: DataSource,
    private readonly x: SqlExecutor,
  ) {}

  get dialect(): 'sqlite' | 'mysql' {
    return this.x.dialect;
  }

  /** The dashboard overview's aggregates at `now` (`overview.ts`). */
  overview(now: number, options?: OverviewOptions): Promise<OverviewData> {
    return readOverview(this.x, now, options);
  }

  private alertStore: AlertStore | undefined;
  /** Durable admin alerts: `alert-store.ts`. */
  get alerts(): AlertStore {
    return (this.alertStore ??= new AlertStore(this.x));
  }

  private intakeStore: IntakeStore | undefined;
  /** The intake's queries (buffer release, keys, callbacks): `intake-store.ts`. */
  get intake(): IntakeStore {
    return (this.intakeStore ??= new IntakeStore(this.ds));
  }

  private sourceStore: SourceStore | undefined;
  /** Broker sources' rejects and backlog: `source-store.ts`. */
  get sources(): SourceStore {
    return (this.sourceStore ??= new SourceStore(this.ds));
  }

  static async open(url: string, options: StoreOptions = {}): Promise<SqlStore> {
    const ds = await openDataSource(url, options);
    const x = ds.driver.options.type === 'mysql' ? new MysqlExecutor(ds) : SqliteExecutor.from(ds);
    return new SqlStore(ds, x);
  }

  async ensurePipelineVersion(pipelineId: string, hash: string, definition: string): Promise<number> {
    for (let tries = 0; ; tries++) {
      const found = await this.x.all<{ version: unknown }>('SELECT version FROM pipeline_versions WHERE pipeline_id = ? AND hash = ?', [pipelineId, hash]);
      if (found[0]) return num(found[0].version);
      const max = await this.x.all<{ v: unknown }>('SELECT MAX(version) AS v FROM pipeline_versions WHERE pipeline_id = ?', [pipelineId]);
      const version = num(max[0]?.v ?? 0) + 1;
      try {
        await this.x.run('INSERT INTO pipeline_versions (pipeline_id, version, hash, definition, created_at) VALUES (?, ?, ?, ?, ?)', [
          pipelineId, version, hash, definition, Date.now(),
        ]);
        return version;
      } catch (err) {
        // Another process registered a version at the same moment: look again.
        if (tries >= 3) throw err;
      }
    }
  }

  async getPipelineVersion(pipelineId: string, version: number): Promise<{ hash: string; definition: string } | undefined> {
    const rows = await this.x.all<{ hash: string; definition: string }>('SELECT hash, definition FROM pipeline_versions WHERE pipeline_id = ? AND version = ?', [pipelineId, version]);
    return rows[0] ? { hash: String(rows[0].hash), definition: String(rows[0].definition) } : undefined;
  }

  async listPipelineVersions(pipelineId: string): Promise<Array<{ version: number; hash: string; createdAt: number }>> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT version, hash, created_at FROM pipeline_versions WHERE pipeline_id = ? ORDER BY version', [pipelineId]);
    return rows.map((r) => ({ version: num(r.version), hash: String(r.hash), createdAt: num(r.created_at) }));
  }

  write(batch: WriteBatch): Promise<boolean[]> {
    const dialect = this.x.dialect;
    // Below a few commits the per-commit path takes fewer round trips than the bulk one.
    if (dialect === 'mysql' && this.x.inTransaction && batch.commits.length >= 3 && new Set(batch.commits.map((c) => c.requestId)).size === batch.commits.length
      && batch.commits.every((c) => !c.poll && !c.repollRun && c.request.maxSteps === undefined)) {
      return writeBulk(batch, this.x.inTransaction.bind(this.x));
    }
    // Sorting by request id (stable, so one request's commits keep their order) makes
    // concurrent MySQL transactions lock rows in the same order, which avoids deadlocks.
    // SQLite runs one transaction at a time, so there the batch keeps its order.
    const order = dialect === 'mysql'
      ? batch.commits.map((c, i) => ({ c, i })).sort((a, b) => (a.c.requestId < b.c.requestId ? -1 : a.c.requestId > b.c.requestId ? 1 : a.i - b.i))
      : undefined;
    const commits = order ? order.map((o) => o.c) : batch.commits;
    const units = commits.map((c) => commitUnit(c, dialect));
    const chunk = dialect === 'sqlite' ? 1 : INSERT_CHUNK;
    const tail = (held: boolean[]): Stmt[] => {
      const runs: unknown[][] = [];
      commits.forEach((c, k) => {
        if (held[k]) for (const run of c.insertRuns) runs.push(runParams(run));
      });
      const requests = insertStmts('requests', REQUEST_COLUMNS, batch.newRequests.map(requestParams), chunk);
      const steps = insertStmts('step_runs', RUN_COLUMNS, runs, chunk);
      const alerts = alertStmts(commits.filter((c, k) => held[k] && c.alerts), chunk);
      const people = participantStmts(commits.filter((_, k) => held[k]), chunk);
      const out = requests.length === 0 ? steps : steps.length === 0 ? requests : [...requests, ...steps];
      return alerts.length === 0 && people.length === 0 ? out : [...out, ...alerts, ...people];
    };
    return this.x.transaction(units, tail).then((held) => {
      if (!order) return held.map((h) => h ?? false);
      const result = new Array<boolean>(batch.commits.length);
      order.forEach(({ i }, k) => (result[i] = held[k] ?? false));
      return result;
    });
  }


  async getRequest(id: string, options: { callback?: boolean } = {}): Promise<RequestRecord | undefined> {
    const extra = options.callback ? ', (callback_url IS NOT NULL) AS has_callback' : '';
    const [row] = await this.x.all<Record<string, unknown>>(`SELECT ${REQUEST_COLUMNS}${extra} FROM requests WHERE id = ?`, [id]);
    if (!row) return undefined;
    const request = toRequest(row);
    if (options.callback) request.hasCallback = num(row.has_callback) === 1;
    return request;
  }

  async listStepRuns(requestId: string): Promise<StepRunRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE request_id = ? ORDER BY seq`, [requestId]);
    return rows.map(toRun);
  }

  async getStepRun(id: string): Promise<StepRunRecord | undefined> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE id = ?`, [id]);
    return rows[0] ? toRun(rows[0]) : undefined;
  }

  async listRequestIds(statuses: readonly RequestStatus[], limit: number, afterId = ''): Promise<string[]> {
    const rows = await this.x.all<{ id: string }>(
      `SELECT id FROM requests WHERE status IN (${statuses.map(() => '?').join(',')}) AND id > ? ORDER BY id LIMIT ?`,
      [...statuses, afterId, limit],
    );
    return rows.map((r) => String(r.id));
  }

  async countRequests(statuses?: readonly RequestStatus[]): Promise<number> {
    const where = statuses ? `WHERE status IN (${statuses.map(() => '?').join(',')})` : '';
    const rows = await this.x.all<{ n: unknown }>(`SELECT COUNT(*) AS n FROM requests ${where}`, statuses ? [...statuses] : []);
    return num(rows[0]?.n ?? 0);
  }

  async claimDueRuns(now: number, leaseUntil: number, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string }>(
      "SELECT id, request_id FROM step_runs WHERE status = 'pending' AND available_at <= ? ORDER BY available_at LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      const n = await this.x.run("UPDATE step_runs SET status = 'dispatched', lease_until = ? WHERE id = ? AND status = 'pending'", [leaseUntil, r.id]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  async expireLeases(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200);
      await this.x.run(`UPDATE step_runs SET lease_until = 0 WHERE status = 'dispatched' AND id IN (${chunk.map(() => '?').join(',')})`, chunk);
    }
  }

  async pruneFinished(before: number, limit: number, beforeDelete?: (ids: string[]) => Promise<void>): Promise<string[]> {
    const rows = await this.x.all<{ id: string }>(
      "SELECT id FROM requests WHERE status IN ('completed', 'stopped') AND finished_at < ? ORDER BY finished_at LIMIT ?",
      [before, limit],
    );
    const ids = rows.map((r) => String(r.id));
    if (ids.length === 0) return ids;
    if (beforeDelete) await beforeDelete(ids);
    const inList = `(${ids.map(() => '?').join(',')})`;
    const stmts = ['DELETE FROM step_polls WHERE request_id IN ', 'DELETE FROM step_runs WHERE request_id IN ', 'DELETE FROM audit_events WHERE request_id IN ', 'DELETE FROM request_participants WHERE request_id IN ', 'DELETE FROM requests WHERE id IN '];
    // Completed and stopped are final, so nothing can change these rows meanwhile.
    await this.x.transaction([], () => stmts.map((sql) => ({ sql: sql + inList, params: ids })));
    return ids;
  }

  async claimRun(id: string, leaseUntil: number): Promise<boolean> {
    return (await this.x.run("UPDATE step_runs SET status = 'dispatched', lease_until = ? WHERE id = ? AND status = 'pending'", [leaseUntil, id])) === 1;
  }

  async claimExpiredLeases(now: number, leaseUntil: (transport: string | null) => number, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string; lease_until: unknown; transport: string | null }>(
      "SELECT id, request_id, lease_until, transport FROM step_runs WHERE status = 'dispatched' AND lease_until < ? ORDER BY lease_until LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      const n = await this.x.run("UPDATE step_runs SET lease_until = ? WHERE id = ? AND status = 'dispatched' AND lease_until = ?", [leaseUntil(r.transport), r.id, num(r.lease_until)]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  /** Which of these requests have a participant row for one of `actors` (src/store/participants.ts). */
  requestsOfActors(ids: string[], actors: string[]): Promise<Set<string>> {
    return requestsOfActors(this.x, ids, actors);
  }

  async findWaitingForEvent(name: string, key: string, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string }>(
      `SELECT id, request_id FROM step_runs WHERE wait_event = ? AND wait_key = ? AND status IN (${OPEN}) ORDER BY seq LIMIT ?`,
      [name, key, limit],
    );
    return rows.map((r) => ({ id: String(r.id), requestId: String(r.request_id) }));
  }

  async insertAudit(e: AuditRecord): Promise<void> {
    await this.x.run('INSERT INTO audit_events (id, request_id, actor, via, action, outcome, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      e.id, e.requestId, e.actor.slice(0, 100), e.via?.slice(0, 200) ?? null, e.action.slice(0, 100), e.outcome, json(e.details), e.createdAt,
    ]);
  }

  async listAudit(requestId: string): Promise<AuditRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT id, request_id, actor, via, action, outcome, details, created_at FROM audit_events WHERE request_id = ? ORDER BY created_at, id', [requestId]);
    return rows.map((r) => ({
      id: String(r.id), requestId: String(r.request_id), actor: String(r.actor), via: r.via === null || r.via === undefined ? null : String(r.via), action: String(r.action),
      outcome: String(r.outcome), details: parse(r.details), createdAt: num(r.created_at),
    }));
  }

  async markWaiting(id: string, until: number): Promise<boolean> {
    return (await this.x.run("UPDATE step_runs SET status = 'waiting', lease_until = ? WHERE id = ? AND status = 'dispatched'", [until, id])) === 1;
  }

  async claimTraceContext(id: string, from: string, to: string): Promise<boolean> {
    return (await this.x.run('UPDATE requests SET trace_context = ? WHERE id = ? AND trace_context = ?', [to, id, from])) === 1;
  }

  async claimExpiredWaits(now: number, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string; lease_until: unknown }>(
      "SELECT id, request_id, lease_until FROM step_runs WHERE status = 'waiting' AND lease_until < ? ORDER BY lease_until LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      // Pushing the deadline far out claims it; the timeout result that follows closes the run.
      const n = await this.x.run("UPDATE step_runs SET lease_until = ? WHERE id = ? AND status = 'waiting' AND lease_until = ?", [now + 3_600_000, r.id, num(r.lease_until)]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  async ensureSetting(name: string, value: string): Promise<string> {
    const found = await this.x.all<{ value: string }>('SELECT value FROM settings WHERE name = ?', [name]);
    if (found[0]) return String(found[0].value);
    try {
      await this.x.run('INSERT INTO settings (name, value) VALUES (?, ?)', [name, value]);
      return value;
    } catch {
      const again = await this.x.all<{ value: string }>('SELECT value FROM settings WHERE name = ?', [name]);
      if (again[0]) return String(again[0].value);
      throw new Error(`could not store setting ${name}`);
    }
  }

  claimFirstDispatch(pipelineId: string, requestId: string, rate: { max: number; perMs: number }, now: number): Promise<{ at: number } | { retryAt: number }> {
    return this.intake.claimFirstDispatch(pipelineId, requestId, rate, now);
  }

  async listPolls(runId: string, limit: number, afterN = 0): Promise<PollRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${POLL_COLUMNS} FROM step_polls WHERE run_id = ? AND n > ? ORDER BY n LIMIT ?`, [runId, afterN, limit]);
    return rows.map((r) => ({
      runId: String(r.run_id), n: num(r.n), requestId: String(r.request_id), startedAt: num(r.started_at), finishedAt: num(r.finished_at),
      durationMs: num(r.duration_ms), output: parse(r.output), error: parse(r.error),
    }));
  }

  async listStaleBuffered(before: number, limit: number): Promise<string[]> {
    const rows = await this.x.all<{ id: string }>("SELECT id FROM requests WHERE status = 'buffered' AND release_at < ? ORDER BY release_at LIMIT ?", [before, limit]);
    return rows.map((r) => String(r.id));
  }

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    await this.x.run('INSERT INTO api_keys (id, hash, name, roles, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)', [
      key.id, key.hash, key.name, key.roles.join('+'), key.createdAt, key.revokedAt,
    ]);
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT id, hash, name, roles, created_at, revoked_at FROM api_keys WHERE hash = ?', [hash]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: String(r.id), hash: String(r.hash), name: String(r.name), roles: String(r.roles).split('+').filter(Boolean),
      createdAt: num(r.created_at), revokedAt: numOrNull(r.revoked_at),
    };
  }

  async countApiKeys(): Promise<number> {
    const rows = await this.x.all<{ n: unknown }>('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL');
    return num(rows[0]?.n ?? 0);
  }

  /** Requests matching the filters, newest first, without payload, vars and joins (src/store/search.ts). */
  async searchRequests(q: RequestSearch): Promise<{ items: RequestRecord[]; next: SearchCursor | undefined }> {
    const columns = REQUEST_COLUMNS.split(', ').filter((c) => c !== 'payload' && c !== 'joins' && c !== 'vars').join(', ');
    const page = await searchRequestRows(this.x, columns, q);
    return { items: page.rows.map(toRequest), next: page.next };
  }

  /** Step runs matching the filters, latest start first (src/store/search.ts). */
  async searchSteps(q: StepSearch): Promise<{ items: StepRunRecord[]; next: SearchCursor | undefined }> {
    const page = await searchStepRows(this.x, RUN_COLUMNS, q);
    return { items: page.rows.map(toRun), next: page.next };
  }

  /** Request counts by pipeline and status, for the given statuses (metrics). */
  countRequestsByStatus(statuses: readonly RequestStatus[]): Promise<Array<{ pipeline: string; status: string; n: number }>> {
    return countRequestsByStatus(this.x, statuses);
  }

  /** Pipeline and transport of step runs, by run id (metrics labels). */
  runLabels(runIds: string[]): Promise<Map<string, { pipeline: string; transport: string | null }>> {
    return runLabels(this.x, runIds);
  }

  /** Every stored API key (hashes only), oldest first. */
  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT id, hash, name, roles, created_at, revoked_at FROM api_keys ORDER BY created_at, id');
    return rows.map((r) => ({
      id: String(r.id), hash: String(r.hash), name: String(r.name), roles: String(r.roles).split('+').filter(Boolean),
      createdAt: num(r.created_at), revokedAt: numOrNull(r.revoked_at),
    }));
  }

  /** Revokes a stored key; false when there is no such key or it was revoked already. */
  async revokeApiKey(id: string, at = Date.now()): Promise<boolean> {
    return (await this.x.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id])) === 1;
  }

  /** Throws unless the database answers (readiness). */
  async ping(): Promise<void> {
    await this.x.all('SELECT 1 AS ok');
  }

  /** Raw access for tests and tools that verify what was persisted. */
  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.x.all<T>(sql, params);
  }

  async close(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}
