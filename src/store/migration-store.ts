/**
 * The rows of request migrations (issue 15): the guarded move of a request to another version
 * of its pipeline, and the bulk migrations' progress, lease and refusals. One move is one
 * guarded unit: it holds only while the request's `rev` (and version) are the ones it was
 * checked at, so a request that moved on meanwhile is never half-migrated.
 */
import type { RequestError, RequestRecord, RequestStatus, StepRunRecord } from '../model';
import { json, OPEN, OPEN_ROW_COLUMNS, openRunIs, parse, num, numOrNull, REQUEST_COLUMNS, RUN_COLUMNS, toOpenRow, toRequest, toRun, withOpenRun } from './rows';
import { dialectSql, type GuardedUnit, type SqlExecutor, type Stmt } from './sql-executor';
import type { AuditRecord } from './store';

/** One request's move, as `migration/move.ts` builds it. */
export interface RequestMove {
  requestId: string;
  expectRev: number;
  fromVersion: number;
  toVersion: number;
  joins: Record<string, string[]>;
  error: RequestError | null;
  updatedAt: number;
  /**
   * Runs whose step id changes (open ones, and completed ones whose outputs move). `openRun`:
   * the run is open in the request's row, and this is its new JSON (`openRunJson`).
   */
  renames: Array<{ runId: string; stepId: string; openRun?: string }>;
  /** Waiting runs whose event name and key are replaced. */
  rewaits: Array<{ runId: string; event: string; key: string }>;
  audit: AuditRecord;
}

export interface MigrationRecord {
  id: string;
  pipelineId: string;
  fromVersion: number;
  toVersion: number;
  plan: unknown;
  filter: unknown;
  dryRun: boolean;
  /** `running`, `done` or `failed`. */
  status: string;
  actor: string;
  via: string | null;
  afterId: string;
  total: number;
  migrated: number;
  refused: number;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

/** A batch's progress, written with its moves: counts, the cursor, and the refusals. */
export interface MigrationProgress {
  migrationId: string;
  owner: string;
  leaseUntil: number;
  afterId?: string;
  /** Counted as migrated whatever held (a dry run's "would move"); otherwise the held moves count. */
  counted?: number;
  refusals: Array<{ requestId: string; problems: unknown }>;
  now: number;
}

export interface CandidateQuery {
  pipelineId: string;
  version: number;
  statuses: readonly RequestStatus[];
  step?: string;
  businessKey?: string;
  since?: number;
  until?: number;
  afterId: string;
  limit: number;
}

/** The lease was taken by another engine: the batch is rolled back. */
export class LeaseLostError extends Error {}

const COLUMNS = 'id, pipeline_id, from_version, to_version, plan, filter, dry_run, status, actor, via, after_id, total, migrated, refused, error, created_at, updated_at, finished_at';
const MOVE_SQL = 'UPDATE requests SET version = ?, joins = ?, error = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ? AND version = ?';
const RENAME_SQL = 'UPDATE step_runs SET step_id = ? WHERE id = ? AND request_id = ?';
/** An attempt open in the request's row renamed: its JSON replaced, if it is still that attempt. */
function renameOpenRow(requestId: string, runId: string, openRun: string): Stmt & { expectAffected: number } {
  const is = openRunIs(runId);
  return { sql: `UPDATE requests SET open_run = ? WHERE id = ? AND ${is.sql}`, params: [openRun, requestId, ...is.params], expectAffected: 1 };
}
const REWAIT_SQL = `UPDATE step_runs SET wait_event = ?, wait_key = ? WHERE id = ? AND status IN (${OPEN})`;
const AUDIT_SQL = 'INSERT INTO audit_events (id, request_id, actor, via, action, outcome, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';

function moveUnit(m: RequestMove): GuardedUnit {
  const a = m.audit;
  return {
    guard: { sql: MOVE_SQL, params: [m.toVersion, json(m.joins), json(m.error), m.updatedAt, m.requestId, m.expectRev, m.fromVersion] },
    then: [
      ...m.renames.map((r) => (r.openRun === undefined ? { sql: RENAME_SQL, params: [r.stepId, r.runId, m.requestId], expectAffected: 1 } : renameOpenRow(m.requestId, r.runId, r.openRun))),
      ...m.rewaits.map((w) => ({ sql: REWAIT_SQL, params: [w.event, w.key, w.runId] })),
      { sql: AUDIT_SQL, params: [a.id, a.requestId, a.actor.slice(0, 100), a.via?.slice(0, 200) ?? null, a.action, a.outcome, json(a.details), a.createdAt] },
    ],
  };
}

function toMigration(r: Record<string, unknown>): MigrationRecord {
  return {
    id: String(r.id), pipelineId: String(r.pipeline_id), fromVersion: num(r.from_version), toVersion: num(r.to_version), plan: parse(r.plan), filter: parse(r.filter),
    dryRun: num(r.dry_run) === 1, status: String(r.status), actor: String(r.actor), via: r.via === null || r.via === undefined ? null : String(r.via),
    afterId: String(r.after_id ?? ''), total: num(r.total), migrated: num(r.migrated), refused: num(r.refused), error: r.error === null || r.error === undefined ? null : String(r.error),
    createdAt: num(r.created_at), updatedAt: num(r.updated_at), finishedAt: numOrNull(r.finished_at),
  };
}

const isUniqueViolation = (err: unknown): boolean => {
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = String(e.driverError?.code ?? e.code ?? '');
  return code === 'ER_DUP_ENTRY' || code.startsWith('SQLITE_CONSTRAINT');
};

export class MigrationStore {
  constructor(private readonly x: SqlExecutor) {}

  /**
   * Moves requests, each in its own guarded unit, all in one transaction. With `progress`, the
   * migration's lease is checked first (lost: everything rolls back, `LeaseLostError`) and its
   * counts, cursor and refusals are written in the same transaction. Returns which moves held.
   */
  async move(moves: RequestMove[], progress?: MigrationProgress): Promise<boolean[]> {
    const units = moves.map(moveUnit);
    if (progress) {
      units.unshift({
        guard: { sql: "UPDATE request_migrations SET lease_until = ?, beats = beats + 1, updated_at = ? WHERE id = ? AND owner = ? AND status = 'running'", params: [progress.leaseUntil, progress.now, progress.migrationId, progress.owner] },
        then: [],
      });
    }
    const tail = (held: boolean[]): Stmt[] => (progress ? progressStmts(progress, held) : []);
    const held = await this.x.transaction(units, tail);
    return progress ? held.slice(1) : held;
  }

  /**
   * Requests with their step runs (in `seq` order), read in two queries: the requests (and
   * the attempts open in their rows) first, so an attempt that ends meanwhile is found in the
   * step log too, and kept once.
   */
  async load(ids: string[]): Promise<Array<{ request: RequestRecord; runs: StepRunRecord[] }>> {
    if (ids.length === 0) return [];
    const marks = ids.map(() => '?').join(',');
    const requests = await this.x.all<Record<string, unknown>>(`SELECT ${REQUEST_COLUMNS}, ${OPEN_ROW_COLUMNS} FROM requests WHERE id IN (${marks}) ORDER BY id`, ids);
    const runs = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE request_id IN (${marks}) ORDER BY request_id, seq`, ids);
    const byRequest = new Map<string, StepRunRecord[]>();
    for (const row of runs) {
      const run = toRun(row);
      let list = byRequest.get(run.requestId);
      if (!list) byRequest.set(run.requestId, (list = []));
      list.push(run);
    }
    return requests.map((row) => {
      const request = toRequest(row);
      return { request, runs: withOpenRun(byRequest.get(request.id) ?? [], toOpenRow(row)) };
    });
  }

  /** The ids of requests a bulk migration takes, in id order after `afterId`. */
  async candidates(q: CandidateQuery): Promise<string[]> {
    const { where, params } = candidateWhere(q, this.x.dialect);
    const rows = await this.x.all<{ id: string }>(`SELECT id FROM requests r WHERE ${where} AND r.id > ? ORDER BY r.id LIMIT ?`, [...params, q.afterId, q.limit]);
    return rows.map((r) => String(r.id));
  }

  async countCandidates(q: Omit<CandidateQuery, 'afterId' | 'limit'>): Promise<number> {
    const { where, params } = candidateWhere(q, this.x.dialect);
    const rows = await this.x.all<{ n: unknown }>(`SELECT COUNT(*) AS n FROM requests r WHERE ${where}`, params);
    return num(rows[0]?.n ?? 0);
  }

  /** Stores a new migration; `false` when one that changes requests already runs for this pipeline. */
  async create(m: Omit<MigrationRecord, 'status' | 'afterId' | 'migrated' | 'refused' | 'error' | 'updatedAt' | 'finishedAt'>): Promise<boolean> {
    try {
      await this.x.run(
        'INSERT INTO request_migrations (id, pipeline_id, from_version, to_version, plan, filter, dry_run, status, active_pipeline, actor, via, owner, lease_until, beats, after_id, total, migrated, refused, created_at, updated_at) '
        + "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, NULL, 0, 0, '', ?, 0, 0, ?, ?)",
        [m.id, m.pipelineId, m.fromVersion, m.toVersion, json(m.plan), json(m.filter), m.dryRun ? 1 : 0, m.dryRun ? null : m.pipelineId, m.actor.slice(0, 100), m.via?.slice(0, 200) ?? null, m.total, m.createdAt, m.createdAt],
      );
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${COLUMNS} FROM request_migrations WHERE id = ?`, [id]);
    return rows[0] ? toMigration(rows[0]) : undefined;
  }

  async refusals(id: string, limit: number): Promise<Array<{ requestId: string; problems: unknown }>> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT request_id, problems FROM request_migration_refusals WHERE migration_id = ? ORDER BY request_id LIMIT ?', [id, limit]);
    return rows.map((r) => ({ requestId: String(r.request_id), problems: parse(r.problems) }));
  }

  /** Takes a running migration whose lease has passed (new, or its engine died), at most once across processes. */
  async claim(owner: string, now: number, leaseUntil: number): Promise<MigrationRecord | undefined> {
    const rows = await this.x.all<{ id: string; lease_until: unknown }>("SELECT id, lease_until FROM request_migrations WHERE status = 'running' AND lease_until < ? ORDER BY created_at LIMIT 5", [now]);
    for (const r of rows) {
      const n = await this.x.run("UPDATE request_migrations SET owner = ?, lease_until = ?, beats = beats + 1 WHERE id = ? AND status = 'running' AND lease_until = ?", [owner, leaseUntil, r.id, num(r.lease_until)]);
      if (n === 1) return this.get(String(r.id));
    }
    return undefined;
  }

  /** Ends a migration (`done` or `failed`) and frees its pipeline for the next one. */
  async finish(id: string, owner: string, status: 'done' | 'failed', now: number, error?: string): Promise<boolean> {
    return (await this.x.run(
      'UPDATE request_migrations SET status = ?, active_pipeline = NULL, error = ?, finished_at = ?, updated_at = ?, lease_until = 0 WHERE id = ? AND owner = ? AND status = \'running\'',
      [status, error?.slice(0, 1000) ?? null, now, now, id, owner],
    )) === 1;
  }

  /** How many requests of each version of a pipeline are in each status. */
  async versionCounts(pipelineId: string): Promise<Array<{ version: number; status: string; n: number }>> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT version, status, COUNT(*) AS n FROM requests WHERE pipeline_id = ? GROUP BY version, status', [pipelineId]);
    return rows.map((r) => ({ version: num(r.version), status: String(r.status), n: num(r.n) }));
  }

  /** Hands a running migration back (this engine stops): any engine may take it at once. */
  async release(id: string, owner: string): Promise<void> {
    await this.x.run("UPDATE request_migrations SET lease_until = 0 WHERE id = ? AND owner = ? AND status = 'running'", [id, owner]);
  }

  /** The running migration of a pipeline that changes requests, if any. */
  async activeOf(pipelineId: string): Promise<string | undefined> {
    const rows = await this.x.all<{ id: string }>('SELECT id FROM request_migrations WHERE active_pipeline = ?', [pipelineId]);
    return rows[0] ? String(rows[0].id) : undefined;
  }
}

function candidateWhere(q: Omit<CandidateQuery, 'afterId' | 'limit'>, dialect: 'sqlite' | 'mysql'): { where: string; params: unknown[] } {
  const parts = ['r.pipeline_id = ?', 'r.version = ?', `r.status IN (${q.statuses.map(() => '?').join(',')})`];
  const params: unknown[] = [q.pipelineId, q.version, ...q.statuses];
  const add = (sql: string, value: unknown): void => {
    parts.push(sql);
    params.push(value);
  };
  if (q.businessKey !== undefined) add('r.business_key = ?', q.businessKey);
  if (q.since !== undefined) add('r.created_at >= ?', q.since);
  if (q.until !== undefined) add('r.created_at < ?', q.until);
  if (q.step !== undefined) {
    // An open attempt of the step in the log, or the one open in the request's row.
    const rowStep = dialectSql.jsonField(dialect, 'r.open_run', 'stepId');
    parts.push(`(EXISTS (SELECT 1 FROM step_runs s WHERE s.request_id = r.id AND s.step_id = ? AND s.status IN (${OPEN})) OR ${rowStep} = ?)`);
    params.push(q.step, q.step);
  }
  return { where: parts.join(' AND '), params };
}

function progressStmts(p: MigrationProgress, held: boolean[]): Stmt[] {
  if (!held[0]) throw new LeaseLostError(`migration ${p.migrationId}: another engine took it over`);
  const moved = p.counted ?? held.slice(1).filter(Boolean).length;
  const out: Stmt[] = [{
    sql: `UPDATE request_migrations SET migrated = migrated + ?, refused = refused + ?${p.afterId !== undefined ? ', after_id = ?' : ''} WHERE id = ?`,
    params: [moved, p.refusals.length, ...(p.afterId !== undefined ? [p.afterId] : []), p.migrationId],
  }];
  for (const r of p.refusals) {
    out.push({ sql: 'INSERT INTO request_migration_refusals (migration_id, request_id, problems, created_at) VALUES (?, ?, ?, ?)', params: [p.migrationId, r.requestId, json(r.problems), p.now] });
  }
  return out;
}
