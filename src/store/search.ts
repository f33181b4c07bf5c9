/**
 * Search over requests and the step log, newest first, with keyset (cursor) pagination.
 *
 * Every filter is an equality or a range on an indexed column, every value is a bound
 * parameter, and the sort key is `(time, id)`: `created_at` for requests, `started_at` for
 * step runs, with the time-ordered id breaking ties. A page asks for one row more than it
 * shows, to know whether there is a next one. The indexes that keep these under a few
 * milliseconds at a million step rows are in migration `1763800000010-search-indexes`.
 */
import type { StepRunRecord } from '../model';
import { OPEN_ROW_READ, openRowsFrom, RUN_COLUMNS, toOpenRow, toRun } from './rows';
import { dialectSql, type SqlExecutor } from './sql-executor';
import { MYSQL_SEARCHED_RUN_STATUSES } from './migrations/1763800000320-mysql-lean-run-indexes';
import { SEARCHED_RUN_STATUSES } from './migrations/1763800000300-sqlite-lean-indexes';

/** The last row of a page: where the next page starts (exclusive). */
export interface SearchCursor {
  /** `created_at` (requests) or `started_at` (step runs), epoch ms. */
  t: number;
  id: string;
}

/** Common to both searches. */
export interface SearchWindow {
  /** Only rows at or after this time (epoch ms). */
  since?: number;
  /** Only rows before this time (epoch ms, exclusive). */
  until?: number;
  /** Page size. */
  limit: number;
  /** Continue after this row. */
  after?: SearchCursor;
}

export interface RequestSearch extends SearchWindow {
  pipeline?: string;
  status?: string;
  businessKey?: string;
  test?: boolean;
  /**
   * Only requests where one of these ids has a row in `request_participants`: an actor id,
   * and `role:<r>` for requests offering an action to role `r` now. Driven by
   * `ix_participants_actor`, newest first, with the same cursor.
   */
  actors?: string[];
  /** With `actors`: only requests where one of them is offered an action now. */
  offered?: boolean;
}

export interface StepSearch extends SearchWindow {
  pipeline?: string;
  step?: string;
  status?: string;
}

/** One page of raw rows and the cursor of the next page (absent on the last page). */
export interface RowPage {
  rows: Array<Record<string, unknown>>;
  next: SearchCursor | undefined;
}

type Filter = [column: string, value: unknown];

/**
 * The index whose equality columns are exactly the given filters (in this order), by table.
 * MariaDB is told to use it (`FORCE INDEX`): with a cursor or a time window it otherwise
 * prefers a `ref` scan of the equality prefix over the range that also bounds the time, and
 * reads half the table to skip to a deep page. SQLite picks these by itself.
 */
const EXACT_INDEX: Record<string, Record<string, string>> = {
  requests: {
    '': 'ix_requests_created',
    pipeline_id: 'ix_requests_pipeline_created',
    status: 'ix_requests_search_status',
    'pipeline_id,status': 'ix_requests_search_pipeline_status',
    business_key: 'ix_requests_search_business_key',
    test: 'ix_requests_search_test',
  },
  step_runs: {
    '': 'ix_step_runs_started',
    pipeline_id: 'ix_step_runs_search_pipeline',
    'pipeline_id,step_id': 'ix_step_runs_search_pipeline_step',
    searched_status: 'ix_step_runs_search_status',
    'pipeline_id,searched_status': 'ix_step_runs_search_pipeline_status',
  },
};

function indexHint(x: SqlExecutor, table: string, filters: Filter[]): string {
  if (x.dialect !== 'mysql') return '';
  const key = filters.filter(([, v]) => v !== undefined).map(([c]) => c).join(',');
  const index = EXACT_INDEX[table]?.[key];
  return index ? ` FORCE INDEX (${index})` : '';
}

/** The WHERE clause shared by both tables: equalities, the time window, then the cursor. */
function whereClause(filters: Filter[], time: string, w: SearchWindow): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const [column, value] of filters) {
    if (value === undefined) continue;
    parts.push(`${column} = ?`);
    params.push(value);
  }
  if (w.since !== undefined) {
    parts.push(`${time} >= ?`);
    params.push(w.since);
  }
  if (w.until !== undefined) {
    parts.push(`${time} < ?`);
    params.push(w.until);
  }
  if (w.after) {
    // The plain `time <= ?` bounds the index range; the OR only sorts out equal times.
    parts.push(`${time} <= ?`, `(${time} < ? OR id < ?)`);
    params.push(w.after.t, w.after.t, w.after.id);
  }
  return { sql: parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '', params };
}

/**
 * On SQLite some search indexes are partial (migration `1763800000300`): a query may use one
 * only if its WHERE names the index's condition as written, which a bound parameter does not.
 * This adds that condition where the filter's value implies it. Open runs (pending,
 * dispatched) are few and sit in the sweeper's partial indexes, which SQLite, without
 * statistics, would not pick over walking the time index through every completed run.
 */
const OPEN_RUN_INDEX: Record<string, string> = { pending: 'ix_step_runs_due', dispatched: 'ix_step_runs_lease' };

/**
 * MariaDB: the step log's status indexes hold `searched_status` (migration `1763800000320`),
 * which is NULL but for waiting, failed and cancelled runs. A search for one of those filters
 * on it; pending runs are read through the due index, dispatched ones through the lease
 * index (both few), and completed ones through the time index of the other filters (most runs
 * are completed, so a page is found at once).
 */
function mysqlRunStatus(filters: Filter[]): { filters: Filter[]; terms: string[]; index?: string } {
  const status = filters.find(([c]) => c === 'status')?.[1];
  if (status === undefined) return { filters, terms: [] };
  if ((MYSQL_SEARCHED_RUN_STATUSES as readonly unknown[]).includes(status)) {
    return { filters: filters.map(([c, v]) => [c === 'status' ? 'searched_status' : c, v]), terms: [] };
  }
  if (status === 'pending') return { filters, terms: ['due_at IS NOT NULL'], index: 'ix_step_runs_due' };
  if (status === 'dispatched') return { filters, terms: [], index: 'ix_step_runs_status_lease' };
  const key = filters.filter(([c, v]) => v !== undefined && c !== 'status').map(([c]) => c).join(',');
  return { filters, terms: [], index: EXACT_INDEX.step_runs![key] };
}

function partialTerms(x: SqlExecutor, table: string, filters: Filter[]): { terms: string[]; index?: string } {
  if (x.dialect !== 'sqlite') return { terms: [] };
  const value = (column: string): unknown => filters.find(([c]) => c === column)?.[1];
  if (table === 'step_runs') {
    const status = value('status');
    if (status === 'waiting' || status === 'failed' || status === 'cancelled') return { terms: [SEARCHED_RUN_STATUSES] };
    if (status === 'pending' || status === 'dispatched') return { terms: [`status = '${status}'`], index: OPEN_RUN_INDEX[status] };
  }
  if (table === 'requests' && value('test') === 1) return { terms: ['test = 1'] };
  return { terms: [] };
}

async function page(x: SqlExecutor, table: string, columns: string, time: string, given: Filter[], w: SearchWindow): Promise<RowPage> {
  const mysqlRuns = x.dialect === 'mysql' && table === 'step_runs' ? mysqlRunStatus(given) : undefined;
  const filters = mysqlRuns?.filters ?? given;
  const where = whereClause(filters, time, w);
  const partial = mysqlRuns ?? partialTerms(x, table, filters);
  if (partial.terms.length > 0) where.sql = `${where.sql ? `${where.sql} AND` : 'WHERE'} ${partial.terms.join(' AND ')}`;
  const hint = partial.index ? dialectSql.withIndex(x.dialect, '', partial.index) : indexHint(x, table, filters);
  const rows = await x.all<Record<string, unknown>>(
    `SELECT ${columns} FROM ${table}${hint} ${where.sql} ORDER BY ${time} DESC, id DESC LIMIT ?`,
    [...where.params, w.limit + 1],
  );
  if (rows.length <= w.limit) return { rows, next: undefined };
  rows.length = w.limit;
  const last = rows[rows.length - 1]!;
  return { rows, next: { t: Number(last[time]), id: String(last.id) } };
}

/**
 * Requests of some actors, newest first. Each actor is one arm that reads its rows of
 * `request_participants` in index order (`ix_participants_actor`, or `ix_participants_role`
 * for `offered` rows), each request once (its row with the smallest role), joined to
 * `requests` by primary key for the other filters, and stops after `limit + 1`. The arms are
 * merged, a request found by two actors kept once, and its rows read by id: so a page costs
 * about `limit` index entries per actor, however many requests the actors have.
 */
async function participantPage(x: SqlExecutor, columns: string, filters: Filter[], q: RequestSearch): Promise<RowPage> {
  const arm = (): { sql: string; params: unknown[] } => {
    const parts = q.offered
      ? ['p.actor_id = ?', "p.role = 'offered'"]
      : ['p.actor_id = ?', 'NOT EXISTS (SELECT 1 FROM request_participants d WHERE d.request_id = p.request_id AND d.actor_id = p.actor_id AND d.role < p.role)'];
    const params: unknown[] = [];
    for (const [column, value] of filters) {
      if (value === undefined) continue;
      parts.push(`r.${column} = ?`);
      params.push(value);
    }
    if (q.since !== undefined) {
      parts.push('p.created_at >= ?');
      params.push(q.since);
    }
    if (q.until !== undefined) {
      parts.push('p.created_at < ?');
      params.push(q.until);
    }
    if (q.after) {
      parts.push('p.created_at <= ?', '(p.created_at < ? OR p.request_id < ?)');
      params.push(q.after.t, q.after.t, q.after.id);
    }
    return {
      sql: `SELECT * FROM (SELECT p.request_id AS rid, p.created_at AS t FROM request_participants p JOIN requests r ON r.id = p.request_id WHERE ${parts.join(' AND ')} ORDER BY p.created_at DESC, p.request_id DESC LIMIT ?) a`,
      params,
    };
  };
  const arms = q.actors!.map((actor) => {
    const a = arm();
    return { sql: a.sql, params: [actor, ...a.params, q.limit + 1] };
  });
  const ids = await x.all<{ rid: string; t: unknown }>(
    `SELECT DISTINCT rid, t FROM (${arms.map((a) => a.sql).join(' UNION ALL ')}) u ORDER BY t DESC, rid DESC LIMIT ?`,
    [...arms.flatMap((a) => a.params), q.limit + 1],
  );
  const next = ids.length > q.limit ? ids[q.limit - 1] : undefined;
  const wanted = ids.slice(0, q.limit).map((r) => String(r.rid));
  if (wanted.length === 0) return { rows: [], next: undefined };
  const found = await x.all<Record<string, unknown>>(`SELECT ${columns} FROM requests WHERE id IN (${wanted.map(() => '?').join(',')})`, wanted);
  const byId = new Map(found.map((r) => [String(r.id), r]));
  const rows = wanted.map((id) => byId.get(id)).filter((r): r is Record<string, unknown> => r !== undefined);
  return { rows, next: next ? { t: Number(next.t), id: String(next.rid) } : undefined };
}

/**
 * Requests matching every given filter, newest first. `columns` must include `id` and
 * `created_at`.
 */
export function searchRequestRows(x: SqlExecutor, columns: string, q: RequestSearch): Promise<RowPage> {
  const filters: Filter[] = [
    ['pipeline_id', q.pipeline],
    ['status', q.status],
    ['business_key', q.businessKey],
    ['test', q.test === undefined ? undefined : q.test ? 1 : 0],
  ];
  if (q.actors) return q.actors.length === 0 ? Promise.resolve({ rows: [], next: undefined }) : participantPage(x, columns, filters, q);
  return page(x, 'requests', columns, 'created_at', filters, q);
}

/**
 * Step runs (one per attempt) matching every given filter, latest start first. `columns`
 * must include `id` and `started_at`.
 */
export function searchStepRows(x: SqlExecutor, columns: string, q: StepSearch): Promise<RowPage> {
  const filters: Filter[] = [
    ['pipeline_id', q.pipeline],
    ['step_id', q.step],
    ['status', q.status],
  ];
  return page(x, 'step_runs', columns, 'started_at', filters, q);
}

/**
 * Request counts by pipeline and status, for the given statuses only: the open ones stay
 * few, while counting every completed request would grow with the history.
 */
export async function countRequestsByStatus(x: SqlExecutor, statuses: readonly string[]): Promise<Array<{ pipeline: string; status: string; n: number }>> {
  if (statuses.length === 0) return [];
  const rows = await x.all<{ pipeline_id: string; status: string; n: unknown }>(
    `SELECT pipeline_id, status, COUNT(*) AS n FROM requests WHERE status IN (${statuses.map(() => '?').join(',')}) GROUP BY pipeline_id, status`,
    [...statuses],
  );
  return rows.map((r) => ({ pipeline: String(r.pipeline_id), status: String(r.status), n: Number(r.n) }));
}

/**
 * Where a step run belongs, for labelling metrics: pipeline and transport by run id. With
 * `requestIds` (the runs' requests), also the attempts still open in those requests' rows,
 * read first, so an attempt that ends meanwhile is found in the step log.
 */
export async function runLabels(x: SqlExecutor, runIds: string[], requestIds: string[] = []): Promise<Map<string, { pipeline: string; transport: string | null }>> {
  const out = new Map<string, { pipeline: string; transport: string | null }>();
  if (runIds.length === 0) return out;
  if (requestIds.length > 0) {
    const open = await x.all<Record<string, unknown>>(
      `SELECT ${OPEN_ROW_READ} FROM requests WHERE id IN (${requestIds.map(() => '?').join(',')}) AND open_run IS NOT NULL`,
      requestIds,
    );
    for (const row of open) {
      const run = toOpenRow(row)!;
      out.set(run.id, { pipeline: run.pipelineId, transport: run.transport });
    }
  }
  const rows = await x.all<{ id: string; pipeline_id: string; transport: string | null }>(
    `SELECT id, pipeline_id, transport FROM step_runs WHERE id IN (${runIds.map(() => '?').join(',')})`,
    runIds,
  );
  for (const r of rows) out.set(String(r.id), { pipeline: String(r.pipeline_id), transport: r.transport === null ? null : String(r.transport) });
  return out;
}

/**
 * The attempts open in requests' rows (migration `1763800000370`) that a step search
 * matches, latest start first, at most `limit`: only dispatched and waiting attempts live
 * there, and only those in flight, so they are read through the index of those (`openRowsFrom`:
 * never a pipeline's whole history, which the planner would otherwise pick); their
 * step, start and id are read from the attempt's JSON by the database, which sorts them and
 * answers with the page alone. At 10,000 in flight on SQLite a search took 48–65 ms when
 * every one was read and sorted here, 23–28 ms so (`json_extract` on each is most of it).
 */
export async function openRowRuns(x: SqlExecutor, q: StepSearch): Promise<StepRunRecord[]> {
  if (q.status !== undefined && q.status !== 'dispatched' && q.status !== 'waiting') return [];
  const field = (key: string): string => dialectSql.jsonField(x.dialect, 'open_run', key);
  const started = x.dialect === 'mysql' ? `CAST(${field('startedAt')} AS SIGNED)` : field('startedAt');
  const runId = field('id');
  const parts = [q.status === undefined ? "open_status IN ('dispatched', 'waiting')" : 'open_status = ?'];
  const params: unknown[] = q.status === undefined ? [] : [q.status];
  const add = (sql: string, ...values: unknown[]): void => {
    parts.push(sql);
    params.push(...values);
  };
  if (q.pipeline !== undefined) add('pipeline_id = ?', q.pipeline);
  if (q.step !== undefined) add(`${field('stepId')} = ?`, q.step);
  if (q.since !== undefined) add(`${started} >= ?`, q.since);
  if (q.until !== undefined) add(`${started} < ?`, q.until);
  if (q.after) add(`(${started} < ? OR (${started} = ? AND ${runId} < ?))`, q.after.t, q.after.t, q.after.id);
  const rows = await x.all<Record<string, unknown>>(
    `SELECT ${OPEN_ROW_READ} FROM ${openRowsFrom(x.dialect)} WHERE ${parts.join(' AND ')} ORDER BY ${started} DESC, ${runId} DESC LIMIT ?`,
    [...params, q.limit],
  );
  return rows.map((row) => toOpenRow(row)!);
}

/**
 * Step runs matching the search, latest start first: the step log's page merged with the
 * attempts open in requests' rows (read first: one that ends meanwhile is then found in the
 * log too, and kept once).
 */
export async function searchSteps(x: SqlExecutor, q: StepSearch): Promise<{ items: StepRunRecord[]; next: SearchCursor | undefined }> {
  const open = await openRowRuns(x, q);
  const page = await searchStepRows(x, RUN_COLUMNS, q);
  const items = page.rows.map(toRun);
  if (open.length === 0) return { items, next: page.next };
  const seen = new Set(items.map((r) => r.id));
  const merged = [...items, ...open.filter((r) => !seen.has(r.id))].sort(latestFirst);
  if (merged.length <= q.limit && !page.next) return { items: merged, next: undefined };
  // The log's page holds its first `limit` rows, so the first `limit` of the merge are the search's.
  merged.length = Math.min(merged.length, q.limit);
  const last = merged[merged.length - 1]!;
  return { items: merged, next: { t: last.startedAt, id: last.id } };
}

/** Latest start first, then the larger id: the step search's order. */
const latestFirst = (a: StepRunRecord, b: StepRunRecord): number =>
  b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
