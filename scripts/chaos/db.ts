/**
 * Read-only SQL over the campaign's database, the same queries on SQLite and MariaDB, and
 * the end-of-run verdict. Nothing here writes.
 *
 * SQLite is opened afresh (read-only) for each query, so that no handle is held across a
 * SIGKILL of the engine that owns the file.
 */
import Database from 'better-sqlite3';
import type { Connection } from 'mysql2/promise';

/** The few queries the campaign needs: `?` placeholders on both dialects. */
export interface CampaignDb {
  all<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

export function sqliteDb(file: string): CampaignDb {
  return {
    all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        db.pragma('busy_timeout = 5000');
        return Promise.resolve(db.prepare(sql).all(...params) as T[]);
      } finally {
        db.close();
      }
    },
  };
}

export function mysqlDb(c: Connection): CampaignDb {
  return {
    async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      const [rows] = await c.query(sql, params);
      return rows as T[];
    },
  };
}

const num = (v: unknown): number => Number(v ?? 0);

/** Requests or step runs by status. */
export async function countByStatus(db: CampaignDb, table: 'requests' | 'step_runs'): Promise<Record<string, number>> {
  const rows = await db.all<{ status: string; n: unknown }>(`SELECT status, COUNT(*) AS n FROM ${table} GROUP BY status`);
  return Object.fromEntries(rows.map((r) => [r.status, num(r.n)]));
}

/** Step runs that are still open (pending, dispatched, waiting): in the step log, and in requests' rows (migration 1763800000370). */
export async function countOpenRuns(db: CampaignDb): Promise<number> {
  const [r] = await db.all<{ n: unknown; inRow: unknown }>(
    "SELECT (SELECT COUNT(*) FROM step_runs WHERE status IN ('pending', 'dispatched', 'waiting')) AS n, (SELECT COUNT(*) FROM requests WHERE open_status IS NOT NULL) AS inRow",
  );
  return num(r?.n) + num(r?.inRow);
}

/** The keys of wait runs still waiting for event `name`, at most `limit`. */
export async function waitingKeys(db: CampaignDb, name: string, limit: number): Promise<string[]> {
  const rows = await db.all<{ wait_key: string }>(
    "SELECT wait_key FROM step_runs WHERE wait_event = ? AND status IN ('pending', 'dispatched', 'waiting') LIMIT ?",
    [name, limit],
  );
  return rows.map((r) => String(r.wait_key));
}

export interface CampaignVerdict {
  /** Requests by status (the whole database). */
  requests: Record<string, number>;
  /** Step runs by status. */
  runs: Record<string, number>;
  /** Accepted ids that are `completed`. */
  completed: number;
  /** Accepted ids with no row at all: a 2xx that was not durable. */
  missing: number;
  /** Requests still `buffered`: accepted and never started. */
  buffered: number;
  /** Accepted ids not completed, with their status (the first 20). */
  notCompleted: Array<{ id: string; status: string }>;
  /** (request, step) pairs committed more than once. */
  duplicates: number;
  /** (request, step) pairs whose number of committed results is not 1 (the first 20). */
  notOnce: Array<{ request_id: string; step_id: string; done: number }>;
  /** Completed requests whose committed steps are not exactly the pipeline's (the first 20). */
  wrongSteps: Array<{ request_id: string; steps: string }>;
  /** Committed outputs that are not their own step's (the first 20). */
  wrongOutputs: Array<{ request_id: string; step_id: string; output: string }>;
  /** Runs still open. */
  open: number;
  /** Rows whose idempotency key (the submitter's tag) names more than one request. */
  duplicateRequests: number;
  /** Rows the submitter never got an id for (accepted by the server, unknown to the client). */
  unknownToClient: number;
  /** Rows of other tags than the campaign's, or without one. */
  foreign: number;
}

/**
 * The exactly-once verdict over the whole database. `accepted` maps each tag (the
 * Idempotency-Key and `payload.tag` of one submit) to the id the API answered.
 */
export async function campaignVerdict(db: CampaignDb, accepted: Map<string, string>, expectedSteps: string[], tags: Set<string>): Promise<CampaignVerdict> {
  const rows = await db.all<{ id: string; status: string; idempotency_key: string | null; payload: string }>(
    'SELECT id, status, idempotency_key, payload FROM requests',
  );
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  const tagOf = new Map<string, string>();
  const perTag = new Map<string, number>();
  let foreign = 0;
  for (const r of rows) {
    const tag = r.idempotency_key === null ? undefined : String(r.idempotency_key);
    const payloadTag = (JSON.parse(String(r.payload)) as { tag?: unknown }).tag;
    if (tag === undefined || !tags.has(tag) || payloadTag !== tag) {
      foreign++;
      continue;
    }
    tagOf.set(String(r.id), tag);
    perTag.set(tag, (perTag.get(tag) ?? 0) + 1);
  }
  const acceptedIds = new Set(accepted.values());
  let missing = 0;
  let completed = 0;
  const notCompleted: CampaignVerdict['notCompleted'] = [];
  for (const id of acceptedIds) {
    const r = byId.get(id);
    if (!r) missing++;
    else if (r.status === 'completed') completed++;
    else if (notCompleted.length < 20) notCompleted.push({ id, status: r.status });
  }
  const notOnceRows = await db.all<{ request_id: string; step_id: string; done: unknown }>(
    `SELECT request_id, step_id, SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS done
       FROM step_runs GROUP BY request_id, step_id HAVING SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) <> 1`,
  );
  const notOnce = notOnceRows.map((r) => ({ request_id: String(r.request_id), step_id: String(r.step_id), done: num(r.done) }));
  const outputs = await db.all<{ request_id: string; step_id: string; output: string }>("SELECT request_id, step_id, output FROM step_runs WHERE status = 'completed'");
  const want = [...expectedSteps].sort().join(',');
  const stepsOf = new Map<string, string[]>();
  const wrongOutputs: CampaignVerdict['wrongOutputs'] = [];
  for (const o of outputs) {
    const id = String(o.request_id);
    const list = stepsOf.get(id) ?? [];
    list.push(String(o.step_id));
    stepsOf.set(id, list);
    if (!outputMatches(String(o.step_id), String(o.output), tagOf.get(id)) && wrongOutputs.length < 20) {
      wrongOutputs.push({ request_id: id, step_id: String(o.step_id), output: String(o.output).slice(0, 200) });
    }
  }
  const wrongSteps: CampaignVerdict['wrongSteps'] = [];
  for (const r of rows) {
    if (r.status !== 'completed') continue;
    const steps = (stepsOf.get(String(r.id)) ?? []).sort().join(',');
    if (steps !== want && wrongSteps.length < 20) wrongSteps.push({ request_id: String(r.id), steps });
  }
  const clientIds = acceptedIds;
  return {
    requests: await countByStatus(db, 'requests'),
    runs: await countByStatus(db, 'step_runs'),
    completed,
    missing,
    buffered: rows.filter((r) => r.status === 'buffered').length,
    notCompleted,
    duplicates: notOnce.filter((r) => r.done > 1).length,
    notOnce: notOnce.slice(0, 20),
    wrongSteps,
    wrongOutputs,
    open: await countOpenRuns(db),
    duplicateRequests: [...perTag.values()].filter((n) => n > 1).length,
    unknownToClient: rows.filter((r) => tagOf.has(String(r.id)) && !clientIds.has(String(r.id))).length,
    foreign,
  };
}

/** Each step of `chaos-mix` commits its own output: `{ step, n }`, the wait its event, m2 its tag. */
function outputMatches(stepId: string, text: string, tag: string | undefined): boolean {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return false;
  }
  if (!o || typeof o !== 'object') return false;
  if (stepId === 'w') return o.event === 'chaos-go' && o.key === tag;
  if (o.step !== stepId) return false;
  return stepId !== 'm2' || o.tag === tag;
}
