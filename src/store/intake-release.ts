/**
 * The intake's release scripts: buffered requests released under a pipeline's policy
 * (`rate`, `batch`, `schedule`, `maxActive`) and the `rate` claim at dispatch. Each is one
 * transaction script (`SqlExecutor.script`) serialised across processes on the pipeline's
 * gate mark (`intake_marks`, locked `FOR UPDATE` on MySQL; SQLite runs one writer at a time).
 */
import { num } from './rows';
import { all, dialectSql, run, type Op, type Script } from './sql-executor';

type Dialect = 'sqlite' | 'mysql';

/** Requests released by one call; `nextAt` is when releasing more may be possible. */
export interface Release {
  ids: string[];
  nextAt: number;
}

/** Released requests this recent that have not started count as active (`maxActive`). */
const RELEASED_HORIZON_MS = 5_000;

/** Locks (MySQL) and reads an intake mark inside a transaction script. */
function* lockMark(d: Dialect, id: string): Generator<Op, number, unknown> {
  const rows = yield* all<{ at: unknown }>(`SELECT at FROM intake_marks WHERE id = ?${dialectSql.forUpdate(d)}`, [id]);
  return num(rows[0]?.at ?? 0);
}

/**
 * The oldest requests held by the gate, released (hold cleared, release_at set), in arrival
 * order. The select leaves `status` out so it runs on `ix_requests_hold` (pipeline, hold,
 * created_at) however large the backlog; a held request an operator stopped meanwhile only
 * loses its hold.
 */
function* takeHeld(pipelineId: string, limit: number, now: number, createdUpTo?: number): Generator<Op, string[], unknown> {
  if (limit <= 0) return [];
  const upTo = createdUpTo === undefined ? '' : ' AND created_at <= ?';
  const params: unknown[] = createdUpTo === undefined ? [pipelineId, limit] : [pipelineId, createdUpTo, limit];
  const rows = yield* all<{ id: string; status: string }>(
    `SELECT id, status FROM requests WHERE pipeline_id = ? AND hold = 'gate'${upTo} ORDER BY created_at, id LIMIT ?`,
    params,
  );
  if (rows.length === 0) return [];
  const ids = rows.map((r) => String(r.id));
  const placeholders = ids.map(() => '?').join(',');
  const n = yield* run(`UPDATE requests SET hold = NULL, release_at = ? WHERE id IN (${placeholders}) AND hold = 'gate'`, [now, ...ids]);
  const buffered = rows.filter((r) => r.status === 'buffered').map((r) => String(r.id));
  if (n === ids.length) return buffered;
  // Something else changed one of them in between: report only what we released.
  const done = yield* all<{ id: string }>(`SELECT id FROM requests WHERE id IN (${placeholders}) AND status = 'buffered' AND hold IS NULL AND release_at = ?`, [...ids, now]);
  const set = new Set(done.map((d) => String(d.id)));
  return buffered.filter((id) => set.has(id));
}

/**
 * Requests of the pipeline started and not ended, plus those released in the last few
 * seconds that have not started yet. Two index range counts, so the cost follows what is
 * active, not the backlog: (pipeline, status) and (pipeline, release_at). A release older
 * than that horizon that never started is a lost start, which the supervisor's sweep redoes.
 */
function* countActive(d: Dialect, pipelineId: string, now: number): Generator<Op, number, unknown> {
  const [a] = yield* all<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = ? AND status IN ('running','waiting')", [pipelineId]);
  const [b] = yield* all<{ n: unknown }>(
    `SELECT COUNT(*) AS n FROM ${dialectSql.withIndex(d, 'requests', 'ix_requests_pipeline_release')} WHERE pipeline_id = ? AND release_at > ? AND status = 'buffered' AND hold IS NULL`,
    [pipelineId, now - RELEASED_HORIZON_MS],
  );
  return num(a?.n ?? 0) + num(b?.n ?? 0);
}

export function* rateScript(d: Dialect, pipelineId: string, rate: { max: number; perMs: number } | undefined, maxActive: number | undefined, now: number, limit: number): Script<Release> {
  yield* lockMark(d, `gate:${pipelineId}`);
  let room = Number.POSITIVE_INFINITY;
  let rateFullUntil = Number.POSITIVE_INFINITY;
  if (rate) {
    const [w] = yield* all<{ n: unknown; oldest: unknown; newest: unknown }>(
      'SELECT COUNT(*) AS n, MIN(release_at) AS oldest, MAX(release_at) AS newest FROM requests WHERE pipeline_id = ? AND release_at > ?',
      [pipelineId, now - rate.perMs],
    );
    // `now` was read before the lock was had: another process may have released meanwhile at
    // a later moment. Releasing no earlier than that keeps releases in arrival order.
    if (w?.newest !== null && w?.newest !== undefined) now = Math.max(now, num(w.newest));
    const oldest = w?.oldest === null || w?.oldest === undefined ? now : num(w.oldest);
    room = rate.max - num(w?.n ?? 0);
    rateFullUntil = oldest + rate.perMs;
  }
  const active = maxActive === undefined ? Number.POSITIVE_INFINITY : maxActive - (yield* countActive(d, pipelineId, now));
  // Full by the window: wait for its oldest release to leave it. Full by maxActive: wait for an end (a poke).
  if (room <= 0) return { ids: [], nextAt: rateFullUntil };
  if (active <= 0) return { ids: [], nextAt: Number.POSITIVE_INFINITY };
  const take = Math.min(room, active, limit);
  const ids = yield* takeHeld(pipelineId, take, now);
  if (ids.length < take || take === active) return { ids, nextAt: Number.POSITIVE_INFINITY };
  return { ids, nextAt: take < room ? now : Math.min(rateFullUntil, now + (rate?.perMs ?? 0)) };
}

/** What a claim of the first dispatch answers: the moment it may dispatch, or when to ask again. */
export type FirstDispatch = { at: number } | { retryAt: number };

/**
 * `rate` at dispatch for the requests of one pipeline that start in the same event-loop turn,
 * in one transaction (serialised on the gate mark, across processes): each request that
 * claimed before keeps its moment; of the others, as many as the window `(now - perMs, now]`
 * has room for, in the order given, get `now`; the rest are told when the oldest moment in
 * the window frees up. One transaction a turn instead of one a request: at 400 first
 * dispatches a second the per-request commits were most of the engine's commits.
 */
export function* firstDispatchScript(d: Dialect, pipelineId: string, requestIds: string[], rate: { max: number; perMs: number }, now: number): Script<FirstDispatch[]> {
  // The releaser creates the gate mark when it starts; a pipeline that arrived later may not
  // have one yet, and locking a row that does not exist serialises nothing.
  const mark = `gate:${pipelineId}`;
  if ((yield* all(`SELECT at FROM intake_marks WHERE id = ?${dialectSql.forUpdate(d)}`, [mark])).length === 0) {
    yield* run(`INSERT INTO intake_marks (id, at) VALUES (?, 0)${dialectSql.skipDuplicates(d)}`, [mark]);
    yield* lockMark(d, mark);
  }
  const before = new Map<string, number>();
  for (let i = 0; i < requestIds.length; i += CLAIM_CHUNK) {
    const ids = requestIds.slice(i, i + CLAIM_CHUNK);
    const rows = yield* all<{ id: string; at: unknown }>(`SELECT id, first_dispatch_at AS at FROM requests WHERE id IN (${ids.map(() => '?').join(',')}) AND first_dispatch_at IS NOT NULL`, ids);
    for (const r of rows) before.set(String(r.id), num(r.at));
  }
  const [w] = yield* all<{ n: unknown; oldest: unknown; newest: unknown }>(
    'SELECT COUNT(*) AS n, MIN(first_dispatch_at) AS oldest, MAX(first_dispatch_at) AS newest FROM requests WHERE pipeline_id = ? AND first_dispatch_at > ?',
    [pipelineId, now - rate.perMs],
  );
  // As in `rateScript`: no moment earlier than one another process gave while we waited.
  if (w?.newest !== null && w?.newest !== undefined) now = Math.max(now, num(w.newest));
  let room = rate.max - num(w?.n ?? 0);
  const retryAt = Math.min(num(w?.oldest ?? now), now) + rate.perMs;
  const given = new Map<string, FirstDispatch>();
  const take: string[] = [];
  for (const id of requestIds) {
    if (given.has(id)) continue;
    const at = before.get(id);
    if (at !== undefined) given.set(id, { at });
    else if (room > 0) {
      room--;
      take.push(id);
      given.set(id, { at: now });
    } else given.set(id, { retryAt });
  }
  for (let i = 0; i < take.length; i += CLAIM_CHUNK) {
    const ids = take.slice(i, i + CLAIM_CHUNK);
    yield* run(`UPDATE requests SET first_dispatch_at = ? WHERE id IN (${ids.map(() => '?').join(',')}) AND first_dispatch_at IS NULL`, [now, ...ids]);
  }
  return requestIds.map((id) => given.get(id)!);
}

/** Ids per statement in {@link firstDispatchScript}. */
const CLAIM_CHUNK = 500;

export function* batchScript(d: Dialect, pipelineId: string, size: number, everyMs: number, maxActive: number | undefined, now: number): Script<Release> {
  const id = `gate:${pipelineId}`;
  const tick = Math.floor(now / everyMs) * everyMs;
  const mark = yield* lockMark(d, id);
  if (tick <= mark) return { ids: [], nextAt: tick + everyMs };
  const room = maxActive === undefined ? size : Math.min(size, Math.max(0, maxActive - (yield* countActive(d, pipelineId, now))));
  const ids = yield* takeHeld(pipelineId, room, now);
  yield* run('UPDATE intake_marks SET at = ? WHERE id = ?', [tick, id]);
  return { ids, nextAt: tick + everyMs };
}

export function* scheduleScript(d: Dialect, pipelineId: string, lastTick: number, nextTick: number, maxActive: number | undefined, now: number, chunk: number): Script<Release> {
  const id = `gate:${pipelineId}`;
  let mark = yield* lockMark(d, id);
  if (lastTick > mark) {
    yield* run('UPDATE intake_marks SET at = ? WHERE id = ?', [lastTick, id]);
    mark = lastTick;
  }
  const active = maxActive === undefined ? chunk : maxActive - (yield* countActive(d, pipelineId, now));
  if (active <= 0) return { ids: [], nextAt: Number.POSITIVE_INFINITY };
  const limit = Math.min(chunk, active);
  const ids = yield* takeHeld(pipelineId, limit, now, mark);
  if (ids.length === limit) return { ids, nextAt: limit === chunk ? now : Number.POSITIVE_INFINITY };
  return { ids, nextAt: nextTick };
}
