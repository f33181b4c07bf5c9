/**
 * A business key's hand-over (`businessKey.onConflict: 'queue'`): the statements that give an
 * ended request's key back and hand it to the oldest request queued for it, shared by
 * `IntakeStore.releaseKey`, `IntakeStore.promoteKeyWaiter` and the per-turn
 * `IntakeStore.handOverKey`.
 */
import { requestIndexTerms } from './request-index-terms';
import { all, run, type Script } from './sql-executor';

/** Statuses after which a request gives its business key back (error_stop keeps it: it may resume). */
export const KEY_FREE = "('completed','stopped')";

/** A key given back by an ended request, and the queued request it went to, if one took it. */
export interface HandOver {
  pipelineId: string;
  key: string;
  promoted?: string;
}

export interface HandOverItem {
  requestId: string;
  /** Whether the request keeps a key nobody queues for (`reuse`). */
  keep: (pipelineId: string) => boolean;
  /** Whether a promoted request waits for its pipeline's gate. */
  gated: (pipelineId: string) => boolean;
}

export type HandOverBatch = Array<HandOverItem & { resolve(h: HandOver | undefined): void; reject(err: unknown): void }>;

export type KeyRow = { pipeline_id: string; active_key: string | null; status: string };
export type Waiter = { id: string; status: string; held: unknown };

export const KEY_ROW_SQL = 'SELECT pipeline_id, active_key, status FROM requests WHERE id = ?';
export const RELEASE_SQL = `UPDATE requests SET active_key = NULL WHERE id = ? AND active_key = ? AND status IN ${KEY_FREE}`;
/**
 * The oldest request queued for a key, and whether the key is taken (params: pipeline, key,
 * pipeline, key). On MySQL `hold = 'key'` is read as `key_queued_at` (migration `1763800000340`).
 */
export const nextWaiterSql = (byKey: string, dialect: 'sqlite' | 'mysql'): string => {
  const t = requestIndexTerms(dialect);
  return `SELECT id, status, (SELECT 1 FROM requests WHERE pipeline_id = ? AND active_key = ?) AS held
    FROM ${byKey} WHERE pipeline_id = ? AND business_key = ? AND ${t.keyQueued} ORDER BY ${t.keyOrder} LIMIT 1`;
};
/**
 * `mustQueueForKey` on SQLite (params: pipeline, key, three times): requests queue for the
 * key; someone holds it; the holder has ended ({@link KEY_FREE}, the statuses of
 * `ix_requests_key_ended`, migration `1763800000350`) and kept it.
 */
export const MUST_QUEUE_SQLITE = `SELECT (SELECT 1 FROM requests INDEXED BY ${requestIndexTerms('sqlite').keyIndex} WHERE pipeline_id = ? AND business_key = ? AND hold = 'key' LIMIT 1) AS waiters,
  (SELECT 1 FROM requests INDEXED BY uq_requests_active_key WHERE pipeline_id = ? AND active_key = ?) AS held,
  (SELECT 1 FROM requests INDEXED BY ix_requests_key_ended WHERE pipeline_id = ? AND active_key = ? AND status IN ${KEY_FREE}) AS ended`;
/** Whether a request holds the key (params: pipeline, key): the unique index answers alone. */
export const HELD_SQL = 'SELECT 1 AS held FROM requests WHERE pipeline_id = ? AND active_key = ?';
/** A queued request stopped meanwhile: it no longer waits for anything. */
export const UNQUEUE_SQL = "UPDATE requests SET hold = NULL WHERE id = ? AND hold = 'key'";
export const PROMOTE_SQL = "UPDATE requests SET active_key = ?, hold = ?, release_at = ? WHERE id = ? AND hold = 'key' AND status = 'buffered'";

/**
 * `IntakeStore.handOverKey` for the ended requests of one turn, in one write
 * transaction (SQLite): the same statements as `releaseKey` and `promoteKeyWaiter`.
 */
export function* handOverScript(dialect: 'sqlite' | 'mysql', byKey: string, items: HandOverItem[], now: number): Script<Array<HandOver | undefined>> {
  const out: Array<HandOver | undefined> = [];
  for (const { requestId, keep, gated } of items) {
    const [r] = yield* all<KeyRow>(KEY_ROW_SQL, [requestId]);
    if (!r || r.active_key === null || (r.status !== 'completed' && r.status !== 'stopped')) {
      out.push(undefined);
      continue;
    }
    const pipelineId = String(r.pipeline_id);
    const key = String(r.active_key);
    let waiter = yield* all<Waiter>(nextWaiterSql(byKey, dialect), [pipelineId, key, pipelineId, key]);
    // Under `reuse`, a key nobody queues for stays with its ended request.
    if (waiter.length === 0 && keep(pipelineId)) {
      out.push(undefined);
      continue;
    }
    if ((yield* run(RELEASE_SQL, [requestId, key])) !== 1) {
      out.push(undefined);
      continue;
    }
    let promoted: string | undefined;
    for (let round = 0; round < 20 && waiter[0]; round++) {
      const w = waiter[0];
      if (w.status === 'buffered') {
        // The key was this request's until the statement above, so nobody else holds it now.
        if ((yield* run(PROMOTE_SQL, [key, gated(pipelineId) ? 'gate' : null, gated(pipelineId) ? null : now, w.id])) === 1) promoted = String(w.id);
        break;
      }
      yield* run(UNQUEUE_SQL, [w.id]);
      waiter = yield* all<Waiter>(nextWaiterSql(byKey, dialect), [pipelineId, key, pipelineId, key]);
    }
    out.push(promoted === undefined ? { pipelineId, key } : { pipelineId, key, promoted });
  }
  return out;
}
