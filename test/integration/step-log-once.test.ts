/**
 * The step log written once per attempt (migration `1763800000370`, issue "Performance"): a
 * module attempt sent at once lives in its request's row while it is open and is inserted
 * into `step_runs` once, ended. On both dialects (MySQL: the per-commit and the bulk path),
 * this proves that readers see it as before (the request's runs, a run by id, the step
 * search), that the sweeps claim its lease and deadline once, and that no `step_runs` row is
 * updated on the way.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import type { RequestCommit, RequestRecord, StepRunRecord } from '../../src/model';
import { openDataSource } from '../../src/store/data-source';
import { cancelledRun, endedRun } from '../../src/store/rows';
import { SqlStore } from '../../src/store/store';
import { installGate, openGate, removeGate, type Gate } from '../fixtures/admission/gate';
import { startTestEngine, type TestEngine } from '../support/engine';
import { createMysqlDatabase } from '../support/mysql-db';
import { waitFor } from '../support/poll';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const ADMISSION = path.join(__dirname, '..', 'fixtures', 'admission');

const T0 = 1_700_000_000_000;
let seq = 0;
const nextId = (prefix: string): string => `${prefix}-${String(++seq).padStart(6, '0')}`;

function request(): RequestRecord {
  return {
    id: nextId('req'), pipelineId: 'p', version: 1, status: 'running', businessKey: null, idempotencyKey: null, mode: null,
    test: false, payload: { n: 1 }, error: null, joins: {}, stepCount: 1, rev: 0, releaseAt: null, createdAt: T0, updatedAt: T0, finishedAt: null,
  };
}

function attempt(req: RequestRecord, n: number, over: Partial<StepRunRecord> = {}): StepRunRecord {
  return {
    id: nextId('run'), requestId: req.id, pipelineId: 'p', stepId: `s${n}`, seq: n, attempt: 1, status: 'dispatched', kind: 'module',
    module: 'm', transport: 'http', params: { k: n }, output: null, error: null, causedBy: null, availableAt: null, leaseUntil: T0 + 60_000 + n,
    startedAt: T0 + n, finishedAt: null, durationMs: null, ...over,
  };
}

/** The commit that ends `open` (open in the row) with `output` and puts `next` (or nothing) in the row. */
function step(req: RequestRecord, rev: number, open: StepRunRecord, next: StepRunRecord | null, output: unknown = { from: open.stepId }): RequestCommit {
  const finishRun: NonNullable<RequestCommit['finishRun']> = { id: open.id, status: 'completed', output, finishedAt: open.startedAt + 5, durationMs: 5, inRow: true };
  return {
    requestId: req.id, expectRev: rev,
    request: { status: next ? 'running' : 'completed', error: null, joins: {}, stepCount: open.seq + (next ? 1 : 0), finishedAt: next ? null : T0 + 99, updatedAt: T0 + 10 * rev },
    moved: !next,
    finishRun, cancelRuns: [], insertRuns: next ? [next] : [], openRow: next, endedRows: [endedRun(open, finishRun)],
  };
}

function suite(name: 'sqlite' | 'mysql'): void {
  describe(`step log written once per attempt, on ${name}`, function () {
    this.timeout(60_000);
    let store: SqlStore;
    let url: string;
    let drop: (() => Promise<void>) | undefined;

    before(async () => {
      if (name === 'sqlite') url = `sqlite:${path.join(tmpDir('once'), 'once.db')}`;
      else {
        const db = await createMysqlDatabase('conveyor_once');
        drop = db.drop;
        url = db.url;
      }
      store = await SqlStore.open(url);
    });

    after(async () => {
      await store?.close();
      await drop?.();
      cleanupTmpDirs();
    });

    const logRows = (requestId: string): Promise<Array<{ id: string; status: string; output: string | null; finished_at: unknown }>> =>
      store.query('SELECT id, status, output, finished_at FROM step_runs WHERE request_id = ? ORDER BY seq', [requestId]);

    /** A started request whose first attempt is open in its row. */
    async function started(): Promise<{ req: RequestRecord; first: StepRunRecord }> {
      const req = request();
      const first = attempt(req, 1);
      expect(await store.write({ newRequests: [req], commits: [], newOpenRows: new Map([[req.id, first]]) })).to.deep.equal([]);
      return { req, first };
    }

    it('an open attempt is read from its request row, and inserted once, ended, with its output', async () => {
      const { req, first } = await started();
      expect(await logRows(req.id)).to.deep.equal([]);
      const runs = await store.listStepRuns(req.id);
      expect(runs).to.have.length(1);
      expect(runs[0]).to.deep.include({ id: first.id, status: 'dispatched', leaseUntil: first.leaseUntil, stepId: 's1', params: { k: 1 } });
      expect(await store.getStepRun(first.id, req.id)).to.deep.include({ id: first.id, status: 'dispatched' });
      expect(await store.getStepRun(first.id), 'not indexed by attempt id: found only with its request').to.equal(undefined);

      const second = attempt(req, 2);
      expect(await store.write({ newRequests: [], commits: [step(req, 0, first, second)] })).to.deep.equal([true]);
      const rows = await logRows(req.id);
      expect(rows.map((r) => [r.id, r.status, JSON.parse(String(r.output))])).to.deep.equal([[first.id, 'completed', { from: 's1' }]]);
      expect(Number(rows[0]!.finished_at)).to.equal(first.startedAt + 5);
      expect((await store.listStepRuns(req.id)).map((r) => [r.id, r.status])).to.deep.equal([[first.id, 'completed'], [second.id, 'dispatched']]);

      // The last step leaves the row without an attempt.
      expect(await store.write({ newRequests: [], commits: [step(req, 1, second, null)] })).to.deep.equal([true]);
      expect((await logRows(req.id)).map((r) => r.status)).to.deep.equal(['completed', 'completed']);
      expect(await store.query('SELECT open_run, open_status, open_lease FROM requests WHERE id = ?', [req.id])).to.deep.equal([{ open_run: null, open_status: null, open_lease: null }]);
      expect((await store.getRequest(req.id))!).to.include({ status: 'completed', rev: 2 });
    });

    it('a step that keeps the open status writes it only if the row still has it (migration 1763800000380)', async () => {
      // The usual step: dispatched → dispatched, the status left out of the UPDATE on SQLite.
      const a = await started();
      const a2 = attempt(a.req, 2);
      expect(await store.write({ newRequests: [], commits: [{ ...step(a.req, 0, a.first, a2), openStatusKept: true }] })).to.deep.equal([true]);
      expect(await store.query('SELECT open_status, open_lease FROM requests WHERE id = ?', [a.req.id])).to.deep.equal([{ open_status: 'dispatched', open_lease: a2.leaseUntil }]);
      expect((await store.listStepRuns(a.req.id)).map((r) => [r.id, r.status])).to.deep.equal([[a.first.id, 'completed'], [a2.id, 'dispatched']]);
      // A view that missed the row's move to waiting (a 202 taken meanwhile): the commit still
      // holds, and the row ends up with the new attempt's status, not the stale one.
      const b = await started();
      expect(await store.markWaiting(b.first.id, T0 + 1_000, b.req.id)).to.equal(true);
      const b2 = attempt(b.req, 2);
      expect(await store.write({ newRequests: [], commits: [{ ...step(b.req, 0, b.first, b2), openStatusKept: true }] })).to.deep.equal([true]);
      expect(await store.query('SELECT open_status, open_lease FROM requests WHERE id = ?', [b.req.id])).to.deep.equal([{ open_status: 'dispatched', open_lease: b2.leaseUntil }]);
      expect((await store.claimExpiredWaits(T0 + 2_000, 100)).filter((c) => c.requestId === b.req.id), 'no deadline is left behind').to.deep.equal([]);
    });

    it('a stale commit writes neither the ended attempt nor the next one; a cancel inserts it cancelled', async () => {
      const { req, first } = await started();
      const stale = step(req, 5, first, attempt(req, 2));
      expect(await store.write({ newRequests: [], commits: [stale] })).to.deep.equal([false]);
      expect(await logRows(req.id)).to.deep.equal([]);
      expect((await store.listStepRuns(req.id)).map((r) => r.id)).to.deep.equal([first.id]);

      const stop: RequestCommit = {
        requestId: req.id, expectRev: 0, moved: true,
        request: { status: 'stopped', error: null, joins: {}, stepCount: 1, finishedAt: T0 + 50, updatedAt: T0 + 50 },
        cancelRuns: [first.id], insertRuns: [], openRow: null, endedRows: [cancelledRun(first, T0 + 50)],
      };
      expect(await store.write({ newRequests: [], commits: [stop] })).to.deep.equal([true]);
      const rows = await logRows(req.id);
      expect(rows.map((r) => [r.id, r.status, Number(r.finished_at)])).to.deep.equal([[first.id, 'cancelled', T0 + 50]]);
    });

    it('a batch of steps of distinct requests (MySQL: the bulk path) ends and opens attempts in their rows', async () => {
      const seeds = await Promise.all([0, 1, 2, 3].map(() => started()));
      const next = seeds.map(({ req }) => attempt(req, 2));
      const answers = await store.write({ newRequests: [], commits: seeds.map(({ req, first }, i) => step(req, 0, first, next[i]!, { i })) });
      expect(answers).to.deep.equal([true, true, true, true]);
      for (const [i, { req, first }] of seeds.entries()) {
        expect((await logRows(req.id)).map((r) => [r.id, r.status, JSON.parse(String(r.output))])).to.deep.equal([[first.id, 'completed', { i }]]);
        expect((await store.listStepRuns(req.id)).map((r) => [r.id, r.status])).to.deep.equal([[first.id, 'completed'], [next[i]!.id, 'dispatched']]);
      }
      // One stale commit among them: the bulk path decides per commit.
      const mixed = seeds.map(({ req }, i) => step(req, i === 2 ? 0 : 1, next[i]!, null));
      expect(await store.write({ newRequests: [], commits: mixed })).to.deep.equal([true, true, false, true]);
      expect((await logRows(seeds[2]!.req.id)).map((r) => r.status)).to.deep.equal(['completed']);
      expect((await logRows(seeds[3]!.req.id)).map((r) => r.status)).to.deep.equal(['completed', 'completed']);
    });

    it('the sweeps claim an expired lease and an expired callback deadline once; a handed-back lease expires at once', async () => {
      const { req, first } = await started();
      const now = first.leaseUntil! + 1;
      const claimed = await store.claimExpiredLeases(now, () => now + 30_000, 100);
      expect(claimed.filter((c) => c.requestId === req.id)).to.deep.equal([{ id: first.id, requestId: req.id }]);
      expect((await store.claimExpiredLeases(now, () => now + 30_000, 100)).filter((c) => c.requestId === req.id)).to.deep.equal([]);
      expect((await store.listStepRuns(req.id))[0]!.leaseUntil).to.equal(now + 30_000);

      expect(await store.markWaiting(first.id, now + 5, req.id)).to.equal(true);
      expect(await store.markWaiting(first.id, now + 5, req.id), 'only a dispatched attempt starts to wait').to.equal(false);
      expect(await store.markWaiting('no-such-run', now + 5, req.id)).to.equal(false);
      expect((await store.listStepRuns(req.id))[0]).to.deep.include({ status: 'waiting', leaseUntil: now + 5 });
      const woken = await store.claimExpiredWaits(now + 6, 100);
      expect(woken.filter((c) => c.requestId === req.id)).to.deep.equal([{ id: first.id, requestId: req.id }]);
      expect((await store.claimExpiredWaits(now + 6, 100)).filter((c) => c.requestId === req.id)).to.deep.equal([]);

      const other = await started();
      await store.expireLeases([], [{ id: first.id, requestId: other.req.id }]);
      expect((await store.listStepRuns(other.req.id))[0]!.leaseUntil, 'another attempt than the row holds: untouched').to.equal(other.first.leaseUntil);
      await store.expireLeases([], [{ id: other.first.id, requestId: other.req.id }]);
      expect((await store.listStepRuns(other.req.id))[0]!.leaseUntil).to.equal(0);
    });

    it('undoing migrations 1763800000390, 1763800000380 and 1763800000370 puts back the lease index, then the attempts open in rows into the step log', async () => {
      const { req, first } = await started();
      const ds = await openDataSource(url);
      try {
        await ds.undoLastMigration({ transaction: 'each' });
        if (name === 'mysql') {
          const indexes = (await ds.query('SHOW INDEX FROM requests') as Array<{ Key_name: string }>).map((r) => r.Key_name);
          expect(indexes).to.include('ix_requests_open_lease').and.not.include('ix_requests_open_status').and.not.include('ix_requests_open_wait');
          expect((await ds.query('SHOW COLUMNS FROM requests') as Array<{ Field: string }>).map((c) => c.Field)).to.not.include('open_wait_lease');
        }
        await ds.undoLastMigration({ transaction: 'each' });
        if (name === 'sqlite') {
          const indexes = (await ds.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'") as Array<{ name: string }>).map((r) => r.name);
          expect(indexes).to.include('ix_requests_open_lease').and.not.include('ix_requests_open_status').and.not.include('ix_requests_open_wait');
        }
        await ds.undoLastMigration({ transaction: 'each' });
        const rows = await ds.query('SELECT id, status, step_id, lease_until FROM step_runs WHERE request_id = ?', [req.id]) as Array<Record<string, unknown>>;
        expect(rows.map((r) => [r.id, r.status, r.step_id, Number(r.lease_until)])).to.deep.equal([[first.id, 'dispatched', 's1', first.leaseUntil]]);
        const columns = name === 'sqlite'
          ? (await ds.query("SELECT name FROM pragma_table_info('requests')") as Array<{ name: string }>).map((c) => c.name)
          : (await ds.query('SHOW COLUMNS FROM requests') as Array<{ Field: string }>).map((c) => c.Field);
        expect(columns).to.not.include.members(['open_run']);
        expect(columns).to.not.include.members(['open_status']);
        // And forward again: the schema is whole, the attempt stays in the log where it now is.
        await ds.runMigrations({ transaction: 'each' });
      } finally {
        await ds.destroy();
      }
      expect((await store.listStepRuns(req.id)).map((r) => [r.id, r.status])).to.deep.equal([[first.id, 'dispatched']]);
    });

    it('the step search merges attempts open in rows with the log, in order, page by page', async () => {
      const req = request();
      req.pipelineId = `search-${name}`;
      const logged = [1, 3, 5].map((n) => ({ ...attempt(req, n), pipelineId: req.pipelineId, status: 'completed' as const, finishedAt: T0 + n + 1, durationMs: 1 }));
      await store.write({ newRequests: [req], commits: [] });
      await store.write({ newRequests: [], commits: [{ requestId: req.id, expectRev: 0, request: { status: 'running', error: null, joins: {}, stepCount: 3, finishedAt: null, updatedAt: T0 }, cancelRuns: [], insertRuns: logged }] });
      const others = [2, 4].map(() => request());
      const open = others.map((r, i) => ({ ...attempt(r, 2 * i + 2), pipelineId: req.pipelineId, startedAt: T0 + 2 * i + 2 }));
      for (const r of others) r.pipelineId = req.pipelineId;
      await store.write({ newRequests: others, commits: [], newOpenRows: new Map(others.map((r, i) => [r.id, open[i]!])) });

      const seen: string[] = [];
      let after: { t: number; id: string } | undefined;
      for (let page = 0; page < 5; page++) {
        const found = await store.searchSteps({ pipeline: req.pipelineId, limit: 2, after });
        seen.push(...found.items.map((r) => `${r.startedAt - T0}:${r.status}`));
        if (!found.next) break;
        after = found.next;
      }
      expect(seen).to.deep.equal(['5:completed', '4:dispatched', '3:completed', '2:dispatched', '1:completed']);
      expect((await store.searchSteps({ pipeline: req.pipelineId, status: 'dispatched', limit: 10 })).items.map((r) => r.startedAt - T0)).to.deep.equal([4, 2]);
      expect((await store.searchSteps({ pipeline: req.pipelineId, step: 's4', limit: 10 })).items.map((r) => r.id)).to.deep.equal([open[1]!.id]);
      expect((await store.searchSteps({ pipeline: req.pipelineId, status: 'completed', limit: 10 })).items).to.have.length(3);
      const labels = await store.runLabels([open[0]!.id, logged[0]!.id], [others[0]!.id]);
      expect(Object.fromEntries(labels)).to.deep.equal({ [open[0]!.id]: { pipeline: req.pipelineId, transport: 'http' }, [logged[0]!.id]: { pipeline: req.pipelineId, transport: 'http' } });
    });
  });
}

suite('sqlite');
suite('mysql');

describe('step log written once per attempt, through the engine (SQLite)', function () {
  this.timeout(30_000);
  let t: TestEngine;
  let gate: Gate;

  before(async () => {
    gate = installGate();
    t = await startTestEngine({ pipelinesDir: path.join(ADMISSION, 'pipelines'), modulesDir: path.join(ADMISSION, 'modules'), listen: false });
    // Counts every UPDATE of a step log row from here on.
    await t.engine.store.query('CREATE TABLE run_updates (n INTEGER NOT NULL)');
    await t.engine.store.query('CREATE TRIGGER count_run_updates AFTER UPDATE ON step_runs BEGIN INSERT INTO run_updates (n) VALUES (1); END');
    // Counts every UPDATE that names a request's open status without changing it: SQLite then
    // rewrites its entry in ix_requests_open_status for nothing (migration 1763800000380).
    await t.engine.store.query('CREATE TABLE open_status_kept (n INTEGER NOT NULL)');
    await t.engine.store.query('CREATE TRIGGER count_open_status_kept AFTER UPDATE OF open_status ON requests WHEN old.open_status IS new.open_status BEGIN INSERT INTO open_status_kept (n) VALUES (1); END');
  });

  after(async () => {
    openGate(gate);
    await t?.close();
    removeGate(gate);
  });

  it('a running step is shown as dispatched while no step_runs row exists; each attempt is then inserted once and never updated', async () => {
    const { id } = await t.engine.intake.submit({ pipelineId: 'admission', payload: { i: 1 } });
    await waitFor('the first step running', () => (gate.running === 1 ? true : undefined), 10_000, 10);
    expect(await t.engine.store.query('SELECT id FROM step_runs WHERE request_id = ?', [id])).to.deep.equal([]);
    const shown = (await t.api<{ currentSteps: Array<{ stepId: string; status: string }> }>('GET', `/api/requests/${id}`, { key: t.keys.admin })).body;
    expect(shown.currentSteps.map((r) => [r.stepId, r.status])).to.deep.equal([['held', 'dispatched']]);
    const steps = (await t.api<{ items: Array<{ stepId: string; status: string }> }>('GET', `/api/requests/${id}/steps`, { key: t.keys.admin })).body;
    expect(steps.items.map((r) => [r.stepId, r.status])).to.deep.equal([['held', 'dispatched']]);
    const searched = (await t.api<{ items: Array<{ requestId: string; status: string }> }>('GET', '/api/steps?pipeline=admission&status=dispatched', { key: t.keys.admin })).body;
    expect(searched.items.filter((r) => r.requestId === id).map((r) => r.status)).to.deep.equal(['dispatched']);

    openGate(gate);
    expect(await t.engine.waitForEnd(id, 10_000)).to.equal('completed');
    const rows = await t.engine.store.query<{ step_id: string; status: string }>('SELECT step_id, status FROM step_runs WHERE request_id = ? ORDER BY seq', [id]);
    expect(rows.map((r) => [r.step_id, r.status])).to.deep.equal([['held', 'completed'], ['after', 'completed']]);
    expect(await t.engine.store.query('SELECT COUNT(*) AS n FROM run_updates'), 'no step log row was updated').to.deep.equal([{ n: 0 }]);
    // The step that ended `held` and sent `after` kept the row's open status `dispatched`: it did not name it.
    expect(await t.engine.store.query('SELECT COUNT(*) AS n FROM open_status_kept'), 'no commit rewrote an unchanged open status').to.deep.equal([{ n: 0 }]);
  });
});
