/**
 * The intake's queries: keyed inserts that tolerate duplicates, the release of buffered
 * requests under a pipeline's policy, the one-active-request-per-business-key rule, and
 * end-of-request callbacks. Everything that must hold across processes is either one
 * conditional statement or a short transaction serialised on an `intake_marks` row.
 *
 * Transactions are written once, as generator scripts that yield statements: on SQLite the
 * script runs synchronously inside one better-sqlite3 `BEGIN IMMEDIATE` transaction (nothing
 * else can interleave), on MySQL it runs on one connection with `SELECT … FOR UPDATE`.
 */
import type { DataSource, QueryRunner } from 'typeorm';
import type { RequestRecord } from '../model';

/** How a new request waits: for its pipeline's intake policy, for its business key, or not at all. */
export type Hold = 'gate' | 'key' | null;

/** A request as the intake inserts it, with the intake's own columns. */
export interface IntakeInsert {
  record: RequestRecord;
  hold: Hold;
  /** The business key, when this request takes it on insert. */
  activeKey: string | null;
  callbackUrl: string | null;
}

/** The request that holds a business key. */
export interface KeyHolder {
  id: string;
  /** Completed or stopped: it keeps the key only for its pipeline's `reuse` policy. */
  ended: boolean;
  status: string;
  finishedAt: number | null;
}

/** Requests released by one call; `nextAt` is when releasing more may be possible. */
export interface Release {
  ids: string[];
  nextAt: number;
}

/** A callback claimed for delivery by this process. */
export interface CallbackClaim {
  id: string;
  url: string;
  rev: number;
  status: string;
  attempts: number;
}

/** The intake's columns of one request (for views and tests). */
export interface IntakeColumns {
  hold: Hold;
  activeKey: string | null;
  callbackUrl: string | null;
  callbackDue: number | null;
  callbackAttempts: number;
  callbackRev: number | null;
  callbackError: string | null;
}

interface Op {
  kind: 'all' | 'run';
  sql: string;
  params: unknown[];
}
type Script<T> = Generator<Op, T, unknown>;

function* all<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Generator<Op, R[], unknown> {
  return (yield { kind: 'all', sql, params }) as R[];
}
function* run(sql: string, params: unknown[] = []): Generator<Op, number, unknown> {
  return (yield { kind: 'run', sql, params }) as number;
}

interface BetterSqliteDb {
  prepare(sql: string): { all(...p: unknown[]): unknown[]; run(...p: unknown[]): { changes: number } };
  transaction<F extends () => unknown>(fn: F): F & { immediate: F };
}

const INSERT_COLUMNS = [
  'id', 'pipeline_id', 'version', 'status', 'business_key', 'idempotency_key', 'mode', 'test', 'payload', 'error', 'joins',
  'step_count', 'rev', 'release_at', 'created_at', 'updated_at', 'finished_at', 'hold', 'active_key', 'callback_url', 'callback_due', 'trace_context', 'submitted_by',
];
const INSERT_CHUNK = 300;
/** Released requests this recent that have not started count as active (`maxActive`). */
const RELEASED_HORIZON_MS = 5_000;
/** Statuses in which a request has ended for its caller (error_stop included: it halted). */
const ENDED = "('completed','stopped','error_stop')";
/** Statuses after which a request gives its business key back (error_stop keeps it: it may resume). */
const KEY_FREE = "('completed','stopped')";
const num = (v: unknown): number => Number(v);
const norm = (params: unknown[]): unknown[] => params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p));

function insertParams(r: IntakeInsert): unknown[] {
  const x = r.record;
  return [
    x.id, x.pipelineId, x.version, x.status, x.businessKey, x.idempotencyKey, x.mode, x.test ? 1 : 0, JSON.stringify(x.payload),
    x.error === null ? null : JSON.stringify(x.error), JSON.stringify(x.joins), x.stepCount, x.rev, x.releaseAt, x.createdAt,
    x.updatedAt, x.finishedAt, r.hold, r.activeKey, r.callbackUrl, r.callbackUrl ? x.createdAt : null, x.traceContext ?? null, x.submittedBy ?? null,
  ];
}

/** True for a unique-index violation on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; driverError?: { code?: unknown; errno?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  const errno = e?.driverError?.errno ?? e?.errno;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'ER_DUP_ENTRY' || errno === 1062;
}

function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

const DEADLOCK_TRIES = 6;

/**
 * Runs `attempt` again when MySQL rolled it back as a deadlock's victim, after a short random
 * pause that grows with each try, so that the same transactions do not meet again at once.
 */
async function retryOnDeadlock<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isDeadlock(err) || n >= DEADLOCK_TRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * n));
    }
  }
}

/** The intake's persistence, reached as `SqlStore.intake`. */
export class IntakeStore {
  private readonly db: BetterSqliteDb | undefined;
  private readonly stmts = new Map<string, ReturnType<BetterSqliteDb['prepare']>>();

  constructor(private readonly ds: DataSource) {
    this.db = ds.driver.options.type === 'mysql' ? undefined : (ds.driver as unknown as { databaseConnection: BetterSqliteDb }).databaseConnection;
  }

  get dialect(): 'sqlite' | 'mysql' {
    return this.db ? 'sqlite' : 'mysql';
  }

  /**
   * `requests` read through the (pipeline, business key, status) index. Without statistics a
   * planner may prefer the hold index and walk every queued request of the pipeline.
   */
  private get byBusinessKey(): string {
    return this.db ? 'requests INDEXED BY ix_requests_business_key' : 'requests FORCE INDEX (ix_requests_business_key)';
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private prepare(sql: string): ReturnType<BetterSqliteDb['prepare']> {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db!.prepare(sql);
      if (this.stmts.size > 200) this.stmts.clear();
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs a transaction script: synchronously on SQLite, on one connection on MySQL (retried on deadlock). */
  private async atomic<T>(script: () => Script<T>): Promise<T> {
    if (this.db) {
      const exec = (op: Op): unknown => (op.kind === 'all' ? this.prepare(op.sql).all(...norm(op.params)) : this.prepare(op.sql).run(...norm(op.params)).changes);
      const tx = this.db.transaction(() => {
        const gen = script();
        let input: unknown;
        for (;;) {
          const step = gen.next(input);
          if (step.done) return step.value;
          input = exec(step.value);
        }
      });
      return tx.immediate() as T;
    }
    return retryOnDeadlock(async () => {
      const qr = this.ds.createQueryRunner();
      try {
        await qr.connect();
        await qr.startTransaction();
        const value = await this.drive(qr, script());
        await qr.commitTransaction();
        return value;
      } catch (err) {
        if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
        throw err;
      } finally {
        await qr.release();
      }
    });
  }

  private async drive<T>(qr: QueryRunner, gen: Script<T>): Promise<T> {
    let input: unknown;
    for (;;) {
      const step = gen.next(input);
      if (step.done) return step.value;
      const res = await qr.query(step.value.sql, norm(step.value.params), true);
      input = step.value.kind === 'all' ? res.records : (res.affected ?? 0);
    }
  }

  /** One statement, outside any explicit transaction. */
  private one<T>(script: () => Script<T>): Promise<T> {
    if (this.db) return this.atomic(script);
    // A single statement can be a deadlock's victim too (an UPDATE giving a business key back
    // while other processes insert that key); InnoDB rolled it back, so it runs again.
    return retryOnDeadlock(async () => {
      const qr = this.ds.createQueryRunner();
      try {
        return await this.drive(qr, script());
      } finally {
        await qr.release();
      }
    });
  }

  private select<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.one(() => all<R>(sql, params));
  }

  private update(sql: string, params: unknown[] = []): Promise<number> {
    return this.one(() => run(sql, params));
  }

  /** Locks (MySQL) and reads an intake mark inside a transaction script. */
  private *lockMark(id: string): Generator<Op, number, unknown> {
    const rows = yield* all<{ at: unknown }>(`SELECT at FROM intake_marks WHERE id = ?${this.db ? '' : ' FOR UPDATE'}`, [id]);
    return num(rows[0]?.at ?? 0);
  }

  // ---- inserts -------------------------------------------------------------------------------

  /**
   * Inserts requests, skipping any that would break a unique index (the same idempotency key,
   * or a business key already held). Returns, per request, whether it was inserted. A clash
   * never fails the other requests of the batch.
   */
  async insertRequests(rows: IntakeInsert[]): Promise<boolean[]> {
    if (rows.length === 0) return [];
    const tuple = `(${INSERT_COLUMNS.map(() => '?').join(',')})`;
    const onConflict = this.db ? ' ON CONFLICT DO NOTHING' : ' ON DUPLICATE KEY UPDATE id = id';
    const inserted = new Set<string>();
    await this.atomic(function* () {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const chunk = rows.slice(i, i + INSERT_CHUNK);
        yield* run(`INSERT INTO requests (${INSERT_COLUMNS.join(', ')}) VALUES ${chunk.map(() => tuple).join(',')}${onConflict}`, chunk.flatMap(insertParams));
        const ids = chunk.map((r) => r.record.id);
        const found = yield* all<{ id: string }>(`SELECT id FROM requests WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
        for (const f of found) inserted.add(String(f.id));
      }
    });
    return rows.map((r) => inserted.has(r.record.id));
  }

  /** The id of the request holding this idempotency key, with its creation time. */
  async findIdempotent(pipelineId: string, key: string): Promise<{ id: string; createdAt: number } | undefined> {
    const rows = await this.select<{ id: string; created_at: unknown }>('SELECT id, created_at FROM requests WHERE pipeline_id = ? AND idempotency_key = ?', [pipelineId, key]);
    return rows[0] ? { id: String(rows[0].id), createdAt: num(rows[0].created_at) } : undefined;
  }

  /** Frees an idempotency key whose window has passed, so the key can name a new request. */
  async expireIdempotencyKey(id: string, key: string): Promise<boolean> {
    return (await this.update('UPDATE requests SET idempotency_key = NULL WHERE id = ? AND idempotency_key = ?', [id, key])) === 1;
  }

  // ---- business keys -------------------------------------------------------------------------

  /**
   * The request holding `key` in this pipeline: an active one (buffered, running, waiting or
   * error_stop), or one that ended and keeps the key for its pipeline's `reuse` policy.
   */
  async findKeyHolder(pipelineId: string, key: string): Promise<KeyHolder | undefined> {
    const rows = await this.select<{ id: string; status: string; finished_at: unknown }>('SELECT id, status, finished_at FROM requests WHERE pipeline_id = ? AND active_key = ?', [pipelineId, key]);
    const r = rows[0];
    if (!r) return undefined;
    const ended = r.status === 'completed' || r.status === 'stopped';
    return { id: String(r.id), ended, status: String(r.status), finishedAt: r.finished_at === null || r.finished_at === undefined ? null : num(r.finished_at) };
  }

  /** Whether requests wait in the queue of `key` (a newcomer then queues behind them). */
  async hasKeyWaiters(pipelineId: string, key: string): Promise<boolean> {
    const rows = await this.select(`SELECT id FROM ${this.byBusinessKey} WHERE pipeline_id = ? AND business_key = ? AND hold = 'key' LIMIT 1`, [pipelineId, key]);
    return rows.length > 0;
  }

  /**
   * Gives the business key back if the request has ended (completed or stopped). With
   * `keep`, a key nobody queues for stays with its ended request (`businessKey.reuse`), so
   * the unique index goes on answering for it.
   */
  async releaseKey(requestId: string, keep?: (pipelineId: string) => boolean): Promise<{ pipelineId: string; key: string } | undefined> {
    const rows = await this.select<{ pipeline_id: string; active_key: string | null; status: string }>('SELECT pipeline_id, active_key, status FROM requests WHERE id = ?', [requestId]);
    const r = rows[0];
    if (!r || r.active_key === null || (r.status !== 'completed' && r.status !== 'stopped')) return undefined;
    if (keep?.(String(r.pipeline_id)) && !(await this.hasKeyWaiters(String(r.pipeline_id), String(r.active_key)))) return undefined;
    const n = await this.update(`UPDATE requests SET active_key = NULL WHERE id = ? AND active_key = ? AND status IN ${KEY_FREE}`, [requestId, r.active_key]);
    return n === 1 ? { pipelineId: String(r.pipeline_id), key: String(r.active_key) } : undefined;
  }

  /**
   * Hands `key` to the oldest request queued for it. Returns its id, or undefined when none
   * waits or another request took the key first (the unique index decides).
   */
  async promoteKeyWaiter(pipelineId: string, key: string, gated: boolean, now: number): Promise<string | undefined> {
    for (let round = 0; round < 20; round++) {
      const rows = await this.select<{ id: string; status: string }>(
        `SELECT id, status FROM ${this.byBusinessKey} WHERE pipeline_id = ? AND business_key = ? AND hold = 'key' ORDER BY created_at, id LIMIT 1`,
        [pipelineId, key],
      );
      const w = rows[0];
      if (!w) return undefined;
      const id = String(w.id);
      if (w.status !== 'buffered') {
        // Stopped while it queued: it no longer waits for anything.
        await this.update("UPDATE requests SET hold = NULL WHERE id = ? AND hold = 'key'", [id]);
        continue;
      }
      try {
        const n = await this.update("UPDATE requests SET active_key = ?, hold = ?, release_at = ? WHERE id = ? AND hold = 'key' AND status = 'buffered'", [
          key, gated ? 'gate' : null, gated ? null : now, id,
        ]);
        return n === 1 ? id : undefined;
      } catch (err) {
        if (isUniqueViolation(err)) return undefined;
        throw err;
      }
    }
    return undefined;
  }

  /** Business keys with requests queued behind them. */
  async listWaitingKeys(pipelineId: string, limit: number): Promise<string[]> {
    // No DISTINCT: it would steer the planner to the business-key index and a scan of the pipeline.
    const rows = await this.select<{ business_key: string }>("SELECT business_key FROM requests WHERE pipeline_id = ? AND hold = 'key' LIMIT ?", [pipelineId, limit]);
    return [...new Set(rows.map((r) => String(r.business_key)))];
  }

  // ---- release under a policy -----------------------------------------------------------------

  /** Creates the mark row if it does not exist yet; returns its value. */
  async ensureMark(id: string, at: number): Promise<number> {
    const sql = this.db ? 'INSERT INTO intake_marks (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING' : 'INSERT INTO intake_marks (id, at) VALUES (?, ?) ON DUPLICATE KEY UPDATE id = id';
    await this.update(sql, [id, at]);
    const rows = await this.select<{ at: unknown }>('SELECT at FROM intake_marks WHERE id = ?', [id]);
    return num(rows[0]?.at ?? at);
  }

  /** Moves a mark from `from` to `to`; false if another process moved it first. */
  async advanceMark(id: string, from: number, to: number): Promise<boolean> {
    return (await this.update('UPDATE intake_marks SET at = ? WHERE id = ? AND at = ?', [to, id, from])) === 1;
  }

  /**
   * The oldest requests held by the gate, released (hold cleared, release_at set), in arrival
   * order. The select leaves `status` out so it runs on `ix_requests_hold` (pipeline, hold,
   * created_at) however large the backlog; a held request an operator stopped meanwhile only
   * loses its hold.
   */
  private *takeHeld(pipelineId: string, limit: number, now: number, createdUpTo?: number): Generator<Op, string[], unknown> {
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
   * `rate: { max, per }` and/or `maxActive`: releases as many of the oldest held requests as
   * fit, so that no span of `perMs` ever holds more than `max` releases of this pipeline (a
   * sliding window counted from `release_at`), and no more than `maxActive` of its requests
   * are started and unfinished at once; both across every process.
   */
  releaseRate(pipelineId: string, rate: { max: number; perMs: number } | undefined, maxActive: number | undefined, now: number, limit: number): Promise<Release> {
    return this.atomic(() => this.rateScript(pipelineId, rate, maxActive, now, limit));
  }

  private *rateScript(pipelineId: string, rate: { max: number; perMs: number } | undefined, maxActive: number | undefined, now: number, limit: number): Script<Release> {
    yield* this.lockMark(`gate:${pipelineId}`);
    let room = Number.POSITIVE_INFINITY;
    let rateFullUntil = Number.POSITIVE_INFINITY;
    if (rate) {
      const [w] = yield* all<{ n: unknown; oldest: unknown }>('SELECT COUNT(*) AS n, MIN(release_at) AS oldest FROM requests WHERE pipeline_id = ? AND release_at > ?', [
        pipelineId, now - rate.perMs,
      ]);
      const oldest = w?.oldest === null || w?.oldest === undefined ? now : num(w.oldest);
      room = rate.max - num(w?.n ?? 0);
      rateFullUntil = oldest + rate.perMs;
    }
    const active = maxActive === undefined ? Number.POSITIVE_INFINITY : maxActive - (yield* this.countActive(pipelineId, now));
    // Full by the window: wait for its oldest release to leave it. Full by maxActive: wait for an end (a poke).
    if (room <= 0) return { ids: [], nextAt: rateFullUntil };
    if (active <= 0) return { ids: [], nextAt: Number.POSITIVE_INFINITY };
    const take = Math.min(room, active, limit);
    const ids = yield* this.takeHeld(pipelineId, take, now);
    if (ids.length < take || take === active) return { ids, nextAt: Number.POSITIVE_INFINITY };
    return { ids, nextAt: take < room ? now : Math.min(rateFullUntil, now + (rate?.perMs ?? 0)) };
  }

  /**
   * `rate: { max, per }` at dispatch: claims the moment this request dispatches its first
   * step, so that no span of `perMs` holds more than `max` first dispatches of the pipeline,
   * across every process (serialised on the pipeline's gate mark). A request that claimed
   * before (a start decided again) keeps its moment. Refused: when a moment frees up.
   */
  claimFirstDispatch(pipelineId: string, requestId: string, rate: { max: number; perMs: number }, now: number): Promise<{ at: number } | { retryAt: number }> {
    return this.atomic(() => this.firstDispatchScript(pipelineId, requestId, rate, now));
  }

  private *firstDispatchScript(pipelineId: string, requestId: string, rate: { max: number; perMs: number }, now: number): Script<{ at: number } | { retryAt: number }> {
    yield* this.lockMark(`gate:${pipelineId}`);
    const [mine] = yield* all<{ at: unknown }>('SELECT first_dispatch_at AS at FROM requests WHERE id = ?', [requestId]);
    if (mine && mine.at !== null && mine.at !== undefined) return { at: num(mine.at) };
    const [w] = yield* all<{ n: unknown; oldest: unknown }>(
      'SELECT COUNT(*) AS n, MIN(first_dispatch_at) AS oldest FROM requests WHERE pipeline_id = ? AND first_dispatch_at > ?',
      [pipelineId, now - rate.perMs],
    );
    if (num(w?.n ?? 0) >= rate.max) return { retryAt: num(w?.oldest ?? now) + rate.perMs };
    yield* run('UPDATE requests SET first_dispatch_at = ? WHERE id = ? AND first_dispatch_at IS NULL', [now, requestId]);
    return { at: now };
  }

  /**
   * Requests of the pipeline started and not ended, plus those released in the last few
   * seconds that have not started yet. Two index range counts, so the cost follows what is
   * active, not the backlog: (pipeline, status) and (pipeline, release_at). A release older
   * than that horizon that never started is a lost start, which the supervisor's sweep redoes.
   */
  private *countActive(pipelineId: string, now: number): Generator<Op, number, unknown> {
    const [a] = yield* all<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = ? AND status IN ('running','waiting')", [pipelineId]);
    const [b] = yield* all<{ n: unknown }>(
      `SELECT COUNT(*) AS n FROM ${this.db ? 'requests INDEXED BY ix_requests_pipeline_release' : 'requests FORCE INDEX (ix_requests_pipeline_release)'} WHERE pipeline_id = ? AND release_at > ? AND status = 'buffered' AND hold IS NULL`,
      [pipelineId, now - RELEASED_HORIZON_MS],
    );
    return num(a?.n ?? 0) + num(b?.n ?? 0);
  }

  /** `batch: { size, every }`: at each tick (`floor(now / every) * every`), the `size` oldest held requests. */
  releaseBatch(pipelineId: string, size: number, everyMs: number, maxActive: number | undefined, now: number): Promise<Release> {
    return this.atomic(() => this.batchScript(pipelineId, size, everyMs, maxActive, now));
  }

  private *batchScript(pipelineId: string, size: number, everyMs: number, maxActive: number | undefined, now: number): Script<Release> {
    const id = `gate:${pipelineId}`;
    const tick = Math.floor(now / everyMs) * everyMs;
    const mark = yield* this.lockMark(id);
    if (tick <= mark) return { ids: [], nextAt: tick + everyMs };
    const room = maxActive === undefined ? size : Math.min(size, Math.max(0, maxActive - (yield* this.countActive(pipelineId, now))));
    const ids = yield* this.takeHeld(pipelineId, room, now);
    yield* run('UPDATE intake_marks SET at = ? WHERE id = ?', [tick, id]);
    return { ids, nextAt: tick + everyMs };
  }

  /**
   * `schedule: '<cron>'`: once the cron tick `lastTick` has passed, every request buffered at
   * or before it is released (in chunks of `limit`, oldest first).
   */
  releaseScheduled(pipelineId: string, lastTick: number, nextTick: number, maxActive: number | undefined, now: number, limit: number): Promise<Release> {
    return this.atomic(() => this.scheduleScript(pipelineId, lastTick, nextTick, maxActive, now, limit));
  }

  private *scheduleScript(pipelineId: string, lastTick: number, nextTick: number, maxActive: number | undefined, now: number, chunk: number): Script<Release> {
    const id = `gate:${pipelineId}`;
    let mark = yield* this.lockMark(id);
    if (lastTick > mark) {
      yield* run('UPDATE intake_marks SET at = ? WHERE id = ?', [lastTick, id]);
      mark = lastTick;
    }
    const active = maxActive === undefined ? chunk : maxActive - (yield* this.countActive(pipelineId, now));
    if (active <= 0) return { ids: [], nextAt: Number.POSITIVE_INFINITY };
    const limit = Math.min(chunk, active);
    const ids = yield* this.takeHeld(pipelineId, limit, now, mark);
    if (ids.length === limit) return { ids, nextAt: limit === chunk ? now : Number.POSITIVE_INFINITY };
    return { ids, nextAt: nextTick };
  }

  /** Buffered requests that were released but not started (their start event was lost in a crash). */
  async listReleased(limit: number, afterId = ''): Promise<string[]> {
    const rows = await this.select<{ id: string }>("SELECT id FROM requests WHERE status = 'buffered' AND hold IS NULL AND id > ? ORDER BY id LIMIT ?", [afterId, limit]);
    return rows.map((r) => String(r.id));
  }

  // ---- callbacks -----------------------------------------------------------------------------

  private static readonly OWED = `status IN ${ENDED} AND (callback_rev IS NULL OR callback_rev < rev)`;

  /** Claims this request's owed callback for delivery until `leaseUntil`; undefined if not owed or taken. */
  async claimCallback(id: string, now: number, leaseUntil: number): Promise<CallbackClaim | undefined> {
    const n = await this.update(`UPDATE requests SET callback_due = ? WHERE id = ? AND callback_due IS NOT NULL AND callback_due <= ? AND ${IntakeStore.OWED}`, [leaseUntil, id, now]);
    return n === 1 ? this.callbackInfo(id) : undefined;
  }

  /** Claims owed callbacks whose time has come, at most once across processes. */
  async claimDueCallbacks(now: number, leaseUntil: number, limit: number): Promise<CallbackClaim[]> {
    const rows = await this.select<{ id: string; callback_due: unknown }>(
      `SELECT id, callback_due FROM requests WHERE callback_due <= ? AND ${IntakeStore.OWED} ORDER BY callback_due LIMIT ?`,
      [now, limit],
    );
    const out: CallbackClaim[] = [];
    for (const r of rows) {
      const n = await this.update('UPDATE requests SET callback_due = ? WHERE id = ? AND callback_due = ?', [leaseUntil, r.id, num(r.callback_due)]);
      if (n !== 1) continue;
      const info = await this.callbackInfo(String(r.id));
      if (info) out.push(info);
    }
    return out;
  }

  private async callbackInfo(id: string): Promise<CallbackClaim | undefined> {
    const rows = await this.select<{ callback_url: string | null; rev: unknown; status: string; callback_attempts: unknown }>(
      'SELECT callback_url, rev, status, callback_attempts FROM requests WHERE id = ?',
      [id],
    );
    const r = rows[0];
    if (!r || !r.callback_url) return undefined;
    return { id, url: String(r.callback_url), rev: num(r.rev), status: String(r.status), attempts: num(r.callback_attempts) };
  }

  /**
   * Records a delivery attempt. `done` (delivered, or given up): the ending at `rev` is
   * reported; an `error_stop` request stays watched, since a resume may end it again.
   * Otherwise the next attempt is due at `nextDue`.
   */
  async settleCallback(c: CallbackClaim, o: { done: boolean; attempts: number; error: string | null; nextDue: number; now: number }): Promise<void> {
    if (o.done) {
      await this.update('UPDATE requests SET callback_rev = ?, callback_attempts = ?, callback_error = ?, callback_due = ? WHERE id = ?', [
        c.rev, o.attempts, o.error, c.status === 'error_stop' ? o.now : null, c.id,
      ]);
    } else {
      await this.update('UPDATE requests SET callback_attempts = ?, callback_error = ?, callback_due = ? WHERE id = ?', [o.attempts, o.error, o.nextDue, c.id]);
    }
  }

  /** The intake's columns of a request. */
  async columns(id: string): Promise<IntakeColumns | undefined> {
    const rows = await this.select<Record<string, unknown>>(
      'SELECT hold, active_key, callback_url, callback_due, callback_attempts, callback_rev, callback_error FROM requests WHERE id = ?',
      [id],
    );
    const r = rows[0];
    if (!r) return undefined;
    const orNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
    return {
      hold: (r.hold as Hold) ?? null,
      activeKey: (r.active_key as string | null) ?? null,
      callbackUrl: (r.callback_url as string | null) ?? null,
      callbackDue: orNull(r.callback_due),
      callbackAttempts: num(r.callback_attempts ?? 0),
      callbackRev: orNull(r.callback_rev),
      callbackError: (r.callback_error as string | null) ?? null,
    };
  }
}
