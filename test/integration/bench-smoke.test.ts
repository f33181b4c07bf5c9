/**
 * A tiny run of the benchmark's embedded scenario (`scripts/bench`), and the store settings
 * the benchmark relies on: the SQLite `synchronous` option and the partial indexes that keep
 * the step hot path from rewriting sweeper indexes.
 */
import { expect } from 'chai';
import * as path from 'node:path';
import { runEngineScenario } from '../../scripts/bench/engine-scenario';
import { latencyStats, median } from '../../scripts/bench/common';
import { sqliteCacheMb, sqliteSettings } from '../../src/store/data-source';
import { openRowsFrom } from '../../src/store/rows';
import { openRowRuns, searchRequestRows, searchStepRows } from '../../src/store/search';
import type { SqlExecutor } from '../../src/store/sql-executor';
import { HELD_SQL, MUST_QUEUE_SQLITE } from '../../src/store/key-handover';
import { SqlStore } from '../../src/store/store';
import { requireMysql, requireRedis } from '../support/services';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

describe('bench smoke', function () {
  this.timeout(60_000);
  after(cleanupTmpDirs);

  it('runs the embedded 5-step scenario end to end and verifies every step in the database', async () => {
    const r = await runEngineScenario({
      kind: 'engine', name: 'smoke', mode: 'embedded', pipeline: 'bench-linear', requests: 150, sequential: 10, tmpDir: tmpDir('bench'),
    });
    expect(r.verified).to.include({ ok: true, duplicateRuns: 0 });
    expect(r.reqPerS).to.be.greaterThan(0);
    expect(r.stepsPerS).to.be.closeTo(r.reqPerS! * 5, 1e-6);
    expect(r.seqP50Ms).to.be.greaterThan(0);
    expect(r.p99Ms).to.be.at.least(r.p50Ms!);
  });

  it('routes the conditions variant through every step, with bounded submission', async () => {
    const r = await runEngineScenario({
      kind: 'engine', name: 'smoke-cond', mode: 'embedded', pipeline: 'bench-cond', requests: 120, sequential: 0, window: 25, sampleEvery: 40, tmpDir: tmpDir('bench'),
    });
    expect(r.verified).to.include({ ok: true });
    expect(r.samples).to.have.length(3);
  });

  it('runs the distributed scenario with a second engine process, every end counted and every step verified once', async () => {
    const [mysqlUrl, redisUrl] = await Promise.all([requireMysql(), requireRedis()]);
    const r = await runEngineScenario({
      kind: 'engine', name: 'smoke-2', mode: 'distributed', pipeline: 'bench-linear', requests: 150, sequential: 5, engines: 2, mysqlUrl, redisUrl, tmpDir: tmpDir('bench'),
    });
    expect(r.verified).to.include({ ok: true, duplicateRuns: 0 });
    // Reported; how much of the batch the second process took is scheduling, not a promise.
    expect(r.helperCpuUsPerRequest, 'the second process is measured').to.be.a('number').and.at.least(0);
    expect(r.p99Ms).to.be.at.least(r.p50Ms!);
  });

  it('computes percentiles and medians as documented', () => {
    expect(latencyStats([5, 1, 3, 2, 4])).to.deep.equal({ p50: 3, p99: 5 });
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(median([NaN, 1])).to.equal(1);
  });
});

describe('SQLite settings for the hot path', () => {
  after(cleanupTmpDirs);

  it('takes synchronous from the option, else the URL, else CONVEYOR_SQLITE_SYNCHRONOUS, else NORMAL', () => {
    expect(sqliteSettings('sqlite:./x.db', {}, {})).to.deep.equal({ path: './x.db', synchronous: 'NORMAL' });
    expect(sqliteSettings('sqlite:./x.db?synchronous=full', {}, {})).to.deep.equal({ path: './x.db', synchronous: 'FULL' });
    expect(sqliteSettings('sqlite:./x.db', {}, { CONVEYOR_SQLITE_SYNCHRONOUS: 'FULL' }).synchronous).to.equal('FULL');
    expect(sqliteSettings('sqlite:./x.db?synchronous=NORMAL', {}, { CONVEYOR_SQLITE_SYNCHRONOUS: 'FULL' }).synchronous).to.equal('NORMAL');
    expect(sqliteSettings('sqlite:./x.db?synchronous=NORMAL', { sqliteSynchronous: 'FULL' }, {}).synchronous).to.equal('FULL');
    expect(() => sqliteSettings('sqlite:./x.db?synchronous=OFF', {}, {})).to.throw(/NORMAL or FULL/);
    expect(() => sqliteSettings('sqlite:./x.db?cache=shared', {}, {})).to.throw(/unknown SQLite option "cache"/);
  });

  it('opens the database with the synchronous level asked for', async () => {
    const dir = tmpDir('sync');
    const full = await SqlStore.open(`sqlite:${path.join(dir, 'a.db')}?synchronous=FULL`);
    const normal = await SqlStore.open(`sqlite:${path.join(dir, 'b.db')}`);
    try {
      expect(await full.query('PRAGMA synchronous')).to.deep.equal([{ synchronous: 2 }]);
      expect(await normal.query('PRAGMA synchronous')).to.deep.equal([{ synchronous: 1 }]);
    } finally {
      await full.close();
      await normal.close();
    }
  });

  it('takes the page cache from the option, else CONVEYOR_SQLITE_CACHE_MB, else 32 MB, and opens the database with it', async () => {
    expect(sqliteCacheMb({}, {})).to.equal(32);
    expect(sqliteCacheMb({}, { CONVEYOR_SQLITE_CACHE_MB: '256' })).to.equal(256);
    expect(sqliteCacheMb({ sqliteCacheMb: 8 }, { CONVEYOR_SQLITE_CACHE_MB: '256' })).to.equal(8);
    expect(() => sqliteCacheMb({}, { CONVEYOR_SQLITE_CACHE_MB: '1.5' })).to.throw(/integer 1-65536/);
    const store = await SqlStore.open(`sqlite:${path.join(tmpDir('cache'), 'c.db')}`, { sqliteCacheMb: 16 });
    try {
      expect(await store.query('PRAGMA cache_size')).to.deep.equal([{ cache_size: -16 * 1024 }]);
    } finally {
      await store.close();
    }
  });

  it('the sweeper queries are served by an index, never a scan of the step log', async () => {
    const store = await SqlStore.open(`sqlite:${path.join(tmpDir('plans'), 'p.db')}`);
    const plan = async (sql: string): Promise<string> => {
      const params = Array.from({ length: (sql.match(/\?/g) ?? []).length }, (_, i) => String(i + 1));
      return (await store.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join('; ');
    };
    try {
      // The same statements as SqlStore.claimDueRuns / claimExpiredLeases / claimExpiredWaits / findWaitingForEvent.
      for (const sql of [
        "SELECT id, request_id FROM step_runs WHERE status = 'pending' AND available_at <= ? ORDER BY available_at LIMIT ?",
        "SELECT id, request_id, lease_until, transport FROM step_runs WHERE status = 'dispatched' AND lease_until < ? ORDER BY lease_until LIMIT ?",
        "SELECT id, request_id, lease_until FROM step_runs WHERE status = 'waiting' AND lease_until < ? ORDER BY lease_until LIMIT ?",
        "SELECT id, request_id FROM step_runs WHERE wait_event = ? AND wait_key = ? AND status IN ('pending','dispatched','waiting') ORDER BY seq LIMIT ?",
      ]) {
        const p = await plan(sql);
        expect(p, sql).to.match(/SEARCH step_runs USING (COVERING )?INDEX/);
        expect(p, sql).to.not.match(/SCAN step_runs/);
      }
      // Attempts open in requests' rows (migration 1763800000380): the sweeps read dispatched ones
      // through ix_requests_open_status and expired callback deadlines in order through
      // ix_requests_open_wait; the step search reads them through ix_requests_open_status (as in
      // StepStore.claimOpenRows and search.ts openRowRuns).
      const sqlite = 'sqlite' as const;
      for (const [sql, index] of [
        [`SELECT id FROM ${openRowsFrom(sqlite)} WHERE open_status = 'dispatched' AND open_lease < ? ORDER BY open_lease LIMIT ?`, 'SEARCH requests USING INDEX ix_requests_open_status (open_status=?)'],
        [`SELECT id FROM ${openRowsFrom(sqlite, true)} WHERE open_status = 'waiting' AND open_lease < ? ORDER BY open_lease LIMIT ?`, 'SEARCH requests USING INDEX ix_requests_open_wait (open_lease<?)'],
        [`SELECT id FROM ${openRowsFrom(sqlite)} WHERE open_status IN ('dispatched', 'waiting') AND pipeline_id = ? LIMIT ?`, 'SEARCH requests USING INDEX ix_requests_open_status (open_status=?)'],
        [`SELECT id FROM ${openRowsFrom(sqlite)} WHERE open_status = ? AND pipeline_id = ? LIMIT ?`, 'SEARCH requests USING INDEX ix_requests_open_status (open_status=?)'],
        ["SELECT MAX(open_lease) FROM requests WHERE open_status = 'dispatched'", 'SEARCH requests USING INDEX ix_requests_open_status (open_status=?)'],
      ] as const) expect(await plan(sql), sql).to.include(index);
      // Held requests (a gate, a business key's queue) and requests waiting to start are found through
      // the partial ix_requests_hold and ix_requests_status (as in intake-release.ts, intake-store.ts, SqlStore.listStaleBuffered).
      for (const [sql, index] of [
        ["SELECT id, status FROM requests WHERE pipeline_id = ? AND hold = 'gate' AND created_at <= ? ORDER BY created_at, id LIMIT ?", 'ix_requests_hold'],
        ["SELECT business_key FROM requests WHERE pipeline_id = ? AND hold = 'key' LIMIT ?", 'SEARCH requests USING INDEX ix_requests_hold (pipeline_id=? AND hold=?)'],
        ["SELECT id FROM requests WHERE status = 'buffered' AND release_at < ? ORDER BY release_at LIMIT ?", 'ix_requests_status (status=? AND release_at<?)'],
      ] as const) expect(await plan(sql), sql).to.include(index);
      // A business key's queue is one range of ix_requests_key_hold (business key, pipeline,
      // hold, created, id), read without a row of the table (as in IntakeStore.hasKeyWaiters
      // and the waiter reads), and the key's history around it is never walked (migration
      // 1763800000360; before, the partial ix_requests_key_waiters of 1763800000330).
      for (const sql of [
        "SELECT 1 FROM requests INDEXED BY ix_requests_key_hold WHERE pipeline_id = ? AND business_key = ? AND hold = 'key' LIMIT 1",
        "SELECT id FROM requests INDEXED BY ix_requests_key_hold WHERE pipeline_id = ? AND business_key = ? AND hold = 'key' ORDER BY created_at, id LIMIT 1",
      ]) expect(await plan(sql), sql).to.equal('SEARCH requests USING COVERING INDEX ix_requests_key_hold (business_key=? AND pipeline_id=? AND hold=?)');
      // Whether a newcomer must queue, and whether a queued submit can be promoted, read no
      // row of the table either: the holder's status comes from the small index of holders
      // that ended (migration 1763800000350), which is read only when it has an entry.
      expect(await plan(MUST_QUEUE_SQLITE)).to.equal([
        'SCAN CONSTANT ROW', 'SCALAR SUBQUERY 1', 'SEARCH requests USING COVERING INDEX ix_requests_key_hold (business_key=? AND pipeline_id=? AND hold=?)',
        'SCALAR SUBQUERY 2', 'SEARCH requests USING COVERING INDEX uq_requests_active_key (pipeline_id=? AND active_key=?)',
        'SCALAR SUBQUERY 3', 'SEARCH requests USING INDEX ix_requests_key_ended (pipeline_id=? AND active_key=?)',
      ].join('; '));
      expect(await plan(HELD_SQL)).to.equal('SEARCH requests USING COVERING INDEX uq_requests_active_key (pipeline_id=? AND active_key=?)');
      const requestIndexes = (await store.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'")).map((r) => r.name);
      expect(requestIndexes).to.include('ix_requests_key_hold').and.not.include.members(['ix_requests_key_waiters', 'ix_requests_search_business_key', 'ix_requests_business_key']);
      const indexes = (await store.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'step_runs'")).map((r) => r.name);
      expect(indexes).to.not.include.members(['ix_step_runs_status_available', 'ix_step_runs_status_lease', 'ix_step_runs_wait']);
    } finally {
      await store.close();
    }
  });

  it('every search of GET /api/requests and /api/steps is served by an index, also where the index is partial', async () => {
    const store = await SqlStore.open(`sqlite:${path.join(tmpDir('plans'), 's.db')}`);
    // The search builds its SQL through this executor, which keeps it instead of running it.
    const seen: Array<{ sql: string; params: unknown[] }> = [];
    const capture = { dialect: 'sqlite', all: async (sql: string, params: unknown[] = []) => (seen.push({ sql, params }), []) } as unknown as SqlExecutor;
    const plan = async (q: { sql: string; params: unknown[] }): Promise<string> =>
      (await store.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${q.sql}`, q.params)).map((r) => r.detail).join('; ');
    try {
      const window = { limit: 50, after: { t: 1, id: 'x' } };
      const steps = [{}, { pipeline: 'p' }, { pipeline: 'p', step: 's' }, ...['pending', 'dispatched', 'waiting', 'completed', 'failed', 'cancelled'].flatMap((status) => [{ status }, { pipeline: 'p', status }])];
      for (const f of steps) await searchStepRows(capture, 'id, started_at', { ...window, ...f } as never);
      const requests = [{}, { pipeline: 'p' }, { status: 'completed' }, { pipeline: 'p', status: 'running' }, { businessKey: 'k' }, { test: true }, { test: false }];
      for (const f of requests) await searchRequestRows(capture, 'id, created_at', { ...window, ...f } as never);
      expect(seen).to.have.length(steps.length + requests.length);
      for (const q of seen) {
        const p = await plan(q);
        // A search on some index (never a full scan of the table).
        expect(p, q.sql).to.match(/(SEARCH|SCAN) (step_runs|requests) USING (COVERING )?INDEX/);
        expect(p, q.sql).to.not.match(/SCAN (step_runs|requests)(;|$)/);
      }
      // The partial search indexes are the ones used where the filter implies their condition.
      const failed = seen.find((q) => q.params.includes('failed') && !q.params.includes('p'))!;
      expect(await plan(failed)).to.include('ix_step_runs_search_status');
      for (const [status, index] of [['pending', 'ix_step_runs_due'], ['dispatched', 'ix_step_runs_lease']]) {
        for (const q of seen.filter((x) => x.params.includes(status))) expect(await plan(q), `${status}: the open runs only`).to.include(index);
      }
      const testOnly = seen.find((q) => q.sql.includes('test = 1'))!;
      expect(await plan(testOnly)).to.include('ix_requests_search_test');
      // By business key: the key's rows from the index it shares with the key's queue, then sorted.
      const byKey = seen.find((q) => q.sql.includes('business_key = ?'))!;
      expect(await plan(byKey)).to.include('ix_requests_key_hold (business_key=?)');
      // The attempts open in requests' rows that a step search merges in are read through the
      // index of those alone, never through a pipeline's whole history (at 1,000,000 step rows
      // that walk took 56–66 ms by pipeline, 0.4 ms so: docs/performance.md).
      seen.length = 0;
      for (const f of [{}, { pipeline: 'p' }, { pipeline: 'p', step: 's' }, { status: 'dispatched' }, { pipeline: 'p', status: 'waiting' }]) {
        await openRowRuns(capture, { ...window, ...f } as never);
      }
      expect(seen).to.have.length(5);
      for (const q of seen) expect(await plan(q), q.sql).to.include('SEARCH requests USING INDEX ix_requests_open_status (open_status=?)');
    } finally {
      await store.close();
    }
  });
});
