import type { DataSource } from 'typeorm';
import {
  type PollRecord,
  type RequestRecord,
  type RequestStatus,
  type StepRunRecord,
} from '../model';
import { resolve } from 'node:path';
import { openDataSource, sqliteCheckpoint, sqliteSettings, type StoreOptions } from './data-source';
import { startCheckpointer, type Checkpointer } from './checkpointer';
import { IntakeStore } from './intake-store';
import { AlertStore } from './alert-store';
import { readOverview, type OverviewData, type OverviewOptions } from './overview';
import { SourceStore } from './source-store';
import { MigrationStore } from './migration-store';
import { countRequestsByStatus, runLabels, searchRequestRows, searchSteps, type RequestSearch, type SearchCursor, type StepSearch } from './search';
import { requestsOfActors } from './participants';
import { json, num, parse, REQUEST_COLUMNS, toRequest } from './rows';
import { MysqlExecutor, SqliteExecutor, type SqlExecutor } from './sql-executor';
import { writeBatch, type WriteBatch } from './write';
import { ApiKeyStore, type ApiKeyRecord } from './api-key-store';
import { StepStore, type ClaimedRun } from './step-store';
import { requestIndexTerms } from './request-index-terms';

export type { WriteBatch } from './write';
export type { ApiKeyRecord } from './api-key-store';
export type { ClaimedRun } from './step-store';

/** The narrow persistence interface the engine depends on. */
export interface Store {
  readonly dialect: 'sqlite' | 'mysql';
  /** Returns the version number of this exact definition, creating it if it is new. */
  ensurePipelineVersion(pipelineId: string, hash: string, definition: string): Promise<number>;
  getPipelineVersion(pipelineId: string, version: number): Promise<{ hash: string; definition: string } | undefined>;
  listPipelineVersions(pipelineId: string): Promise<Array<{ version: number; hash: string; createdAt: number }>>;
  /**
   * Inserts new requests, applies commits and makes keyed inserts, all in one transaction
   * (`write.ts`). Resolves with whether each commit held, then whether each keyed insert was
   * made (a unique key refused it otherwise).
   */
  write(batch: WriteBatch): Promise<boolean[]>;
  /** The request as written; with `callback`, also whether it has an end-of-request callback URL (`hasCallback`). */
  getRequest(id: string, options?: { callback?: boolean }): Promise<RequestRecord | undefined>;
  listStepRuns(requestId: string): Promise<StepRunRecord[]>;
  /** A run by id; one open in its request's row is found only with `requestId`. */
  getStepRun(id: string, requestId?: string): Promise<StepRunRecord | undefined>;
  /** Ids of requests in the given statuses, in id order, after `afterId`. */
  listRequestIds(statuses: readonly RequestStatus[], limit: number, afterId?: string): Promise<string[]>;
  countRequests(statuses?: readonly RequestStatus[]): Promise<number>;
  /** Claims pending runs whose time has come (pending → dispatched), at most once across processes. */
  claimDueRuns(now: number, leaseUntil: number, limit: number): Promise<ClaimedRun[]>;
  /** Claims dispatched runs whose lease has passed (their sender died), at most once across processes. */
  claimExpiredLeases(now: number, leaseUntil: (transport: string | null) => number, limit: number): Promise<ClaimedRun[]>;
  /** Ends the leases of these runs now, so any engine sends them again at its next sweep. */
  expireLeases(ids: string[], inRows?: Array<{ id: string; requestId: string }>): Promise<void>;
  /** Deletes up to `limit` requests that ended before `before`, with their step runs and audit. Returns what was deleted. */
  pruneFinished(before: number, limit: number, beforeDelete?: (ids: string[]) => Promise<void>): Promise<string[]>;
  /** Claims one pending run (pending → dispatched); false if another process got it first. */
  claimRun(id: string, leaseUntil: number): Promise<boolean>;
  /** Open runs of wait steps waiting for this event and key. */
  findWaitingForEvent(name: string, key: string, limit: number): Promise<ClaimedRun[]>;
  insertAudit(e: AuditRecord): Promise<void>;
  listAudit(requestId: string): Promise<AuditRecord[]>;
  /** Marks a dispatched run as waiting for its module's callback, until `until`. */
  markWaiting(id: string, until: number, requestId?: string): Promise<boolean>;
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
  /** Whole requests by id (admission's pulled starts), with whether each has a callback. */
  getRequests(ids: string[]): Promise<RequestRecord[]>;
  insertApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKey(hash: string): Promise<ApiKeyRecord | undefined>;
  countApiKeys(): Promise<number>;
  close(): Promise<void>;
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

/** The SQL store for SQLite (better-sqlite3) and MySQL/MariaDB. Only `store/` touches the database. */
export class SqlStore implements Store {
  private constructor(
    private readonly ds: DataSource,
    private readonly x: SqlExecutor,
    private readonly checkpointer?: Checkpointer,
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

  private stepStore: StepStore | undefined;
  /** The step log's reads and claims: `step-store.ts`. */
  get steps(): StepStore {
    return (this.stepStore ??= new StepStore(this.x));
  }

  private keyStore: ApiKeyStore | undefined;
  /** Stored API keys: `api-key-store.ts`. */
  get keys(): ApiKeyStore {
    return (this.keyStore ??= new ApiKeyStore(this.x));
  }

  private intakeStore: IntakeStore | undefined;
  /** The intake's queries (buffer release, keys, callbacks): `intake-store.ts`. */
  get intake(): IntakeStore {
    return (this.intakeStore ??= new IntakeStore(this.x));
  }

  private migrationStore: MigrationStore | undefined;
  /** Request migrations' moves, progress and leases: `migration-store.ts`. */
  get migrations(): MigrationStore {
    return (this.migrationStore ??= new MigrationStore(this.x));
  }

  private sourceStore: SourceStore | undefined;
  /** Broker sources' rejects and backlog: `source-store.ts`. */
  get sources(): SourceStore {
    const side = this.checkpointer;
    return (this.sourceStore ??= new SourceStore(this.x, side ? (sql, params) => side.read(sql, params) : undefined));
  }

  static async open(url: string, options: StoreOptions = {}): Promise<SqlStore> {
    const ds = await openDataSource(url, options);
    const x = ds.driver.options.type === 'mysql' ? new MysqlExecutor(ds) : SqliteExecutor.from(ds);
    let checkpointer: Checkpointer | undefined;
    if (x.dialect === 'sqlite' && sqliteCheckpoint(options) === 'THREAD') {
      const { path, synchronous } = sqliteSettings(url, options);
      if (path !== ':memory:') checkpointer = startCheckpointer(resolve(path), synchronous);
    }
    return new SqlStore(ds, x, checkpointer);
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
    return writeBatch(this.x, batch);
  }

  async getRequest(id: string, options: { callback?: boolean } = {}): Promise<RequestRecord | undefined> {
    const extra = options.callback ? ', (callback_url IS NOT NULL) AS has_callback' : '';
    const [row] = await this.x.all<Record<string, unknown>>(`SELECT ${REQUEST_COLUMNS}${extra} FROM requests WHERE id = ?`, [id]);
    if (!row) return undefined;
    const request = toRequest(row);
    if (options.callback) request.hasCallback = num(row.has_callback) === 1;
    return request;
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

  async pruneFinished(before: number, limit: number, beforeDelete?: (ids: string[]) => Promise<void>): Promise<string[]> {
    const rows = await this.x.all<{ id: string }>(
      `SELECT id FROM requests WHERE ${requestIndexTerms(this.x.dialect).finishedStatus} IN ('completed', 'stopped') AND finished_at < ? ORDER BY finished_at LIMIT ?`,
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

  /** Which of these requests have a participant row for one of `actors` (src/store/participants.ts). */
  requestsOfActors(ids: string[], actors: string[]): Promise<Set<string>> {
    return requestsOfActors(this.x, ids, actors);
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

  async claimTraceContext(id: string, from: string, to: string): Promise<boolean> {
    return (await this.x.run('UPDATE requests SET trace_context = ? WHERE id = ? AND trace_context = ?', [to, id, from])) === 1;
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

  /** The requests with these ids that exist, whole (as `getRequest` with `callback` reads one), in no order. */
  async getRequests(ids: string[]): Promise<RequestRecord[]> {
    const rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      rows.push(...(await this.x.all<Record<string, unknown>>(`SELECT ${REQUEST_COLUMNS}, (callback_url IS NOT NULL) AS has_callback FROM requests WHERE id IN (${chunk.map(() => '?').join(',')})`, chunk)));
    }
    return rows.map((row) => {
      const request = toRequest(row);
      request.hasCallback = num(row.has_callback) === 1;
      return request;
    });
  }

  async listStaleBuffered(before: number, limit: number): Promise<string[]> {
    const rows = await this.x.all<{ id: string }>(`SELECT id FROM requests WHERE ${requestIndexTerms(this.x.dialect).buffered} AND release_at < ? ORDER BY release_at LIMIT ?`, [before, limit]);
    return rows.map((r) => String(r.id));
  }

  /** Requests matching the filters, newest first, without payload, vars and joins (src/store/search.ts). */
  async searchRequests(q: RequestSearch): Promise<{ items: RequestRecord[]; next: SearchCursor | undefined }> {
    const columns = REQUEST_COLUMNS.split(', ').filter((c) => c !== 'payload' && c !== 'joins' && c !== 'vars').join(', ');
    const page = await searchRequestRows(this.x, columns, q);
    return { items: page.rows.map(toRequest), next: page.next };
  }

  /** Step runs matching the filters, latest start first (src/store/search.ts). */
  /** Step runs matching the search, latest start first (the step log and the attempts open in requests' rows). */
  searchSteps(q: StepSearch): Promise<{ items: StepRunRecord[]; next: SearchCursor | undefined }> {
    return searchSteps(this.x, q);
  }

  /** Request counts by pipeline and status, for the given statuses (metrics). */
  countRequestsByStatus(statuses: readonly RequestStatus[]): Promise<Array<{ pipeline: string; status: string; n: number }>> {
    return countRequestsByStatus(this.x, statuses);
  }

  /** Pipeline and transport of step runs, by run id (metrics labels). */
  runLabels(runIds: string[], requestIds?: string[]): Promise<Map<string, { pipeline: string; transport: string | null }>> {
    return runLabels(this.x, runIds, requestIds);
  }

  // ---- the step log: `steps` (step-store.ts) --------------------------------------------------

  listStepRuns(requestId: string): Promise<StepRunRecord[]> {
    return this.steps.listStepRuns(requestId);
  }

  getStepRun(id: string, requestId?: string): Promise<StepRunRecord | undefined> {
    return this.steps.getStepRun(id, requestId);
  }

  claimDueRuns(now: number, leaseUntil: number, limit: number): Promise<ClaimedRun[]> {
    return this.steps.claimDueRuns(now, leaseUntil, limit);
  }

  expireLeases(ids: string[], inRows?: Array<{ id: string; requestId: string }>): Promise<void> {
    return this.steps.expireLeases(ids, inRows);
  }

  claimRun(id: string, leaseUntil: number): Promise<boolean> {
    return this.steps.claimRun(id, leaseUntil);
  }

  claimExpiredLeases(now: number, leaseUntil: (transport: string | null) => number, limit: number): Promise<ClaimedRun[]> {
    return this.steps.claimExpiredLeases(now, leaseUntil, limit);
  }

  findWaitingForEvent(name: string, key: string, limit: number): Promise<ClaimedRun[]> {
    return this.steps.findWaitingForEvent(name, key, limit);
  }

  markWaiting(id: string, until: number, requestId?: string): Promise<boolean> {
    return this.steps.markWaiting(id, until, requestId);
  }

  claimExpiredWaits(now: number, limit: number): Promise<ClaimedRun[]> {
    return this.steps.claimExpiredWaits(now, limit);
  }

  listPolls(runId: string, limit: number, afterN?: number): Promise<PollRecord[]> {
    return this.steps.listPolls(runId, limit, afterN);
  }

  // ---- API keys: `keys` (api-key-store.ts) ---------------------------------------------------

  insertApiKey(key: ApiKeyRecord): Promise<void> {
    return this.keys.insertApiKey(key);
  }

  findApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.keys.findApiKey(hash);
  }

  countApiKeys(): Promise<number> {
    return this.keys.countApiKeys();
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.keys.listApiKeys();
  }

  revokeApiKey(id: string, at?: number): Promise<boolean> {
    return this.keys.revokeApiKey(id, at);
  }

  /** Throws unless the database answers (readiness). */
  async ping(): Promise<void> {
    await this.x.all('SELECT 1 AS ok');
  }

  /** Raw access for tests and tools that verify what was persisted. */
  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.x.all<T>(sql, params);
  }

  /** SQLite with the checkpoint thread: its checkpoints so far; otherwise undefined. */
  checkpointStats(): Promise<{ runs: number; frames: number; copied: number }> | undefined {
    return this.checkpointer?.stats();
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.x instanceof MysqlExecutor) await this.x.close();
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}
