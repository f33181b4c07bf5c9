/**
 * The embedded engine the one-request tools (`page-map.ts`, `alone.ts`) measure: a fresh SQLite
 * file under `.tmp/<name>/`, the bench's fixtures (`bench-linear`: 5 in-process steps), logs at
 * `warn`, and a way to run one request and wait for its end.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';

/** better-sqlite3's connection, as far as these tools use it. */
export interface RawDb {
  prepare(sql: string): { all(...a: unknown[]): unknown[]; run(...a: unknown[]): unknown };
  pragma(s: string): unknown;
  exec(sql: string): unknown;
}

export interface SqliteBench {
  engine: Engine;
  /** The engine's own connection. */
  db: RawDb;
  /** The database file (its `-wal` beside it). */
  file: string;
  /** Submits one `bench-linear` request and resolves when it has finished. */
  runOne(): Promise<void>;
  /** Stops the engine and removes the database files. */
  close(): Promise<void>;
}

/** Creates the engine (not started: the caller may patch it first). `onFinished` runs at every `RequestFinished`. */
export async function sqliteBench(name: string, onFinished?: () => void): Promise<SqliteBench> {
  const dir = path.resolve(__dirname, '..', '..', '.tmp', name);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${process.pid}.db`);
  const fixtures = path.join(__dirname, 'fixtures');
  const engine = await Engine.create({
    databaseUrl: `sqlite:${file}`, pipelinesDir: path.join(fixtures, 'pipelines'), modulesDir: path.join(fixtures, 'modules'),
    sqliteSynchronous: 'NORMAL', logger: createLogger('warn'),
  });
  const db = (engine.store as unknown as { ds: { driver: { databaseConnection: RawDb } } }).ds.driver.databaseConnection;
  const waiters = new Map<string, () => void>();
  const ended = new Set<string>();
  engine.bus.on('RequestFinished', ({ requestId }) => {
    onFinished?.();
    const w = waiters.get(requestId);
    if (w) w();
    else ended.add(requestId);
  });
  const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };
  return {
    engine, db, file,
    async runOne() {
      const { id } = await engine.intake.submit({ pipelineId: 'bench-linear', payload });
      if (!ended.delete(id)) await new Promise<void>((resolve) => waiters.set(id, resolve));
      waiters.delete(id);
    },
    async close() {
      await engine.stop();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    },
  };
}

/** Runs a tool's `main`, printing its error and exiting 1 if it fails. */
export function runTool(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
