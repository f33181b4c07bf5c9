import type { DataSource } from 'typeorm';

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
  /** Built only for units whose guard held. */
  after?: Stmt[];
}

export class InvariantError extends Error {}

/** Statements inside {@link SqlExecutor.inTransaction}. */
export interface TxRunner {
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Resolves with the number of rows the statement matched. */
  run(sql: string, params?: unknown[]): Promise<number>;
}

/**
 * Runs SQL against one of the two dialects. SQLite runs synchronously inside one
 * better-sqlite3 transaction, so no other code can interleave with a commit; MySQL runs on
 * one pooled connection through TypeORM.
 */
export interface SqlExecutor {
  readonly dialect: 'sqlite' | 'mysql';
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  run(sql: string, params?: unknown[]): Promise<number>;
  /**
   * MySQL only: runs `script` in one transaction on one connection, committed when it
   * resolves and rolled back when it throws. For writes whose statements depend on what the
   * transaction read (locked) first.
   */
  inTransaction?<T>(script: (tx: TxRunner) => Promise<T>): Promise<T>;
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
  transaction<F extends (...args: never[]) => unknown>(fn: F): F;
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

  all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const stmt = this.prepare(sql);
    // A statement that returns no rows (an UPDATE from a tool or a test) runs instead.
    if (!stmt.reader) {
      stmt.run(norm(params));
      return Promise.resolve([]);
    }
    return Promise.resolve(stmt.all(norm(params)) as T[]);
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    return Promise.resolve(this.prepare(sql).run(norm(params)).changes);
  }

  transaction(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]> {
    const exec = this.db.transaction(() => {
      const held = units.map((unit) => {
        const first = unit.guardFirst && this.prepare(unit.guardFirst.sql).run(norm(unit.guardFirst.params)).changes === 1;
        if (!first && this.prepare(unit.guard.sql).run(norm(unit.guard.params)).changes !== 1) return false;
        for (const s of unit.then) {
          const changes = this.prepare(s.sql).run(norm(s.params)).changes;
          if (s.expectAffected !== undefined && changes !== s.expectAffected) {
            throw new InvariantError(`expected ${s.expectAffected} row(s) changed, got ${changes}: ${s.sql}`);
          }
        }
        return true;
      });
      for (const s of tail(held)) this.prepare(s.sql).run(norm(s.params));
      return held;
    });
    try {
      return Promise.resolve(exec());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

const LOCK_CONFLICT_TRIES = 5;

/** A deadlock or a lock wait timeout: the transaction was rolled back and may be run again. */
function isLockConflict(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; driverError?: { code?: unknown; errno?: unknown } };
  const codes = [e.code, e.driverError?.code];
  const errnos = [e.errno, e.driverError?.errno];
  return codes.includes('ER_LOCK_DEADLOCK') || codes.includes('ER_LOCK_WAIT_TIMEOUT') || errnos.includes(1213) || errnos.includes(1205);
}

const DEADLOCK_RETRIES = 5;

function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | undefined;
  const code = e?.driverError?.code ?? e?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

/** Executes on MySQL/MariaDB through a TypeORM query runner per transaction. */
export class MysqlExecutor implements SqlExecutor {
  readonly dialect = 'mysql' as const;
  constructor(private readonly ds: DataSource) {}

  async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.ds.query(sql, norm(params))) as T[];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    const qr = this.ds.createQueryRunner();
    try {
      const res = await qr.query(sql, norm(params), true);
      return res.affected ?? 0;
    } finally {
      await qr.release();
    }
  }

  /**
   * Group-commit batches run in READ COMMITTED: their guards are locking (current) reads,
   * which see the same rows in either level, and without gap locks concurrent batches (of
   * this or another engine) do not deadlock on the gaps of the status indexes. A deadlock
   * that happens anyway rolled everything back, so the batch is simply run again.
   */
  async inTransaction<T>(script: (tx: TxRunner) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const qr = this.ds.createQueryRunner();
      try {
        await qr.connect();
        await qr.startTransaction('READ COMMITTED');
        const value = await script({
          all: async <R>(sql: string, params: unknown[] = []) => (await qr.query(sql, norm(params))) as R[],
          run: async (sql: string, params: unknown[] = []) => (await qr.query(sql, norm(params), true)).affected ?? 0,
        });
        await qr.commitTransaction();
        return value;
      } catch (err) {
        if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
        if (!isDeadlock(err) || attempt >= DEADLOCK_RETRIES) throw err;
      } finally {
        await qr.release();
      }
    }
  }

  /**
   * Two engines' group commits can lock rows in opposite orders; InnoDB then rolls one of the
   * transactions back whole ("Deadlock found ... try restarting transaction"). Its units are
   * plain statements, so it runs again, instead of failing every result in the batch.
   */
  async transaction(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transactionOnce(units, tail);
      } catch (err) {
        if (attempt >= LOCK_CONFLICT_TRIES || !isLockConflict(err)) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
      }
    }
  }

  private async transactionOnce(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[]): Promise<boolean[]> {
    const qr = this.ds.createQueryRunner();
    await qr.connect();
    await qr.startTransaction();
    try {
      const held: boolean[] = [];
      for (const unit of units) {
        const first = unit.guardFirst && (await qr.query(unit.guardFirst.sql, norm(unit.guardFirst.params), true)).affected === 1;
        const g = first ? { affected: 1 } : await qr.query(unit.guard.sql, norm(unit.guard.params), true);
        if (g.affected !== 1) {
          held.push(false);
          continue;
        }
        for (const s of unit.then) {
          const r = await qr.query(s.sql, norm(s.params), true);
          if (s.expectAffected !== undefined && r.affected !== s.expectAffected) {
            throw new InvariantError(`expected ${s.expectAffected} row(s) changed, got ${r.affected}: ${s.sql}`);
          }
        }
        held.push(true);
      }
      for (const s of tail(held)) await qr.query(s.sql, norm(s.params));
      await qr.commitTransaction();
      return held;
    } catch (err) {
      await qr.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await qr.release();
    }
  }
}
