import type { DataSource, QueryRunner } from 'typeorm';
import { createPool, format, type Pool, type ResultSetHeader } from 'mysql2/promise';

/** One SQL statement with `?` placeholders. */
export interface Stmt {
  sql: string;
  params: unknown[];
}

/**
 * A guarded unit of a commit: `guard` runs first; only when it changes exactly one row do
 * the `then` statements run. A `then` statement with `expectAffected` that changes another
 * number of rows aborts the whole transaction (a broken invariant, never a normal refusal).
 */
export interface GuardedUnit {
  guard: Stmt;
  /** A cheaper form of `guard` tried first; when it changes no row, `guard` runs. */
  guardFirst?: Stmt;
  then: Array<Stmt & { expectAffected?: number }>;
}

export class InvariantError extends Error {}

/** One statement of a transaction script: a read (`all`, answered with its rows) or a write (`run`, answered with the rows it matched). */
export interface Op {
  kind: 'all' | 'run';
  sql: string;
  params: unknown[];
}

/**
 * A transaction written once for both dialects: a generator that yields its statements and
 * receives their answers (`yield* all(…)`, `yield* run(…)`), so its later statements may
 * depend on what it read. See {@link SqlExecutor.script}.
 */
export type Script<T> = Generator<Op, T, unknown>;

export function* all<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Generator<Op, R[], unknown> {
  return (yield { kind: 'all', sql, params }) as R[];
}

export function* run(sql: string, params: unknown[] = []): Generator<Op, number, unknown> {
  return (yield { kind: 'run', sql, params }) as number;
}

/** Where the two dialects spell a statement differently: the one place that knows. */
export const dialectSql = {
  /** Appended to an INSERT: a row that would break a unique index is skipped, not an error. */
  skipDuplicates: (d: 'sqlite' | 'mysql'): string => (d === 'sqlite' ? ' ON CONFLICT DO NOTHING' : ' ON DUPLICATE KEY UPDATE id = id'),
  /** Appended to a SELECT in a transaction script: MySQL locks the rows read; SQLite has one writer anyway. */
  forUpdate: (d: 'sqlite' | 'mysql'): string => (d === 'sqlite' ? '' : ' FOR UPDATE'),
  /** A table read through the named index (without statistics a planner may pick another). */
  withIndex: (d: 'sqlite' | 'mysql', table: string, index: string): string => (d === 'sqlite' ? `${table} INDEXED BY ${index}` : `${table} FORCE INDEX (${index})`),
  /** A top-level field of a JSON text column, as SQL text (MariaDB answers it as text). */
  jsonField: (d: 'sqlite' | 'mysql', column: string, key: string): string => (d === 'sqlite' ? `json_extract(${column}, '$.${key}')` : `JSON_VALUE(${column}, '$.${key}')`),
};

/** Runs guarded units then the statements `tail(held)` builds from which units held. */
export function* unitsScript(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Script<boolean[]> {
  const held: boolean[] = [];
  for (const unit of units) {
    const first = unit.guardFirst !== undefined && (yield* run(unit.guardFirst.sql, unit.guardFirst.params)) === 1;
    if (!first && (yield* run(unit.guard.sql, unit.guard.params)) !== 1) {
      held.push(false);
      continue;
    }
    for (const s of unit.then) {
      const changes = yield* run(s.sql, s.params);
      if (s.expectAffected !== undefined && changes !== s.expectAffected) {
        throw new InvariantError(`expected ${s.expectAffected} row(s) changed, got ${changes}: ${s.sql}`);
      }
    }
    held.push(true);
  }
  for (const s of tail(held)) yield* run(s.sql, s.params);
  return held;
}

/**
 * {@link unitsScript} for statements that answer at once (SQLite): the same statements in the
 * same order, with the same answers and the same {@link InvariantError}, as a plain loop. The
 * script form costs a generator, an `Op` and two iterator results per statement (about 1.4 KB
 * allocated per step of the embedded benchmark). Keep the two in step
 * (`test/unit/units-script.test.ts` runs both on the same units).
 */
export function runUnits(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[], run: (s: Stmt) => number): boolean[] {
  const held: boolean[] = [];
  for (const unit of units) {
    const first = unit.guardFirst !== undefined && run(unit.guardFirst) === 1;
    if (!first && run(unit.guard) !== 1) {
      held.push(false);
      continue;
    }
    for (const s of unit.then) {
      const changes = run(s);
      if (s.expectAffected !== undefined && changes !== s.expectAffected) {
        throw new InvariantError(`expected ${s.expectAffected} row(s) changed, got ${changes}: ${s.sql}`);
      }
    }
    held.push(true);
  }
  for (const s of tail(held)) run(s);
  return held;
}

/**
 * Runs SQL against one of the two dialects. SQLite runs synchronously inside one
 * better-sqlite3 transaction, so no other code can interleave with a commit; MySQL runs on
 * one pooled connection through TypeORM.
 */
export interface SqlExecutor {
  readonly dialect: 'sqlite' | 'mysql';
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Resolves with the number of rows the statement matched. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /**
   * Runs a transaction script, committed when it returns and rolled back when it throws. On
   * SQLite it runs synchronously inside one `BEGIN IMMEDIATE` transaction (nothing else can
   * interleave); on MySQL on one connection, run again whole after a deadlock or a lock wait
   * timeout. `readCommitted` (MySQL): the transaction's isolation level.
   */
  script<T>(script: () => Script<T>, options?: { readCommitted?: boolean }): Promise<T>;
  /** Runs guarded units then the statements `tail(held)` builds from which units held; all in one transaction. */
  transaction(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]>;
}

interface BetterSqliteDb {
  prepare(sql: string): {
    reader: boolean;
    /** An array binds its items as the anonymous parameters, in order. */
    all(params: unknown[]): unknown[];
    run(params: unknown[]): { changes: number };
  };
  transaction<F extends () => unknown>(fn: F): F & { immediate: F };
}

const normOne = (p: unknown): unknown => (typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p);
/** Booleans as 0/1 and `undefined` as NULL; the same array when there is nothing to change (the usual case). */
function norm(params: unknown[]): unknown[] {
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === undefined || typeof p === 'boolean') return params.map(normOne);
  }
  return params;
}

/** Executes on better-sqlite3 directly, with its own statement cache. */
export class SqliteExecutor implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  private readonly stmts = new Map<string, ReturnType<BetterSqliteDb['prepare']>>();

  constructor(private readonly db: BetterSqliteDb) {}

  static from(ds: DataSource): SqliteExecutor {
    return new SqliteExecutor((ds.driver as unknown as { databaseConnection: BetterSqliteDb }).databaseConnection);
  }

  private prepare(sql: string): ReturnType<BetterSqliteDb['prepare']> {
    let stmt = this.stmts.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.stmts.size > 500) this.stmts.clear();
      this.stmts.set(sql, stmt);
    }
    return stmt;
  }

  private allSync(sql: string, params: unknown[]): unknown[] {
    const stmt = this.prepare(sql);
    // A statement that returns no rows (an UPDATE from a tool or a test) runs instead.
    if (!stmt.reader) {
      stmt.run(norm(params));
      return [];
    }
    return stmt.all(norm(params));
  }

  all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return Promise.resolve(this.allSync(sql, params) as T[]);
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    return Promise.resolve(this.prepare(sql).run(norm(params)).changes);
  }

  private readonly runStmt = (s: Stmt): number => this.prepare(s.sql).run(norm(s.params)).changes;

  script<T>(script: () => Script<T>): Promise<T> {
    const tx = this.db.transaction(() => {
      const gen = script();
      let input: unknown;
      for (;;) {
        const step = gen.next(input);
        if (step.done) return step.value;
        const op = step.value;
        input = op.kind === 'all' ? this.allSync(op.sql, op.params) : this.prepare(op.sql).run(norm(op.params)).changes;
      }
    });
    try {
      return Promise.resolve(tx.immediate() as T);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Guarded units as a plain loop ({@link runUnits}): every statement answers at once here. */
  transaction(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]> {
    const tx = this.db.transaction(() => runUnits(units, tail, this.runStmt));
    try {
      return Promise.resolve(tx.immediate());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

const LOCK_CONFLICT_TRIES = 6;

/** A deadlock or a lock wait timeout: the transaction was rolled back and may be run again. */
function isLockConflict(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; driverError?: { code?: unknown; errno?: unknown } } | undefined;
  const codes = [e?.code, e?.driverError?.code];
  const errnos = [e?.errno, e?.driverError?.errno];
  return codes.includes('ER_LOCK_DEADLOCK') || codes.includes('ER_LOCK_WAIT_TIMEOUT') || errnos.includes(1213) || errnos.includes(1205);
}

/** True for a unique-index violation on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; driverError?: { code?: unknown; errno?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  const errno = e?.driverError?.errno ?? e?.errno;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'ER_DUP_ENTRY' || errno === 1062;
}

/**
 * Two engines' transactions can lock rows in opposite orders; InnoDB then rolls one of them
 * back whole ("Deadlock found ... try restarting transaction"). What it rolled back is plain
 * statements, so it runs again, after a short random pause that grows with each try (so the
 * same transactions do not meet again at once), instead of failing every request it carries.
 */
async function retryOnLockConflict<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= LOCK_CONFLICT_TRIES || !isLockConflict(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * n));
    }
  }
}

/** Feeds a script's statements to one query runner, inside its transaction. */
async function drive<T>(qr: QueryRunner, gen: Script<T>): Promise<T> {
  let input: unknown;
  for (;;) {
    const step = gen.next(input);
    if (step.done) return step.value;
    const res = await qr.query(step.value.sql, norm(step.value.params), true);
    input = step.value.kind === 'all' ? res.records : (res.affected ?? 0);
  }
}

/**
 * Statements for {@link MysqlExecutor.sendAll}: each with the rows it must change, if that
 * matters (`expect`), else any count is fine.
 */
export type Checked = Stmt & { expect?: number };

/** Executes on MySQL/MariaDB through a TypeORM query runner per transaction. */
export class MysqlExecutor implements SqlExecutor {
  readonly dialect = 'mysql' as const;
  /** A small pool whose connections accept several statements in one query (`sendAll` only). */
  private multi: Pool | undefined;
  constructor(private readonly ds: DataSource) {}

  /**
   * One transaction in one or two round trips instead of one per statement: `START
   * TRANSACTION` and every statement go in one query (a multi-statement query, on a pool of
   * its own), then `COMMIT` if every count is the expected one, else `ROLLBACK` and `false`
   * (nothing of it is written; the caller takes the statement-by-statement path, which tells
   * a refusal from a broken invariant). With no expectation at all, `COMMIT` rides the same
   * query. Every value is still escaped by the driver (`format`). A statement that fails
   * (a unique key that a concurrent commit took, a deadlock) rolls it back too, and answers
   * `false`: the statement-by-statement path then decides, and throws what it must.
   */
  async sendAll(stmts: Checked[], options: { readCommitted?: boolean } = {}): Promise<boolean> {
    const { url } = this.ds.options as { url?: string };
    this.multi ??= createPool({
      uri: url, multipleStatements: true, charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: false, connectionLimit: 4,
    });
    const checked = stmts.some((st) => st.expect !== undefined);
    // `SET TRANSACTION` applies to the next transaction only: the pooled connection keeps its default.
    const head = options.readCommitted ? ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'START TRANSACTION'] : ['START TRANSACTION'];
    const text = [...head, ...stmts.map((st) => format(st.sql, norm(st.params) as never)), ...(checked ? [] : ['COMMIT'])].join(';\n');
    const conn = await this.multi.getConnection();
    try {
      const [results] = await conn.query(text);
      const counts = (results as ResultSetHeader[]).slice(head.length, head.length + stmts.length).map((r) => r.affectedRows);
      if (!checked) return true;
      const ok = stmts.every((st, i) => st.expect === undefined || counts[i] === st.expect);
      await conn.query(ok ? 'COMMIT' : 'ROLLBACK');
      return ok;
    } catch {
      // A failed statement ends the query there; what ran before it is undone.
      await conn.query('ROLLBACK').catch(() => undefined);
      return false;
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    const pool = this.multi;
    this.multi = undefined;
    await pool?.end();
  }

  /** A single statement can be a deadlock's victim too (InnoDB rolled it back), so it runs again like a script. */
  all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return retryOnLockConflict(async () => (await this.ds.query(sql, norm(params))) as T[]);
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    return retryOnLockConflict(async () => {
      const qr = this.ds.createQueryRunner();
      try {
        const res = await qr.query(sql, norm(params), true);
        return res.affected ?? 0;
      } finally {
        await qr.release();
      }
    });
  }

  script<T>(script: () => Script<T>, options: { readCommitted?: boolean } = {}): Promise<T> {
    return retryOnLockConflict(() => this.scriptOnce(script, options.readCommitted === true));
  }

  private async scriptOnce<T>(script: () => Script<T>, readCommitted: boolean): Promise<T> {
    const qr = this.ds.createQueryRunner();
    try {
      await qr.connect();
      await qr.startTransaction(readCommitted ? 'READ COMMITTED' : undefined);
      const value = await drive(qr, script());
      await qr.commitTransaction();
      return value;
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await qr.release();
    }
  }

  transaction(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]> {
    return this.script(() => unitsScript(units, tail));
  }
}
