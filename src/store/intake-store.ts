/**
 * The intake's queries: idempotency keys, the release of buffered requests under a
 * pipeline's policy (`intake-release.ts`), the one-active-request-per-business-key rule, and
 * end-of-request callbacks. Everything that must hold across processes is either one
 * conditional statement or a short transaction serialised on an `intake_marks` row.
 *
 * Everything runs on the store's executor (`sql-executor.ts`): single statements, and
 * transactions as transaction scripts (`SqlExecutor.script`): on SQLite a script runs
 * synchronously inside one better-sqlite3 `BEGIN IMMEDIATE` transaction (nothing else can
 * interleave), on MySQL on one connection with `SELECT … FOR UPDATE`. The intake's inserts
 * (which tolerate duplicates) are keyed inserts of the group commit (`write.ts`).
 */
import { num, type Hold } from './rows';
import { batchScript, firstDispatchScript, rateScript, scheduleScript, type FirstDispatch, type Release } from './intake-release';
import { requestIndexTerms } from './request-index-terms';
import { dialectSql, isUniqueViolation, type SqlExecutor } from './sql-executor';
import { handOverScript, HELD_SQL, KEY_ROW_SQL, MUST_QUEUE_SQLITE, nextWaiterSql, PROMOTE_SQL, RELEASE_SQL, UNQUEUE_SQL, type HandOver, type HandOverBatch, type KeyRow, type Waiter } from './key-handover';

export type { Hold, IntakeInsert } from './rows';
export type { Release } from './intake-release';

/** The request that holds a business key. */
export interface KeyHolder {
  id: string;
  /** Completed or stopped: it keeps the key only for its pipeline's `reuse` policy. */
  ended: boolean;
  status: string;
  finishedAt: number | null;
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

/** Statuses in which a request has ended for its caller (error_stop included: it halted). */
const ENDED = "('completed','stopped','error_stop')";

/** First-dispatch claims of one pipeline waiting for the end of the event-loop turn. */
interface ClaimBatch {
  pipelineId: string;
  rate: { max: number; perMs: number };
  now: number;
  waiting: Array<{ requestId: string; resolve(answer: FirstDispatch): void; reject(err: unknown): void }>;
}

/** The intake's persistence, reached as `SqlStore.intake`. */
export class IntakeStore {
  /** Claims of the current turn, by pipeline and rate. */
  private readonly claims = new Map<string, ClaimBatch>();
  /** Key hand-overs of the current turn (SQLite). */
  private handOvers: HandOverBatch | undefined;

  constructor(private readonly x: SqlExecutor) {}

  get dialect(): 'sqlite' | 'mysql' {
    return this.x.dialect;
  }

  /**
   * `requests` read for the requests queued for a business key (`hold = 'key'`). Without
   * statistics a planner may prefer the hold index and walk every queued request of the
   * pipeline. On SQLite `ix_requests_key_hold` (migration `1763800000360`) has the queued
   * requests of a key as one range, in promotion order; on MySQL `ix_requests_key_waiters`
   * is on `key_queued_at`, which is NULL but for them (migration `1763800000340`).
   */
  private get byBusinessKey(): string {
    return dialectSql.withIndex(this.x.dialect, 'requests', requestIndexTerms(this.x.dialect).keyIndex);
  }

  /** `hold = 'key'`, as the dialect's key-waiters index matches it. */
  private get keyQueued(): string {
    return requestIndexTerms(this.x.dialect).keyQueued;
  }

  private select<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.x.all<R>(sql, params);
  }

  private update(sql: string, params: unknown[] = []): Promise<number> {
    return this.x.run(sql, params);
  }

  // ---- idempotency keys ------------------------------------------------------------------------

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
    const rows = await this.select(`SELECT id FROM ${this.byBusinessKey} WHERE pipeline_id = ? AND business_key = ? AND ${this.keyQueued} LIMIT 1`, [pipelineId, key]);
    return rows.length > 0;
  }

  /**
   * Whether a newcomer under `onConflict: 'queue'` must queue for `key`, in one statement:
   * requests already wait for it (it queues behind them, in order), or an active request
   * (buffered, running, waiting or error_stop) holds it. A key held by a request that ended
   * and kept it (`reuse`) is not a reason to queue: the submit meets that holder instead.
   */
  async mustQueueForKey(pipelineId: string, key: string): Promise<boolean> {
    if (this.x.dialect === 'sqlite') {
      // From indexes alone (migration `1763800000350`): the holder's row is not read.
      const [r] = await this.select<{ waiters: unknown; held: unknown; ended: unknown }>(MUST_QUEUE_SQLITE, [pipelineId, key, pipelineId, key, pipelineId, key]);
      if (!r) return false;
      if (r.waiters !== null && r.waiters !== undefined) return true;
      return r.held !== null && r.held !== undefined && (r.ended === null || r.ended === undefined);
    }
    const rows = await this.select<{ waiters: unknown; holder: string | null }>(
      `SELECT (SELECT 1 FROM ${this.byBusinessKey} WHERE pipeline_id = ? AND business_key = ? AND ${this.keyQueued} LIMIT 1) AS waiters,
        (SELECT status FROM requests WHERE pipeline_id = ? AND active_key = ?) AS holder`,
      [pipelineId, key, pipelineId, key],
    );
    const r = rows[0];
    if (!r) return false;
    if (r.waiters !== null && r.waiters !== undefined) return true;
    return r.holder !== null && r.holder !== undefined && r.holder !== 'completed' && r.holder !== 'stopped';
  }

  /**
   * A request ended: gives its business key back ({@link releaseKey}) and hands it to the
   * oldest request queued for it ({@link promoteKeyWaiter}). On SQLite the hand-overs of one
   * event-loop turn go in one transaction ({@link handOverScript}): a write transaction holds
   * the database, so the key cannot be taken between the read and the write, and one commit
   * writes the pages they share (a business key's index page, the queue's) once. At 400
   * requests ending a second these were two commits each. On MySQL, one by one as before: the
   * unique index decides between processes, and a refused statement must not undo the others.
   */
  handOverKey(requestId: string, keep: (pipelineId: string) => boolean, gated: (pipelineId: string) => boolean): Promise<HandOver | undefined> {
    if (this.x.dialect === 'mysql') return this.handOverOne(requestId, keep, gated);
    return new Promise<HandOver | undefined>((resolve, reject) => {
      if (!this.handOvers) {
        const batch: HandOverBatch = [];
        this.handOvers = batch;
        setImmediate(() => {
          this.handOvers = undefined;
          this.x.script(() => handOverScript(this.x.dialect, this.byBusinessKey, batch, Date.now())).then(
            (answers) => batch.forEach((it, i) => it.resolve(answers[i])),
            (err: unknown) => batch.forEach((it) => it.reject(err)),
          );
        });
      }
      this.handOvers.push({ requestId, keep, gated, resolve, reject });
    });
  }

  private async handOverOne(requestId: string, keep: (pipelineId: string) => boolean, gated: (pipelineId: string) => boolean): Promise<HandOver | undefined> {
    const freed = await this.releaseKey(requestId, keep);
    if (!freed) return undefined;
    const promoted = await this.promoteKeyWaiter(freed.pipelineId, freed.key, gated(freed.pipelineId), Date.now());
    return promoted === undefined ? freed : { ...freed, promoted };
  }

  /**
   * Gives the business key back if the request has ended (completed or stopped). With
   * `keep`, a key nobody queues for stays with its ended request (`businessKey.reuse`), so
   * the unique index goes on answering for it.
   */
  async releaseKey(requestId: string, keep?: (pipelineId: string) => boolean): Promise<{ pipelineId: string; key: string } | undefined> {
    const rows = await this.select<KeyRow>(KEY_ROW_SQL, [requestId]);
    const r = rows[0];
    if (!r || r.active_key === null || (r.status !== 'completed' && r.status !== 'stopped')) return undefined;
    if (keep?.(String(r.pipeline_id)) && !(await this.hasKeyWaiters(String(r.pipeline_id), String(r.active_key)))) return undefined;
    const n = await this.update(RELEASE_SQL, [requestId, r.active_key]);
    return n === 1 ? { pipelineId: String(r.pipeline_id), key: String(r.active_key) } : undefined;
  }

  /**
   * Hands `key` to the oldest request queued for it. Returns its id, or undefined when none
   * waits or another request took the key first (the unique index decides).
   */
  async promoteKeyWaiter(pipelineId: string, key: string, gated: boolean, now: number): Promise<string | undefined> {
    // SQLite: a held key ends it from the unique index alone. The waiter read below also reads
    // the oldest waiter's row for its status, a page at a random place in the table: after
    // every queued submit (the holder is nearly always still active then), one page read
    // from the disk cache per event at 300,000 events. On MySQL it would cost a round trip.
    if (this.x.dialect === 'sqlite' && (await this.select(HELD_SQL, [pipelineId, key])).length > 0) return undefined;
    for (let round = 0; round < 20; round++) {
      // Whether the key is taken comes with the waiter: a queued submit promotes while the
      // holder is usually still active, and letting the unique index refuse the UPDATE costs a
      // statement rollback and a thrown error each time (measured on the bulk intake's hot path).
      const rows = await this.select<Waiter>(nextWaiterSql(this.byBusinessKey, this.x.dialect), [pipelineId, key, pipelineId, key]);
      const w = rows[0];
      if (!w) return undefined;
      const id = String(w.id);
      if (w.status !== 'buffered') {
        // Stopped while it queued: it no longer waits for anything.
        await this.update(UNQUEUE_SQL, [id]);
        continue;
      }
      if (w.held !== null && w.held !== undefined) return undefined;
      // Another process (or a submit between the read and this write) may still take the key
      // first: the unique index decides, and the loser leaves the waiter queued.
      try {
        const n = await this.update(PROMOTE_SQL, [key, gated ? 'gate' : null, gated ? null : now, id]);
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
    await this.update(`INSERT INTO intake_marks (id, at) VALUES (?, ?)${dialectSql.skipDuplicates(this.x.dialect)}`, [id, at]);
    const rows = await this.select<{ at: unknown }>('SELECT at FROM intake_marks WHERE id = ?', [id]);
    return num(rows[0]?.at ?? at);
  }

  /** Moves a mark from `from` to `to`; false if another process moved it first. */
  async advanceMark(id: string, from: number, to: number): Promise<boolean> {
    return (await this.update('UPDATE intake_marks SET at = ? WHERE id = ? AND at = ?', [to, id, from])) === 1;
  }

  /**
   * `rate: { max, per }` and/or `maxActive`: releases as many of the oldest held requests as
   * fit, so that no span of `perMs` ever holds more than `max` releases of this pipeline (a
   * sliding window counted from `release_at`), and no more than `maxActive` of its requests
   * are started and unfinished at once; both across every process.
   */
  releaseRate(pipelineId: string, rate: { max: number; perMs: number } | undefined, maxActive: number | undefined, now: number, limit: number): Promise<Release> {
    return this.x.script(() => rateScript(this.x.dialect, pipelineId, rate, maxActive, now, limit));
  }

  /**
   * `rate: { max, per }` at dispatch: claims the moment this request dispatches its first
   * step, so that no span of `perMs` holds more than `max` first dispatches of the pipeline,
   * across every process (serialised on the pipeline's gate mark). A request that claimed
   * before (a start decided again) keeps its moment. Refused: when a moment frees up.
   *
   * The claims of one pipeline made in the same event-loop turn go in one transaction
   * ({@link firstDispatchScript}), in the order they were made.
   */
  claimFirstDispatch(pipelineId: string, requestId: string, rate: { max: number; perMs: number }, now: number): Promise<FirstDispatch> {
    return new Promise<FirstDispatch>((resolve, reject) => {
      const key = `${pipelineId}\u0000${rate.max}\u0000${rate.perMs}`;
      let batch = this.claims.get(key);
      if (!batch) {
        const fresh: ClaimBatch = { pipelineId, rate, now, waiting: [] };
        this.claims.set(key, fresh);
        setImmediate(() => {
          this.claims.delete(key);
          void this.flushClaims(fresh);
        });
        batch = fresh;
      }
      batch.now = Math.max(batch.now, now);
      batch.waiting.push({ requestId, resolve, reject });
    });
  }

  private async flushClaims(b: ClaimBatch): Promise<void> {
    try {
      const answers = await this.x.script(() => firstDispatchScript(this.x.dialect, b.pipelineId, b.waiting.map((w) => w.requestId), b.rate, b.now));
      b.waiting.forEach((w, i) => w.resolve(answers[i]!));
    } catch (err) {
      for (const w of b.waiting) w.reject(err);
    }
  }

  /** `batch: { size, every }`: at each tick (`floor(now / every) * every`), the `size` oldest held requests. */
  releaseBatch(pipelineId: string, size: number, everyMs: number, maxActive: number | undefined, now: number): Promise<Release> {
    return this.x.script(() => batchScript(this.x.dialect, pipelineId, size, everyMs, maxActive, now));
  }

  /**
   * `schedule: '<cron>'`: once the cron tick `lastTick` has passed, every request buffered at
   * or before it is released (in chunks of `limit`, oldest first).
   */
  releaseScheduled(pipelineId: string, lastTick: number, nextTick: number, maxActive: number | undefined, now: number, limit: number): Promise<Release> {
    return this.x.script(() => scheduleScript(this.x.dialect, pipelineId, lastTick, nextTick, maxActive, now, limit));
  }

  /** Buffered requests that were released but not started (their start event was lost in a crash). */
  async listReleased(limit: number, afterId = ''): Promise<string[]> {
    const rows = await this.select<{ id: string }>(`SELECT id FROM requests WHERE ${requestIndexTerms(this.x.dialect).buffered} AND hold IS NULL AND id > ? ORDER BY id LIMIT ?`, [afterId, limit]);
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
      // MySQL: `callback_status` is the status of the rows with a `callback_due` (migration `1763800000340`).
      `SELECT id, callback_due FROM requests WHERE callback_due <= ? AND ${this.x.dialect === 'mysql' ? `callback_status IN ${ENDED} AND ` : ''}${IntakeStore.OWED} ORDER BY callback_due LIMIT ?`,
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
