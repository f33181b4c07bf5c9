import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { CONFIG_VARIABLES, processEnv, type Env } from '../config';
import { Initial1763800000000 } from './migrations/1763800000000-initial';
import { Leases1763800000001 } from './migrations/1763800000001-leases';
import { Settings1763800000002 } from './migrations/1763800000002-settings';
import { Utf8mb41763800000003 } from './migrations/1763800000003-utf8mb4';
import { SearchIndexes1763800000010 } from './migrations/1763800000010-search-indexes';
import { Waits1763800000004 } from './migrations/1763800000004-waits';
import { Intake1763800000020 } from './migrations/1763800000020-intake';
import { SqliteOpenRunIndexes1763800000090 } from './migrations/1763800000090-sqlite-open-run-indexes';
import { Vars1763800000110 } from './migrations/1763800000110-vars';
import { LongWaits1763800000130 } from './migrations/1763800000130-long-waits';
import { TraceContext1763800000160 } from './migrations/1763800000160-trace-context';
import { IntakeRejects1763800000120 } from './migrations/1763800000120-intake-rejects';
import { AdminAlerts1763800000140 } from './migrations/1763800000140-admin-alerts';
import { OverviewIndex1763800000141 } from './migrations/1763800000141-overview-index';
import { People1763800000100 } from './migrations/1763800000100-people';
import { RequestMigrations1763800000200 } from './migrations/1763800000200-request-migrations';
import { SqliteLeanIndexes1763800000300 } from './migrations/1763800000300-sqlite-lean-indexes';
import { SqliteLeanRequestIndexes1763800000310 } from './migrations/1763800000310-sqlite-lean-request-indexes';
import { MysqlLeanRunIndexes1763800000320 } from './migrations/1763800000320-mysql-lean-run-indexes';
import { SqliteKeyWaitersIndex1763800000330 } from './migrations/1763800000330-sqlite-key-waiters-index';
import { MysqlLeanRequestIndexes1763800000340 } from './migrations/1763800000340-mysql-lean-request-indexes';
import { SqliteEndedKeyHolders1763800000350 } from './migrations/1763800000350-sqlite-ended-key-holders';
import { SqliteKeyHoldIndex1763800000360 } from './migrations/1763800000360-sqlite-key-hold-index';
import { OpenRunInRequest1763800000370 } from './migrations/1763800000370-open-run-in-request';
import { SqliteOpenStatusIndex1763800000380 } from './migrations/1763800000380-sqlite-open-status-index';
import { MysqlOpenStatusIndex1763800000390 } from './migrations/1763800000390-mysql-open-status-index';

/**
 * The schema is the migrations' alone: the store runs plain SQL (`sql-executor.ts`) and maps
 * rows itself (`rows.ts`), so no entity classes describe the tables a second time.
 */
export const MIGRATIONS = [
  Initial1763800000000, Leases1763800000001, Settings1763800000002, Utf8mb41763800000003, Waits1763800000004, SearchIndexes1763800000010, Intake1763800000020,
  SqliteOpenRunIndexes1763800000090, People1763800000100, Vars1763800000110, IntakeRejects1763800000120, LongWaits1763800000130, AdminAlerts1763800000140,
  OverviewIndex1763800000141, TraceContext1763800000160, RequestMigrations1763800000200,
  SqliteLeanIndexes1763800000300, SqliteLeanRequestIndexes1763800000310,
  MysqlLeanRunIndexes1763800000320, SqliteKeyWaitersIndex1763800000330, MysqlLeanRequestIndexes1763800000340,
  SqliteEndedKeyHolders1763800000350, SqliteKeyHoldIndex1763800000360, OpenRunInRequest1763800000370,
  SqliteOpenStatusIndex1763800000380, MysqlOpenStatusIndex1763800000390,
];

/** `sqlite:<path>` or `mysql://user:pass@host:port/db`. */
export const DEFAULT_DATABASE_URL = CONFIG_VARIABLES.DATABASE_URL!;

export interface StoreOptions {
  /**
   * SQLite only: `FULL` fsyncs every commit; `NORMAL` (the WAL default) may lose the last
   * commits on power loss, never on a process crash. When unset: the URL's
   * `?synchronous=FULL`, else `CONVEYOR_SQLITE_SYNCHRONOUS`, else `NORMAL`.
   */
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** SQLite only: the page cache in MB. When unset: `CONVEYOR_SQLITE_CACHE_MB`, else 32. */
  sqliteCacheMb?: number;
  /**
   * SQLite only: who checkpoints the WAL. `THREAD`: a second connection on a worker thread
   * (`checkpointer.ts`); `COMMIT`: the committing connection, SQLite's own way. When unset:
   * `CONVEYOR_SQLITE_CHECKPOINT`, else `THREAD`.
   */
  sqliteCheckpoint?: 'THREAD' | 'COMMIT';
}

/** The page cache's default size in MB (SQLite's own default is about 2 MB). */
export const SQLITE_CACHE_MB = 32;

/**
 * The SQLite page cache in MB: the option, else `CONVEYOR_SQLITE_CACHE_MB`, else 32. SQLite's
 * own ~2 MB holds the indexes of a few ten thousand requests; beyond that every statement that
 * probes a random key (a business key, an idempotency key) reads its pages back from the OS,
 * and intake slowed down as the tables grew. 32 MB was as fast as 64 MB at 100,000 requests
 * and kept ~40 MB of RSS (docs/performance.md).
 */
export function sqliteCacheMb(options: StoreOptions = {}, env: Env = processEnv()): number {
  if (options.sqliteCacheMb !== undefined) return options.sqliteCacheMb;
  const raw = env.CONVEYOR_SQLITE_CACHE_MB?.trim();
  if (!raw) return SQLITE_CACHE_MB;
  const mb = Number(raw);
  if (!/^\d+$/.test(raw) || mb < 1 || mb > 65_536) throw new Error(`CONVEYOR_SQLITE_CACHE_MB must be an integer 1-65536, got "${raw}"`);
  return mb;
}

/** Who checkpoints the WAL: the option, else `CONVEYOR_SQLITE_CHECKPOINT`, else `THREAD`. */
export function sqliteCheckpoint(options: StoreOptions = {}, env: Env = processEnv()): 'THREAD' | 'COMMIT' {
  if (options.sqliteCheckpoint !== undefined) return options.sqliteCheckpoint;
  const raw = env.CONVEYOR_SQLITE_CHECKPOINT?.trim();
  if (!raw) return 'THREAD';
  const v = raw.toUpperCase();
  if (v === 'THREAD' || v === 'COMMIT') return v;
  throw new Error(`CONVEYOR_SQLITE_CHECKPOINT must be THREAD or COMMIT, got "${raw}"`);
}

const SYNCHRONOUS = ['NORMAL', 'FULL'] as const;

function parseSynchronous(value: string, source: string): 'NORMAL' | 'FULL' {
  const v = value.trim().toUpperCase();
  if ((SYNCHRONOUS as readonly string[]).includes(v)) return v as 'NORMAL' | 'FULL';
  throw new Error(`${source} must be NORMAL or FULL, got "${value}"`);
}

/**
 * Splits `sqlite:<path>[?synchronous=NORMAL|FULL]` and decides the `synchronous` pragma:
 * the explicit option, else the URL, else `CONVEYOR_SQLITE_SYNCHRONOUS`, else `NORMAL`.
 */
export function sqliteSettings(url: string, options: StoreOptions = {}, env: Env = processEnv()): { path: string; synchronous: 'NORMAL' | 'FULL' } {
  const rest = url.slice('sqlite:'.length);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
  for (const key of query.keys()) {
    if (key !== 'synchronous') throw new Error(`DATABASE_URL: unknown SQLite option "${key}" (known: synchronous)`);
  }
  const fromUrl = query.get('synchronous');
  const fromEnv = env.CONVEYOR_SQLITE_SYNCHRONOUS;
  const synchronous = options.sqliteSynchronous
    ?? (fromUrl !== null ? parseSynchronous(fromUrl, 'DATABASE_URL ?synchronous') : undefined)
    ?? (fromEnv ? parseSynchronous(fromEnv, 'CONVEYOR_SQLITE_SYNCHRONOUS') : undefined)
    ?? 'NORMAL';
  return { path, synchronous };
}

/** Builds TypeORM options from a database URL. Throws a clear error for an unknown scheme. */
export function dataSourceOptions(url: string, options: StoreOptions = {}): DataSourceOptions {
  const common = { migrations: MIGRATIONS, synchronize: false, logging: false } as const;
  if (url.startsWith('sqlite:')) {
    const { path, synchronous } = sqliteSettings(url, options);
    const cacheMb = sqliteCacheMb(options);
    const database = path === ':memory:' ? ':memory:' : resolve(path);
    if (database !== ':memory:') mkdirSync(dirname(database), { recursive: true });
    return {
      ...common,
      type: 'better-sqlite3',
      database,
      enableWAL: database !== ':memory:',
      statementCacheSize: 200,
      prepareDatabase: (db: { pragma(s: string): unknown }) => {
        db.pragma(`synchronous = ${synchronous}`);
        db.pragma('busy_timeout = 5000');
        // Checkpoint every ~40 MB of WAL instead of the default ~4 MB: under load the same hot
        // pages (open runs, running requests) are rewritten many times between checkpoints, and
        // each checkpoint copies a page once and fsyncs once, however often it changed. With
        // the checkpoint thread (`checkpointer.ts`) this is the WAL's bound: the committing
        // connection checkpoints only what the thread has not copied yet.
        db.pragma('wal_autocheckpoint = 10000');
        // A negative cache_size is in KiB. The cache fills only as far as the database is read.
        db.pragma(`cache_size = ${-cacheMb * 1024}`);
      },
    };
  }
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) {
    return {
      ...common,
      type: 'mysql',
      url: url.replace(/^mariadb:/, 'mysql:'),
      charset: 'utf8mb4',
      supportBigNumbers: true,
      bigNumberStrings: false,
      extra: { connectionLimit: 10 },
    };
  }
  throw new Error(`DATABASE_URL must start with "sqlite:" or "mysql://", got "${url}"`);
}

/** A database that a newer release has migrated: this release would not find rows where they now live. */
export class SchemaAheadError extends Error {
  constructor(readonly unknown: string[], newestKnown: string) {
    super(
      `the database was migrated by a newer Conveyor release: it has ${unknown.length === 1 ? 'migration' : 'migrations'} ${unknown.join(', ')}, ` +
        `which this release does not know (its newest is ${newestKnown}). Nothing was changed. Start the newer release on it, ` +
        'or stop every process and restore a backup taken before the upgrade (docs/distributed.md, "Upgrading")',
    );
    this.name = 'SchemaAheadError';
  }
}

/**
 * Migrations that were replaced before any release and are no longer in {@link MIGRATIONS}: a
 * development database may still list them, and it is not from a newer release.
 * `SqlitePartialHold1763800000310` became `SqliteLeanRequestIndexes1763800000310`.
 */
const RETIRED_MIGRATIONS = ['SqlitePartialHold1763800000310'];

/** The migrations the database has that this release does not know, oldest first (none on a new database). */
export async function unknownMigrations(ds: DataSource): Promise<string[]> {
  const table = ds.options.migrationsTableName ?? 'migrations';
  const qr = ds.createQueryRunner();
  try {
    if (!(await qr.hasTable(table))) return [];
  } finally {
    await qr.release();
  }
  // The same name TypeORM records for a migration (`MigrationExecutor`).
  const known = new Set([...ds.migrations.map((m) => m.name ?? m.constructor.name), ...RETIRED_MIGRATIONS]);
  const rows = (await ds.query(`SELECT name FROM ${ds.driver.escape(table)} ORDER BY timestamp, id`)) as Array<{ name: unknown }>;
  return rows.map((r) => String(r.name)).filter((name) => !known.has(name));
}

/**
 * Applies pending migrations, each in its own transaction, and answers their names; first
 * refuses a database that a newer release has migrated ({@link SchemaAheadError}): an older
 * engine would run on it without seeing what the newer schema moved.
 */
export async function runKnownMigrations(ds: DataSource): Promise<string[]> {
  const unknown = await unknownMigrations(ds);
  if (unknown.length > 0) throw new SchemaAheadError(unknown, ds.migrations.at(-1)?.name ?? 'none');
  return (await ds.runMigrations({ transaction: 'each' })).map((m) => m.name);
}

/** Opens the database and applies pending migrations (refusing a database a newer release migrated). */
export async function openDataSource(url: string, options: StoreOptions = {}): Promise<DataSource> {
  const ds = new DataSource(dataSourceOptions(url, options));
  await ds.initialize();
  try {
    await runKnownMigrations(ds);
  } catch (err) {
    await ds.destroy();
    throw err;
  }
  return ds;
}
