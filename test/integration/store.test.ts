/**
 * The SQL store, the same suite on both dialects: SQLite (a temp file) and MariaDB (a fresh
 * database per run, dropped afterwards). What it proves: the schema migrates idempotently,
 * a guarded commit applies everything or nothing, a step run can be finished only once (the
 * exactly-once net), group commit batches and resolves every caller, and values round-trip.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { createConnection } from 'mysql2/promise';
import type { RequestCommit, RequestRecord, StepRunRecord } from '../../src/model';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS, SchemaAheadError, unknownMigrations } from '../../src/store/data-source';
import { migrateDatabase } from '../../src/store/migrate';
import { GroupCommitter } from '../../src/store/group-commit';
import { MysqlExecutor } from '../../src/store/sql-executor';
import { SqlStore } from '../../src/store/store';
import { requireMysql } from '../support/services';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

interface Target {
  name: 'sqlite' | 'mysql';
  /** Makes a fresh, empty database and returns its URL. */
  create(): Promise<string>;
  /** Drops what `create` made. */
  destroy(): Promise<void>;
}

const sqliteTarget = (): Target => ({
  name: 'sqlite',
  async create() {
    return `sqlite:${path.join(tmpDir('store'), 'store.db')}`;
  },
  async destroy() {
    cleanupTmpDirs();
  },
});

const mysqlTarget = (): Target => {
  let admin: string | undefined;
  const databases: string[] = [];
  return {
    name: 'mysql',
    async create() {
      admin ??= await requireMysql();
      const db = `conveyor_test_${randomBytes(6).toString('hex')}`;
      const conn = await createConnection({ uri: admin });
      try {
        await conn.query(`CREATE DATABASE \`${db}\``);
      } finally {
        await conn.end();
      }
      databases.push(db);
      const url = new URL(admin);
      url.pathname = `/${db}`;
      return url.toString();
    },
    async destroy() {
      if (!admin || databases.length === 0) return;
      const conn = await createConnection({ uri: admin });
      try {
        for (const db of databases.splice(0)) await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      } finally {
        await conn.end();
      }
    },
  };
};

let seq = 0;
/** Ids that sort in creation order, like the engine's UUIDv7 ids. */
const nextId = (prefix: string): string => `${prefix}-${String(++seq).padStart(6, '0')}`;

function request(over: Partial<RequestRecord> = {}): RequestRecord {
  const now = 1_700_000_000_000;
  return {
    id: nextId('req'), pipelineId: 'p', version: 1, status: 'running', businessKey: null, idempotencyKey: null, mode: null,
    test: false, payload: { n: 1 }, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: now, createdAt: now, updatedAt: now,
    finishedAt: null, ...over,
  };
}

function run(requestId: string, seqNo: number, over: Partial<StepRunRecord> = {}): StepRunRecord {
  return {
    id: nextId('run'), requestId, pipelineId: 'p', stepId: `s${seqNo}`, seq: seqNo, attempt: 1, status: 'dispatched', kind: 'module',
    module: 'm', transport: 'event', params: { k: seqNo }, output: null, error: null, causedBy: null, availableAt: null,
    startedAt: 1_700_000_000_000 + seqNo, finishedAt: null, durationMs: null, ...over,
  };
}

/** A commit that finishes `finish` (if given) and inserts `insert`. */
function commit(req: { id: string }, expectRev: number, over: Partial<RequestCommit> & { finish?: string; output?: unknown } = {}): RequestCommit {
  const { finish, output, ...rest } = over;
  return {
    requestId: req.id,
    expectRev,
    request: { status: 'running', error: null, joins: {}, stepCount: expectRev + 1, finishedAt: null, updatedAt: 1_700_000_001_000 + expectRev },
    finishRun: finish ? { id: finish, status: 'completed', output: output ?? { done: true }, finishedAt: 1_700_000_002_000, durationMs: 12 } : undefined,
    cancelRuns: [],
    insertRuns: [],
    ...rest,
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

function storeSuite(make: () => Target): void {
  const target = make();

  describe(`SqlStore on ${target.name}`, function () {
    this.timeout(60_000);
    let url: string;
    let store: SqlStore;

    /** A running request with one dispatched run, as the supervisor leaves it after start. */
    async function seeded(): Promise<{ req: RequestRecord; first: StepRunRecord }> {
      const req = request();
      await store.write({ newRequests: [req], commits: [] });
      const first = run(req.id, 1);
      expect(await store.write({ newRequests: [], commits: [commit(req, 0, { insertRuns: [first] })] })).to.deep.equal([true]);
      return { req, first };
    }

    const runStatus = async (id: string): Promise<string | undefined> =>
      (await store.query<{ status: string }>('SELECT status FROM step_runs WHERE id = ?', [id]))[0]?.status;

    before(async () => {
      url = await target.create();
      store = await SqlStore.open(url);
    });

    after(async () => {
      await store?.close();
      await target.destroy();
    });

    it('migrations create the schema, and opening again is idempotent', async () => {
      expect(store.dialect).to.equal(target.name);
      const tables =
        target.name === 'sqlite'
          ? (await store.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")).map((r) => r.name)
          : (await store.query<Record<string, string>>('SHOW TABLES')).map((r) => Object.values(r)[0]!);
      expect(tables).to.include.members(['pipeline_versions', 'requests', 'step_runs', 'api_keys', 'migrations']);
      const migrations = await store.query<{ name: string }>('SELECT name FROM migrations ORDER BY timestamp');
      const expected = MIGRATIONS.map((M) => new M().name);
      expect(expected[0]).to.equal('Initial1763800000000');
      expect(migrations.map((m) => m.name)).to.deep.equal(expected);

      const req = request();
      await store.write({ newRequests: [req], commits: [] });
      await store.close();
      store = await SqlStore.open(url);
      const again = await SqlStore.open(url);
      try {
        expect((await again.query('SELECT name FROM migrations')).length).to.equal(MIGRATIONS.length);
        expect(await again.getRequest(req.id)).to.deep.equal(req);
      } finally {
        await again.close();
      }
      expect(await store.getRequest(req.id)).to.deep.equal(req);
    });

    it('refuses a database a newer release migrated, naming the migration, and changes nothing', async () => {
      const aheadUrl = await target.create();
      const ahead = await SqlStore.open(aheadUrl);
      const newest = new (MIGRATIONS.at(-1)!)().name!;
      try {
        // A newer release's migration on top, and this release's newest taken back off: opening
        // must neither start on the newer schema nor apply its own pending migration.
        await ahead.query('INSERT INTO migrations (timestamp, name) VALUES (?, ?)', [1_899_999_999_999, 'FromTheFuture1899999999999']);
        await ahead.query('DELETE FROM migrations WHERE name = ?', [newest]);
      } finally {
        await ahead.close();
      }
      const err = await rejection(SqlStore.open(aheadUrl));
      expect(err).to.be.instanceOf(SchemaAheadError);
      expect(err.message).to.include('newer Conveyor release').and.include('FromTheFuture1899999999999').and.include(`its newest is ${newest}`);
      expect((err as SchemaAheadError).unknown).to.deep.equal(['FromTheFuture1899999999999']);
      const cli = await rejection(migrateDatabase(aheadUrl));
      expect(cli).to.be.instanceOf(SchemaAheadError);
      const ds = new DataSource(dataSourceOptions(aheadUrl));
      await ds.initialize();
      try {
        const names = ((await ds.query('SELECT name FROM migrations')) as Array<{ name: string }>).map((r) => r.name);
        expect(names).to.have.length(MIGRATIONS.length).and.include('FromTheFuture1899999999999').and.not.include(newest);
        expect(await unknownMigrations(ds)).to.deep.equal(['FromTheFuture1899999999999']);
      } finally {
        await ds.destroy();
      }
    });

    it('ensurePipelineVersion: 1, then the same 1 for the same hash, 2 for a new hash', async () => {
      const id = `pv-${target.name}`;
      expect(await store.ensurePipelineVersion(id, 'a'.repeat(64), '{"v":1}')).to.equal(1);
      expect(await store.ensurePipelineVersion(id, 'a'.repeat(64), '{"v":1}')).to.equal(1);
      expect(await store.ensurePipelineVersion(id, 'b'.repeat(64), '{"v":2}')).to.equal(2);
      expect(await store.ensurePipelineVersion(id, 'a'.repeat(64), '{"v":1}')).to.equal(1);
      expect(await store.ensurePipelineVersion(`${id}-other`, 'b'.repeat(64), '{"v":2}')).to.equal(1);
      expect(await store.getPipelineVersion(id, 2)).to.deep.equal({ hash: 'b'.repeat(64), definition: '{"v":2}' });
      expect(await store.getPipelineVersion(id, 3)).to.equal(undefined);
      const versions = await store.listPipelineVersions(id);
      expect(versions.map((v) => [v.version, v.hash])).to.deep.equal([[1, 'a'.repeat(64)], [2, 'b'.repeat(64)]]);
      expect(versions[0]!.createdAt).to.be.a('number');
    });

    it('write({ newRequests }) inserts requests that read back identical', async () => {
      const a = request({ status: 'buffered', businessKey: 'bk-1', idempotencyKey: 'idem-1', mode: 'auto', test: true, releaseAt: null, payload: { nested: { list: [1, 'two', null, true] } } });
      const b = request({ error: { stepId: 's', runId: 'r', attempt: 2, code: 'X', message: 'm', details: { d: 1 } }, joins: { j: ['x'] }, stepCount: 4, rev: 7, finishedAt: 1_700_000_009_000, status: 'error_stop' });
      expect(await store.write({ newRequests: [a, b], commits: [] })).to.deep.equal([]);
      expect(await store.getRequest(a.id)).to.deep.equal(a);
      expect(await store.getRequest(b.id)).to.deep.equal(b);
      expect(await store.getRequest('no-such-request')).to.equal(undefined);
    });

    it('a commit with the right rev applies everything and bumps rev', async () => {
      const { req, first } = await seeded();
      const second = run(req.id, 2, { causedBy: first.id });
      const third = run(req.id, 3, { causedBy: first.id, status: 'pending', availableAt: 1_700_000_005_000 });
      const c = commit(req, 1, { finish: first.id, output: { answer: 42 }, insertRuns: [second, third], request: { status: 'running', error: null, joins: { j: ['s1'] }, stepCount: 3, finishedAt: null, updatedAt: 1_700_000_003_000 } });
      expect(await store.write({ newRequests: [], commits: [c] })).to.deep.equal([true]);

      const got = await store.getRequest(req.id);
      expect(got).to.deep.equal({ ...req, rev: 2, stepCount: 3, joins: { j: ['s1'] }, updatedAt: 1_700_000_003_000 });
      const runs = await store.listStepRuns(req.id);
      expect(runs.map((r) => r.id)).to.deep.equal([first.id, second.id, third.id]);
      // deep.include: the store may add columns (such as a lease) that these records leave out.
      // The store derives the duration from the row's own times (the step log stays truthful).
      expect(runs[0]).to.deep.include({ ...first, status: 'completed', output: { answer: 42 }, finishedAt: 1_700_000_002_000, durationMs: 1_700_000_002_000 - first.startedAt });
      expect(runs[1]).to.deep.include(second);
      expect(runs[2]).to.deep.include(third);
    });

    it('a commit that ends the request cancels open runs and records the error', async () => {
      const { req, first } = await seeded();
      const other = run(req.id, 2);
      expect(await store.write({ newRequests: [], commits: [commit(req, 1, { insertRuns: [other] })] })).to.deep.equal([true]);
      const error = { stepId: 's1', runId: first.id, attempt: 1, code: 'CONVEYOR_ERR_NON_RETRYABLE', message: 'nope' };
      const c: RequestCommit = {
        ...commit(req, 2),
        request: { status: 'error_stop', error, joins: {}, stepCount: 2, finishedAt: 1_700_000_004_000, updatedAt: 1_700_000_004_000 },
        finishRun: { id: first.id, status: 'failed', error: { code: 'X', message: 'nope', retryable: false }, finishedAt: 1_700_000_004_000, durationMs: 3 },
        cancelRuns: [other.id],
      };
      expect(await store.write({ newRequests: [], commits: [c] })).to.deep.equal([true]);
      const got = await store.getRequest(req.id);
      expect(got).to.include({ status: 'error_stop', rev: 3, finishedAt: 1_700_000_004_000 });
      expect(got!.error).to.deep.equal(error);
      const runs = await store.listStepRuns(req.id);
      expect(runs.map((r) => r.status)).to.deep.equal(['failed', 'cancelled']);
      expect(runs[0]!.error).to.deep.equal({ code: 'X', message: 'nope', retryable: false });
      expect(runs[1]!.finishedAt).to.equal(1_700_000_004_000);
    });

    it('a commit with a stale rev is refused and writes nothing', async () => {
      const { req, first } = await seeded();
      const before = await store.getRequest(req.id);
      const inserted = run(req.id, 2);
      const stale = commit(req, 0, { finish: first.id, insertRuns: [inserted], request: { status: 'completed', error: null, joins: { x: ['y'] }, stepCount: 9, finishedAt: 5, updatedAt: 5 } });
      expect(await store.write({ newRequests: [], commits: [stale] })).to.deep.equal([false]);
      expect(await store.getRequest(req.id)).to.deep.equal(before);
      expect(await runStatus(first.id)).to.equal('dispatched');
      expect(await runStatus(inserted.id)).to.equal(undefined);
      expect((await store.listStepRuns(req.id)).map((r) => r.id)).to.deep.equal([first.id]);
    });

    it('admin alerts are written with the error_stop commit that holds, in the single and the bulk path, and claimed once', async () => {
      const errorStop = (req: RequestRecord, first: StepRunRecord, rev: number): RequestCommit => commit(req, rev, {
        finish: first.id,
        request: { status: 'error_stop', error: { stepId: 's1', runId: first.id, attempt: 1, code: 'X', message: 'boom' }, joins: {}, stepCount: 1, finishedAt: 7, updatedAt: 7 },
        alerts: [{ id: nextId('alert'), requestId: req.id, pipelineId: 'p', channel: 'webhook', createdAt: 7 }],
      });
      const one = await seeded();
      const stale = await seeded();
      expect(await store.write({ newRequests: [], commits: [errorStop(one.req, one.first, 1), errorStop(stale.req, stale.first, 0)] })).to.deep.equal([true, false]);
      const many = await Promise.all([seeded(), seeded(), seeded()]);
      expect(await store.write({ newRequests: [], commits: many.map((m) => errorStop(m.req, m.first, 1)) })).to.deep.equal([true, true, true]);
      for (const r of [one, ...many]) expect((await store.alerts.listForRequest(r.req.id)).map((a) => [a.channel, a.status])).to.deep.equal([['webhook', 'pending']]);
      expect(await store.alerts.listForRequest(stale.req.id), 'a refused commit writes no alert').to.deep.equal([]);
      const first = await store.alerts.claimForRequest(one.req.id, ['webhook'], 10, 20_000);
      expect(first).to.have.length(1);
      expect(await store.alerts.claimForRequest(one.req.id, ['webhook'], 10, 20_000), 'leased').to.deep.equal([]);
      expect(await store.alerts.settle(first[0]!, { outcome: 'retry', error: 'down', nextDue: 50, now: 11 })).to.equal(true);
      expect(await store.alerts.settle(first[0]!, { outcome: 'delivered', error: null, nextDue: 0, now: 12 }), 'a stale lease').to.equal(false);
      const again = await store.alerts.claimForRequest(one.req.id, ['webhook'], 60, 20_000);
      expect(again.map((c) => c.attempts)).to.deep.equal([1]);
      expect(await store.alerts.settle(again[0]!, { outcome: 'delivered', error: null, nextDue: 0, now: 61 })).to.equal(true);
      expect((await store.alerts.listForRequest(one.req.id)).map((a) => [a.status, a.attempts, a.deliveredAt])).to.deep.equal([['delivered', 2, 61]]);
      expect(await store.alerts.claimDue(['module:other'], Number.MAX_SAFE_INTEGER, 0, 10), 'another channel').to.deep.equal([]);
    });

    it('a refused commit does not stop the other commits or new requests of its batch', async () => {
      const x = await seeded();
      const y = await seeded();
      const fresh = request();
      const yRun = run(y.req.id, 2);
      const res = await store.write({
        newRequests: [fresh],
        commits: [commit(x.req, 0, { finish: x.first.id }), commit(y.req, 1, { finish: y.first.id, insertRuns: [yRun] })],
      });
      expect(res).to.deep.equal([false, true]);
      expect(await runStatus(x.first.id)).to.equal('dispatched');
      expect(await runStatus(y.first.id)).to.equal('completed');
      expect(await runStatus(yRun.id)).to.equal('dispatched');
      expect(await store.getRequest(fresh.id)).to.deep.equal(fresh);
    });

    it('finishRun on an already-completed run aborts the whole batch (exactly-once net)', async () => {
      const { req, first } = await seeded();
      const done = commit(req, 1, { finish: first.id, output: { once: true } });
      expect(await store.write({ newRequests: [], commits: [done] })).to.deep.equal([true]);
      const afterFirst = await store.getRequest(req.id);

      // A second result for the same run, with a rev that matches (so the guard holds): the
      // run update finds no open run and the whole transaction must roll back.
      const other = await seeded();
      const otherBefore = await store.getRequest(other.req.id);
      const fresh = request();
      const dupRun = run(req.id, 2);
      const otherRun = run(other.req.id, 2);
      const err = await rejection(store.write({
        newRequests: [fresh],
        commits: [
          commit(other.req, 1, { finish: other.first.id, insertRuns: [otherRun] }),
          commit(req, 2, { finish: first.id, output: { twice: true }, insertRuns: [dupRun] }),
        ],
      }));
      expect(err.message).to.match(/expected 1 row\(s\) changed, got 0/);
      expect(await store.getRequest(req.id)).to.deep.equal(afterFirst);
      expect((await store.listStepRuns(req.id)).map((r) => [r.id, r.status, r.output])).to.deep.equal([[first.id, 'completed', { once: true }]]);
      expect(await store.getRequest(other.req.id)).to.deep.equal(otherBefore);
      expect(await runStatus(other.first.id)).to.equal('dispatched');
      expect(await runStatus(otherRun.id)).to.equal(undefined);
      expect(await store.getRequest(fresh.id)).to.equal(undefined);
    });

    it('a batch of commits of distinct requests (MySQL: the bulk path) goes in one query when every commit holds, and decides per commit when one does not', async () => {
      const sent: number[] = [];
      const proto = MysqlExecutor.prototype as unknown as { sendAll(stmts: unknown[], o?: unknown): Promise<boolean> };
      const original = proto.sendAll;
      proto.sendAll = function (this: unknown, stmts: unknown[], o?: unknown) {
        sent.push(stmts.length);
        return original.call(this, stmts, o);
      };
      try {
        const seeds = [await seeded(), await seeded(), await seeded(), await seeded()];
        const next = seeds.map(({ req }) => run(req.id, 2));
        const fresh = request();
        sent.length = 0;
        const all = await store.write({ newRequests: [fresh], commits: seeds.map(({ req, first }, i) => commit(req, 1, { finish: first.id, insertRuns: [next[i]!] })) });
        expect(all).to.deep.equal([true, true, true, true]);
        if (target.name === 'mysql') expect(sent, 'one multi-statement query for the whole batch').to.have.length(1);
        for (const [i, { req, first }] of seeds.entries()) {
          expect((await store.getRequest(req.id))!.rev).to.equal(2);
          expect(await runStatus(first.id)).to.equal('completed');
          expect(await runStatus(next[i]!.id)).to.equal('dispatched');
        }
        expect(await store.getRequest(fresh.id)).to.deep.equal(fresh);

        // The second commit is stale: the one-query try is rolled back whole, then each commit is decided on its own.
        const third = seeds.map(({ req }) => run(req.id, 3));
        const before = await store.getRequest(seeds[1]!.req.id);
        const mixed = seeds.map(({ req }, i) => commit(req, i === 1 ? 0 : 2, { finish: next[i]!.id, insertRuns: [third[i]!] }));
        sent.length = 0;
        expect(await store.write({ newRequests: [], commits: mixed })).to.deep.equal([true, false, true, true]);
        if (target.name === 'mysql') expect(sent).to.have.length(1);
        expect(await store.getRequest(seeds[1]!.req.id)).to.deep.equal(before);
        expect(await runStatus(next[1]!.id)).to.equal('dispatched');
        expect(await runStatus(third[1]!.id)).to.equal(undefined);
        for (const i of [0, 2, 3]) {
          expect((await store.getRequest(seeds[i]!.req.id))!.rev).to.equal(3);
          expect(await runStatus(next[i]!.id)).to.equal('completed');
          expect(await runStatus(third[i]!.id)).to.equal('dispatched');
        }

        // A commit whose rev holds but whose run is already closed aborts the whole batch, as in the per-commit path.
        const closed = commit(seeds[0]!.req, 3, { finish: next[0]!.id });
        const others = [2, 3].map((i) => commit(seeds[i]!.req, 3, { finish: third[i]!.id }));
        const beforeAll = await Promise.all(seeds.map(({ req }) => store.getRequest(req.id)));
        const err = await rejection(store.write({ newRequests: [], commits: [closed, ...others] }));
        expect(err.message).to.match(/expected 3 open step run\(s\) closed, got 2|expected 1 row\(s\) changed, got 0/);
        expect(await Promise.all(seeds.map(({ req }) => store.getRequest(req.id)))).to.deep.equal(beforeAll);
        for (const i of [2, 3]) expect(await runStatus(third[i]!.id)).to.equal('dispatched');
      } finally {
        proto.sendAll = original;
      }
    });

    it('a commit to a request whose row is gone is refused in a bulk batch, and no row is made for it', async () => {
      const seeds = [await seeded(), await seeded(), await seeded()];
      const gone = seeds[1]!.req;
      await store.query('DELETE FROM step_runs WHERE request_id = ?', [gone.id]);
      await store.query('DELETE FROM requests WHERE id = ?', [gone.id]);
      const next = seeds.map(({ req }) => run(req.id, 2));
      // The gone request's commit closes no run and inserts none: only its request row can refuse it.
      const answers = await store.write({
        newRequests: [], commits: seeds.map(({ req, first }, i) => (i === 1 ? commit(req, 1) : commit(req, 1, { finish: first.id, insertRuns: [next[i]!] }))),
      });
      expect(answers).to.deep.equal([true, false, true]);
      expect(await store.getRequest(gone.id)).to.equal(undefined);
      const [{ n }] = await store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM requests WHERE id = ? OR pipeline_id = ?', [gone.id, '']);
      expect(Number(n)).to.equal(0);
      for (const i of [0, 2]) expect((await store.getRequest(seeds[i]!.req.id))!.rev).to.equal(2);
    });

    it('two commits for the same request in one batch apply in order', async () => {
      // Two parallel branches are open; each result is one commit, both handed in together.
      const { req, first } = await seeded();
      const branch = run(req.id, 2, { stepId: 'branch' });
      expect(await store.write({ newRequests: [], commits: [commit(req, 1, { insertRuns: [branch] })] })).to.deep.equal([true]);
      const afterFirst = run(req.id, 3, { causedBy: first.id });
      const afterBranch = run(req.id, 4, { causedBy: branch.id });
      const c1 = commit(req, 2, { finish: first.id, output: { from: 'first' }, insertRuns: [afterFirst] });
      const c2 = commit(req, 3, { finish: branch.id, output: { from: 'branch' }, insertRuns: [afterBranch] });
      const unrelated = await seeded();
      // The unrelated request sorts after `req`; it is handed in first to show the order is kept per request.
      expect(await store.write({ newRequests: [], commits: [commit(unrelated.req, 1), c1, c2] })).to.deep.equal([true, true, true]);
      expect((await store.getRequest(req.id))!.rev).to.equal(4);
      expect((await store.getRequest(req.id))!.stepCount).to.equal(4);
      expect((await store.listStepRuns(req.id)).map((r) => [r.seq, r.status])).to.deep.equal([[1, 'completed'], [2, 'completed'], [3, 'dispatched'], [4, 'dispatched']]);
      expect((await store.getRequest(unrelated.req.id))!.rev).to.equal(2);

      // Reversed: the commit expecting rev 5 comes first and is refused; the order is not "fixed" by rev.
      const x1 = run(req.id, 5);
      const x2 = run(req.id, 6);
      const res = await store.write({ newRequests: [], commits: [commit(req, 5, { finish: afterBranch.id, insertRuns: [x2] }), commit(req, 4, { finish: afterFirst.id, insertRuns: [x1] })] });
      expect(res).to.deep.equal([false, true]);
      expect((await store.listStepRuns(req.id)).map((r) => [r.seq, r.status])).to.deep.equal([[1, 'completed'], [2, 'completed'], [3, 'completed'], [4, 'dispatched'], [5, 'dispatched']]);

      // Two commits from the same rev: the first wins, the second is refused and inserts nothing.
      const y1 = run(req.id, 6);
      const y2 = run(req.id, 7);
      const same = await store.write({ newRequests: [], commits: [commit(req, 5, { finish: afterBranch.id, insertRuns: [y1] }), commit(req, 5, { finish: afterBranch.id, insertRuns: [y2] })] });
      expect(same).to.deep.equal([true, false]);
      expect((await store.listStepRuns(req.id)).map((r) => r.id)).to.deep.equal([first.id, branch.id, afterFirst.id, afterBranch.id, x1.id, y1.id]);
    });

    it('GroupCommitter batches many concurrent commits into few transactions and resolves each', async () => {
      const N = 300;
      const reqs = Array.from({ length: N }, () => request());
      const firsts = reqs.map((r) => run(r.id, 1));
      const committer = new GroupCommitter(store);
      await Promise.all(reqs.map((r) => committer.insertRequest(r)));
      const results = await Promise.all([
        ...reqs.map((r, i) => committer.commit(commit(r, 0, { insertRuns: [firsts[i]!] }))),
        committer.commit(commit(reqs[0]!, 0)), // same rev as the first: refused
      ]);
      expect(results.slice(0, N).every((ok) => ok === true)).to.equal(true);
      expect(results[N]).to.equal(false);
      const finishes = await Promise.all(reqs.map((r, i) => committer.commit(commit(r, 1, { finish: firsts[i]!.id }))));
      expect(finishes.every((ok) => ok)).to.equal(true);
      await committer.drain();
      expect(committer.stats.items).to.equal(3 * N + 1);
      expect(committer.stats.batches).to.be.at.most(12);
      expect(committer.stats.batches * 20).to.be.lessThan(committer.stats.items);
      const completed = await store.query<{ n: unknown }>(
        `SELECT COUNT(*) AS n FROM step_runs WHERE status = 'completed' AND request_id IN (${reqs.map(() => '?').join(',')})`, reqs.map((r) => r.id));
      expect(Number(completed[0]!.n)).to.equal(N);
    });

    it('GroupCommitter: a batch leaves as soon as flushAt items wait, inside the turn that handed them in', async () => {
      const sizes: number[] = [];
      const recording = { dialect: store.dialect, write: (b: Parameters<SqlStore['write']>[0]) => (sizes.push(b.newRequests.length + b.commits.length), store.write(b)) } as unknown as SqlStore;
      const reqs = Array.from({ length: 120 }, () => request());
      const committer = new GroupCommitter(recording, 2000, 1, 50);
      const stored = reqs.map((r) => committer.insertRequest(r));
      // Still inside the turn: the first 50 have left, the other 70 wait for the batch in flight.
      expect(sizes).to.deep.equal([50]);
      await Promise.all(stored);
      expect(sizes).to.deep.equal([50, 70]);
      const found = await store.getRequests(reqs.map((r) => r.id));
      expect(found.length).to.equal(120);
      // Below flushAt, nothing leaves before the turn ends.
      const late = new GroupCommitter(recording, 2000, 1, 50);
      const few = Array.from({ length: 49 }, () => late.insertRequest(request()));
      expect(sizes).to.deep.equal([50, 70]);
      await Promise.all(few);
      expect(sizes).to.deep.equal([50, 70, 49]);
    });

    it('GroupCommitter writes a failed batch again one item at a time: only the item the database refused fails', async () => {
      const { req, first } = await seeded();
      await store.write({ newRequests: [], commits: [commit(req, 1, { finish: first.id })] });
      const other = await seeded();
      const committer = new GroupCommitter(store);
      const fresh = request();
      // Closing a run that is closed already breaks the batch's invariant: its transaction is rolled back whole.
      const outcomes = await Promise.allSettled([
        committer.insertRequest(fresh), committer.commit(commit(req, 2, { finish: first.id })), committer.commit(commit(other.req, 1, { finish: other.first.id })),
      ]);
      expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      expect(outcomes[2]).to.deep.equal({ status: 'fulfilled', value: true });
      expect(committer.stats.split).to.equal(1);
      expect(await store.getRequest(fresh.id)).to.deep.equal(fresh);
      expect(await runStatus(other.first.id)).to.equal('completed');
      // The committer keeps working after a failed batch.
      const later = request();
      await committer.insertRequest(later);
      expect(await store.getRequest(later.id)).to.deep.equal(later);
    });

    it('GroupCommitter: a database that fails every write fails a batch after three items tried alone, the rest at once', async () => {
      let writes = 0;
      const down = new Error('database down');
      const failing = { write: async () => { writes++; throw down; } } as unknown as SqlStore;
      const committer = new GroupCommitter(failing);
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => committer.insertRequest(request())));
      expect(outcomes.map((o) => (o.status === 'rejected' ? o.reason : o.status))).to.deep.equal(Array.from({ length: 10 }, () => down));
      expect(writes, 'the batch, then three alone').to.equal(4);
    });

    it('keyed inserts ride the group commit: a unique key refuses only its own row, beside commits that hold (bulk and single path)', async () => {
      const pipelineId = `keyed-${target.name}`;
      const seeds = [await seeded(), await seeded(), await seeded()];
      const committer = new GroupCommitter(store);
      const keyed = (over: Partial<RequestRecord>, activeKey: string | null = null, callbackUrl: string | null = null) =>
        ({ record: request({ pipelineId, status: 'buffered', ...over }), hold: null, activeKey, callbackUrl });
      const a = keyed({ idempotencyKey: 'idem-1' });
      const dupIdem = keyed({ idempotencyKey: 'idem-1' });
      const b = keyed({ businessKey: 'bk-1' }, 'bk-1');
      const dupKey = keyed({ businessKey: 'bk-1' }, 'bk-1');
      const withCallback = keyed({}, null, 'http://127.0.0.1:1/cb');
      // Three commits of distinct requests: the MySQL bulk path.
      const answers = await Promise.all([
        ...seeds.map(({ req, first }) => committer.commit(commit(req, 1, { finish: first.id }))),
        ...[a, dupIdem, b, dupKey, withCallback].map((r) => committer.insertKeyed(r)),
      ]);
      expect(answers).to.deep.equal([true, true, true, true, false, true, false, true]);
      expect(committer.stats).to.deep.equal({ batches: 1, items: 8, split: 0 });
      expect(await store.getRequest(a.record.id)).to.deep.equal(a.record);
      expect(await store.getRequest(dupIdem.record.id)).to.equal(undefined);
      expect(await store.getRequest(dupKey.record.id)).to.equal(undefined);
      expect(await store.intake.columns(b.record.id)).to.include({ activeKey: 'bk-1', hold: null, callbackUrl: null });
      expect(await store.intake.columns(withCallback.record.id)).to.include({ callbackUrl: 'http://127.0.0.1:1/cb', callbackDue: withCallback.record.createdAt });
      // One commit and one stale: the per-commit path, answers still in hand-in order.
      const again = await Promise.all([
        committer.insertKeyed(keyed({ idempotencyKey: 'idem-1' })),
        committer.commit(commit(seeds[0]!.req, 2)),
        committer.commit(commit(seeds[1]!.req, 0)),
        committer.insertKeyed(keyed({ idempotencyKey: 'idem-2' })),
      ]);
      expect(again).to.deep.equal([false, true, false, true]);
    });

    it('getRequests reads whole requests by id in one query each 500, with whether each has a callback', async () => {
      const pipelineId = `many-${target.name}`;
      const plain = Array.from({ length: 600 }, (_, i) => request({ pipelineId, status: 'buffered', payload: { i } }));
      const withCallback = request({ pipelineId, status: 'buffered', payload: { cb: true } });
      await store.write({ newRequests: plain, commits: [], keyed: [{ record: withCallback, hold: null, activeKey: null, callbackUrl: 'http://127.0.0.1:9/cb' }] });
      const got = await store.getRequests([withCallback.id, ...plain.map((r) => r.id), 'no-such-request']);
      const byId = new Map(got.map((r) => [r.id, r]));
      expect(got).to.have.length(601);
      expect(byId.get(withCallback.id)).to.deep.equal(await store.getRequest(withCallback.id, { callback: true }));
      expect(byId.get(withCallback.id)!.hasCallback).to.equal(true);
      for (const r of plain) expect(byId.get(r.id)).to.deep.equal({ ...r, hasCallback: false });
      expect(await store.getRequests([])).to.deep.equal([]);
    });

    it('listRequestIds pages in id order by status; countRequests returns a number', async () => {
      const status = (i: number): RequestRecord['status'] => (i % 3 === 0 ? 'waiting' : 'stopped');
      const pipelineId = `list-${target.name}`;
      const made = Array.from({ length: 25 }, (_, i) => request({ pipelineId, status: status(i) }));
      await store.write({ newRequests: made, commits: [] });
      const want = made.filter((r) => r.status === 'waiting').map((r) => r.id);
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.listRequestIds(['waiting'], 4, after);
        if (page.length === 0) break;
        pages.push(page);
        after = page[page.length - 1];
      }
      expect(pages.flat()).to.deep.equal(want);
      expect(pages.map((p) => p.length)).to.deep.equal([4, 4, 1]);
      const both = await store.listRequestIds(['waiting', 'stopped'], 1000);
      expect(both).to.include.members(made.map((r) => r.id));
      expect([...both]).to.deep.equal([...both].sort());

      const waiting = await store.countRequests(['waiting']);
      expect(waiting).to.be.a('number').and.to.equal(9);
      const all = await store.countRequests();
      expect(all).to.be.a('number').and.to.be.at.least(25);
      expect(await store.countRequests(['waiting', 'stopped'])).to.be.a('number').and.to.equal(25);
    });

    it('JSON columns round-trip unicode and a 200 KB output', async () => {
      const unicode = { ru: 'Привет, мир', zh: '你好', emoji: '🚚📦✅', astral: '𝔘𝔫𝔦', mixed: 'a\u0000b"\'\\\n\t', rtl: 'שלום' };
      const big = { blob: 'Ж🙂x'.repeat(50_000), items: Array.from({ length: 2000 }, (_, i) => ({ i, s: `item-${i}` })) };
      expect(JSON.stringify(big).length).to.be.greaterThan(200_000);
      const req = request({ payload: unicode, businessKey: 'ключ-🔑' });
      await store.write({ newRequests: [req], commits: [] });
      const first = run(req.id, 1, { params: { text: unicode.emoji, big: big.blob } });
      await store.write({ newRequests: [], commits: [commit(req, 0, { insertRuns: [first] })] });
      expect(await store.write({ newRequests: [], commits: [commit(req, 1, { finish: first.id, output: big })] })).to.deep.equal([true]);
      expect(await store.getRequest(req.id)).to.deep.include({ payload: unicode, businessKey: 'ключ-🔑' });
      const [got] = await store.listStepRuns(req.id);
      expect(got!.output).to.deep.equal(big);
      expect(got!.params).to.deep.equal({ text: unicode.emoji, big: big.blob });
    });

    it('vars: written only by a commit that assigns, with the run\'s assigned, in the same transaction; a stale commit writes neither', async () => {
      const { req, first } = await seeded();
      expect(await store.getRequest(req.id)).to.not.have.property('vars');
      const second = run(req.id, 2);
      const assigned = { executor: 'u-7', status: 'taken', meta: { n: 1, list: ['я', null] } };
      const withVars = commit(req, 1, { finish: first.id, insertRuns: [second] });
      withVars.request.vars = { ...assigned };
      withVars.finishRun!.assigned = assigned;
      expect(await store.write({ newRequests: [], commits: [withVars] })).to.deep.equal([true]);
      expect((await store.getRequest(req.id))!.vars).to.deep.equal(assigned);
      const runs = await store.listStepRuns(req.id);
      expect(runs.map((r) => r.assigned)).to.deep.equal([assigned, null]);
      expect((await store.getStepRun(first.id))!.assigned).to.deep.equal(assigned);
      // A commit that assigns nothing leaves vars as they are.
      const third = run(req.id, 3);
      expect(await store.write({ newRequests: [], commits: [commit(req, 2, { finish: second.id, insertRuns: [third] })] })).to.deep.equal([true]);
      expect((await store.getRequest(req.id))!.vars).to.deep.equal(assigned);
      // A stale commit with vars is refused whole: neither vars nor assigned are written.
      const stale = commit(req, 2, { finish: third.id });
      stale.request.vars = { executor: 'intruder' };
      stale.finishRun!.assigned = { executor: 'intruder' };
      expect(await store.write({ newRequests: [], commits: [stale] })).to.deep.equal([false]);
      expect((await store.getRequest(req.id))!.vars).to.deep.equal(assigned);
      expect((await store.getStepRun(third.id))!).to.include({ status: 'dispatched', assigned: null });
      // A finishing run that fails after its output (an assign too large) keeps its output and no assigned.
      const failed = commit(req, 3, { finish: third.id });
      failed.finishRun = { ...failed.finishRun!, status: 'failed', error: { code: 'CONVEYOR_ERR_VARS_TOO_LARGE', message: 'm', retryable: false } };
      failed.request = { ...failed.request, status: 'error_stop', error: { stepId: 's3', runId: third.id, attempt: 1, code: 'CONVEYOR_ERR_VARS_TOO_LARGE', message: 'm' } };
      expect(await store.write({ newRequests: [], commits: [failed] })).to.deep.equal([true]);
      expect(await store.getStepRun(third.id)).to.deep.include({ status: 'failed', output: { done: true }, assigned: null });
      expect((await store.getRequest(req.id))!.vars).to.deep.equal(assigned);
    });

    it('vars in a group-commit batch (MySQL: the bulk path) are set only for the commits that assign, and 256 KiB round-trips', async () => {
      const seededMany = await Promise.all([0, 1, 2, 3].map(() => seeded()));
      const big = { blob: 'Ж'.repeat(120 * 1024) };
      const commits = seededMany.map(({ req, first }, i) => {
        const c = commit(req, 1, { finish: first.id });
        if (i % 2 === 0) {
          c.request.vars = i === 0 ? big : { i };
          c.finishRun!.assigned = i === 0 ? big : { i };
        }
        return c;
      });
      // One that already had vars and now assigns nothing keeps them.
      const prior = seededMany[3]!;
      const set = commit(prior.req, 1, { insertRuns: [run(prior.req.id, 2)] });
      set.request.vars = { kept: true };
      expect(await store.write({ newRequests: [], commits: [set] })).to.deep.equal([true]);
      commits[3] = commit(prior.req, 2, { finish: prior.first.id });
      const committer = new GroupCommitter(store, 100, 2);
      expect(await Promise.all(commits.map((c) => committer.commit(c)))).to.deep.equal([true, true, true, true]);
      expect(committer.stats.batches, 'one transaction for the four').to.equal(1);
      const got = await Promise.all(seededMany.map(({ req }) => store.getRequest(req.id)));
      expect(got.map((r) => r!.vars)).to.deep.equal([big, undefined, { i: 2 }, { kept: true }]);
      const firsts = await Promise.all(seededMany.map(({ first }) => store.getStepRun(first.id)));
      expect(firsts.map((r) => r!.assigned)).to.deep.equal([big, null, { i: 2 }, null]);
    });

    it('outputs and errors with quotes, backslashes, control and 4-byte characters round-trip through the group commit (MySQL: the bulk path)', async () => {
      const seededMany = await Promise.all([0, 1, 2].map(() => seeded()));
      const tricky = { s: 'a "quoted" \\ back\nslash \u0000 ? $[0] \' 😀 Ж', n: 2 ** 53 - 1, nested: [null, true, { x: '\t' }] };
      const commits = seededMany.map(({ req, first }, i) => {
        const c = commit(req, 1, { finish: first.id });
        if (i === 1) c.finishRun = { ...c.finishRun!, status: 'failed', output: undefined, error: tricky };
        else c.finishRun!.output = tricky;
        return c;
      });
      const committer = new GroupCommitter(store, 100, 2);
      expect(await Promise.all(commits.map((c) => committer.commit(c)))).to.deep.equal([true, true, true]);
      expect(committer.stats.batches, 'one transaction for the three').to.equal(1);
      const firsts = await Promise.all(seededMany.map(({ first }) => store.getStepRun(first.id)));
      expect(firsts.map((r) => [r!.status, r!.output, r!.error])).to.deep.equal([['completed', tricky, null], ['failed', null, tricky], ['completed', tricky, null]]);
    });

    it('api keys: insert, find by hash, count', async () => {
      const before = await store.countApiKeys();
      expect(before).to.be.a('number');
      const key = { id: nextId('key'), hash: randomBytes(32).toString('hex'), name: 'ops', roles: ['submit', 'read'], createdAt: 1_700_000_000_000, revokedAt: null };
      const revoked = { ...key, id: nextId('key'), hash: randomBytes(32).toString('hex'), roles: ['admin'], revokedAt: 1_700_000_000_500 };
      await store.insertApiKey(key);
      await store.insertApiKey(revoked);
      expect(await store.findApiKey(key.hash)).to.deep.equal(key);
      expect(await store.findApiKey(revoked.hash)).to.deep.equal(revoked);
      expect(await store.findApiKey('0'.repeat(64))).to.equal(undefined);
      expect(await store.countApiKeys()).to.equal(before + 1);
      await rejection(store.insertApiKey({ ...key, id: nextId('key') }));
    });
  });
}

storeSuite(sqliteTarget);
storeSuite(mysqlTarget);
