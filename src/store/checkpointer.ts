import { Worker } from 'node:worker_threads';

/**
 * SQLite's side thread: WAL checkpoints, and long reads, on a thread and connection of their
 * own (`CONVEYOR_SQLITE_CHECKPOINT=THREAD`, the default; `SqlStore.open` starts it for a
 * database file).
 *
 * In WAL mode every committed page is written twice: once as a WAL frame by the commit, once
 * into the database file by a checkpoint, which reads the frame back first. By default the
 * connection that commits also checkpoints (`wal_autocheckpoint`), so on a large database, where
 * a commit's pages are mostly distinct, the engine's one thread spent about a third of its
 * write and read system calls copying pages. A second connection on a worker thread now runs
 * `PRAGMA wal_checkpoint(PASSIVE)` every `everyMs`: a passive checkpoint takes no lock the
 * writer needs and never waits for it, and copies only frames that are committed. The engine's
 * own `wal_autocheckpoint` stays as the bound on the WAL: when the worker falls behind (or is
 * gone), the committing connection checkpoints as before, and it finds little left to copy.
 *
 * A checkpoint is safe from any connection at any moment: a crash during one leaves the WAL,
 * which the next open replays (SQLite's own guarantee; the chaos campaign kills the engine
 * with the worker running).
 *
 * The same connection answers reads that need not be on the engine's thread ({@link
 * Checkpointer.read}): a broker source's backlog count, which reads up to `maxBuffered` index
 * entries, runs there without blocking the event loop or evicting the intake's pages from the
 * engine's page cache.
 */
export interface Checkpointer {
  /** Checkpoints run so far, and frames they found in the WAL (for tests and the bench). */
  stats(): Promise<{ runs: number; frames: number; copied: number }>;
  /**
   * Runs a read on the thread's own connection, off the engine's thread: a long count (a
   * broker source's backlog) neither blocks the event loop nor evicts the intake's pages
   * from the engine's page cache. It reads the last committed state.
   */
  read<T>(sql: string, params: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

/** How often the worker checkpoints, in ms. */
export const CHECKPOINT_EVERY_MS = 50;

// Plain JavaScript, run with `eval`: a worker needs no TypeScript loader then.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('synchronous = ' + workerData.synchronous);
const stats = { runs: 0, frames: 0, copied: 0 };
const timer = setInterval(() => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    stats.runs++;
    stats.frames += r.log > 0 ? r.log : 0;
    stats.copied += r.checkpointed > 0 ? r.checkpointed : 0;
  } catch (err) {
    // SQLITE_BUSY: another checkpoint runs (the engine's bound); the next tick tries again.
  }
}, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m && typeof m === 'object') {
    try {
      parentPort.postMessage({ id: m.id, rows: db.prepare(m.sql).all(m.params) });
    } catch (err) {
      parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
    }
    return;
  }
  if (m === 'stats') parentPort.postMessage({ stats });
  if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort.postMessage({ stopped: true });
    parentPort.close();
  }
});
`;

/** Starts the checkpoint worker for the SQLite database file at `path`. */
export function startCheckpointer(path: string, synchronous: 'NORMAL' | 'FULL', everyMs = CHECKPOINT_EVERY_MS): Checkpointer {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, synchronous, everyMs, driver: require.resolve('better-sqlite3') } });
  // The engine's exit never waits for the worker.
  worker.unref();
  let failed: Error | undefined;
  worker.on('error', (err) => (failed = err));
  const ask = <T>(message: string, key: string): Promise<T | undefined> => new Promise((resolve) => {
    if (failed) return resolve(undefined);
    const onMessage = (m: Record<string, unknown>): void => {
      if (!(key in m)) return;
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(m[key] as T);
    };
    const onExit = (): void => {
      worker.off('message', onMessage);
      resolve(undefined);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.postMessage(message);
  });
  let stopped: Promise<void> | undefined;
  let nextId = 0;
  const reads = new Map<number, { resolve(rows: unknown[]): void; reject(err: Error): void }>();
  worker.on('message', (m: { id?: number; rows?: unknown[]; error?: string }) => {
    if (m.id === undefined) return;
    const r = reads.get(m.id);
    reads.delete(m.id);
    if (m.error !== undefined) r?.reject(new Error(m.error));
    else r?.resolve(m.rows ?? []);
  });
  const failAll = (why: string): void => {
    for (const r of reads.values()) r.reject(new Error(why));
    reads.clear();
  };
  worker.on('exit', () => failAll('the SQLite side thread has stopped'));
  return {
    stats: async () => (await ask<{ runs: number; frames: number; copied: number }>('stats', 'stats')) ?? { runs: 0, frames: 0, copied: 0 },
    read: <T>(sql: string, params: unknown[]) => new Promise<T[]>((resolve, reject) => {
      if (failed || stopped) return reject(new Error('the SQLite side thread has stopped'));
      const id = nextId++;
      reads.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      worker.postMessage({ id, sql, params });
    }),
    stop: () => (stopped ??= ask('stop', 'stopped').then(() => worker.terminate()).then(() => undefined)),
  };
}
