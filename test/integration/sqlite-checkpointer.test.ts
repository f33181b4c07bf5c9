/**
 * SQLite's WAL checkpoints on a thread of their own (`src/store/checkpointer.ts`,
 * `CONVEYOR_SQLITE_CHECKPOINT`). Fewer pages are written here than the committing connection's
 * own bound (`wal_autocheckpoint = 10000`), so only the thread can have copied them into the
 * database file; with `COMMIT` they stay in the WAL until that bound.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { SourceStore } from '../../src/store/source-store';
import type { SqlExecutor } from '../../src/store/sql-executor';
import { SqlStore } from '../../src/store/store';
import { pollUntil } from '../support/poll';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

/** ~2,000 pages: 2,000 rows of 3 KiB each. */
async function writePages(store: SqlStore): Promise<void> {
  await store.query('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const body = 'x'.repeat(3000);
  for (let i = 0; i < 20; i++) {
    await store.query(`INSERT INTO filler (body) SELECT ? FROM (WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 100) SELECT k FROM n)`, [body]);
  }
}

describe('SQLite WAL checkpoints (CONVEYOR_SQLITE_CHECKPOINT)', function () {
  this.timeout(30_000);
  afterEach(() => cleanupTmpDirs());

  it('THREAD: a worker thread copies committed pages into the database file', async () => {
    const file = path.join(tmpDir('ckpt'), 'c.db');
    const store = await SqlStore.open(`sqlite:${file}`, { sqliteCheckpoint: 'THREAD' });
    try {
      const before = fs.statSync(file).size;
      await writePages(store);
      const stats = await pollUntil(() => store.checkpointStats()!, (s) => s.copied >= 2000 && fs.statSync(file).size >= before + 2000 * 4096, {
        timeoutMs: 10_000, failure: (s) => `the thread copied ${s.copied} frames; the file is ${fs.statSync(file).size} bytes`,
      });
      expect(stats.runs).to.be.greaterThan(0);
      const [{ n }] = await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM filler');
      expect(n).to.equal(2000);
    } finally {
      await store.close();
    }
  });

  it('COMMIT: no thread; the pages stay in the WAL below the bound', async () => {
    const file = path.join(tmpDir('ckpt'), 'c.db');
    const store = await SqlStore.open(`sqlite:${file}`, { sqliteCheckpoint: 'COMMIT' });
    try {
      expect(store.checkpointStats()).to.equal(undefined);
      const before = fs.statSync(file).size;
      await writePages(store);
      expect(fs.statSync(file).size).to.equal(before);
      expect(fs.statSync(`${file}-wal`).size).to.be.greaterThan(2000 * 4096);
    } finally {
      await store.close();
    }
  });

  it("a broker source's backlog count runs on the thread's connection and sees what was committed", async () => {
    const file = path.join(tmpDir('ckpt'), 'c.db');
    const store = await SqlStore.open(`sqlite:${file}`);
    try {
      const at = Date.now();
      const insert = "INSERT INTO requests (id, pipeline_id, version, status, payload, created_at, updated_at) VALUES (?, 'p', 1, ?, '{}', ?, ?)";
      for (const [i, status] of ['buffered', 'running', 'completed', 'buffered'].entries()) await store.query(insert, [`r${i}`, status, at, at]);
      expect(await store.sources.backlog('p', 100)).to.equal(3);
      expect(await store.sources.backlog('p', 1)).to.equal(2); // counted up to cap + 1
      expect(await store.sources.backlog('other', 100)).to.equal(0);
      const stopped = await SqlStore.open(`sqlite:${file}`, { sqliteCheckpoint: 'COMMIT' });
      try {
        expect(await stopped.sources.backlog('p', 100)).to.equal(3); // the same count on the engine's own connection
      } finally {
        await stopped.close();
      }
    } finally {
      await store.close();
    }
    // Once the thread is gone the count falls back to the engine's own connection, which is
    // closed here too: the error is the store's, not a hang.
    await store.sources.backlog('p', 100).then(
      () => expect.fail('a read after close must fail'),
      (err: Error) => expect(err.message).to.match(/not open|closed/i),
    );
  });

  it('the backlog count falls back to the engine connection when the side thread cannot answer', async () => {
    const file = path.join(tmpDir('ckpt'), 'c.db');
    const store = await SqlStore.open(`sqlite:${file}`, { sqliteCheckpoint: 'COMMIT' });
    try {
      const at = Date.now();
      await store.query("INSERT INTO requests (id, pipeline_id, version, status, payload, created_at, updated_at) VALUES ('r1', 'p', 1, 'buffered', '{}', ?, ?)", [at, at]);
      const engine = { dialect: 'sqlite', all: (sql: string, params: unknown[]) => store.query(sql, params) } as unknown as SqlExecutor;
      const failing = new SourceStore(engine, () => Promise.reject(new Error('the SQLite side thread has stopped')));
      expect(await failing.backlog('p', 100)).to.equal(1);
    } finally {
      await store.close();
    }
  });

  it('closing the store stops the thread, and the data is all there on reopening', async () => {
    const file = path.join(tmpDir('ckpt'), 'c.db');
    const store = await SqlStore.open(`sqlite:${file}`);
    await writePages(store);
    await store.close();
    const again = await SqlStore.open(`sqlite:${file}`);
    try {
      const [{ n }] = await again.query<{ n: number }>('SELECT COUNT(*) AS n FROM filler');
      expect(n).to.equal(2000);
    } finally {
      await again.close();
    }
  });
});
