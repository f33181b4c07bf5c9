/**
 * MariaDB's stand-ins for partial indexes on `requests` (migration 1763800000340): the
 * generated columns follow the status, the hold, the callback and the finish time (also
 * through the step commit's UPDATE), the queries that name them find exactly the rows they
 * did, and every statement of the sweeps, the intake, the overview, the admission counts and
 * the search reads `requests` through an index (never a scan), as
 * `mysql-run-indexes.test.ts` checks for the step log.
 */
import { expect } from 'chai';
import { REQUEST_STATUSES, type RequestStatus } from '../../src/model';
import { IntakeStore } from '../../src/store/intake-store';
import { batchScript, rateScript } from '../../src/store/intake-release';
import { readOverview } from '../../src/store/overview';
import { countRequestsByStatus, searchRequestRows } from '../../src/store/search';
import { SourceStore } from '../../src/store/source-store';
import type { Script, SqlExecutor } from '../../src/store/sql-executor';
import { StepStore } from '../../src/store/step-store';
import { SqlStore } from '../../src/store/store';
import { createMysqlDatabase } from '../ops/support';

const T0 = 1_700_000_000_000;
const COLUMNS = 'id, pipeline_id, version, status, business_key, payload, step_count, rev, release_at, created_at, updated_at, finished_at, hold, callback_url, callback_due';

interface Row {
  id: string;
  pipeline: string;
  status: RequestStatus;
  businessKey: string | null;
  releaseAt: number | null;
  createdAt: number;
  finishedAt: number | null;
  hold: 'gate' | 'key' | null;
  callbackDue: number | null;
}

function rowOf(i: number): Row {
  const status = REQUEST_STATUSES[i % REQUEST_STATUSES.length]!;
  const createdAt = T0 + i * 1000;
  const businessKey = i % 3 === 0 ? `k${i % 5}` : null;
  const hold = status !== 'buffered' ? null : businessKey ? 'key' : i % 4 === 0 ? 'gate' : null;
  const ended = status === 'completed' || status === 'stopped' || (status === 'error_stop' && i % 2 === 0);
  return {
    id: `r${String(i).padStart(4, '0')}`, pipeline: i % 4 === 0 ? 'p' : 'q', status, businessKey, createdAt, hold,
    releaseAt: status === 'buffered' && hold ? null : createdAt + 5, finishedAt: ended ? createdAt + 500 : null, callbackDue: i % 5 === 1 ? createdAt : null,
  };
}

/** Runs a transaction script, answering every read with no rows, and keeps its statements. */
function drive<T>(script: Script<T>, seen: Array<{ sql: string; params: unknown[] }>): void {
  let step = script.next();
  while (!step.done) {
    seen.push({ sql: step.value.sql, params: step.value.params });
    step = script.next(step.value.kind === 'all' ? [] : 0);
  }
}

describe('MariaDB request indexes: generated columns instead of partial indexes', function () {
  this.timeout(60_000);
  let store: SqlStore;
  let drop: () => Promise<void>;
  const rows: Row[] = [];

  before(async () => {
    const db = await createMysqlDatabase();
    drop = db.drop;
    store = await SqlStore.open(db.url);
    // Every combination, then a history of completed requests (most rows, as in production,
    // so that the planner weighs the indexes as it would there).
    for (let i = 0; i < 300; i++) rows.push(rowOf(i));
    for (let i = 300; i < 3000; i++) rows.push({ ...rowOf(i), status: 'completed', hold: null, finishedAt: T0 + i * 1000 + 500, releaseAt: T0 + i * 1000 });
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await store.query(`INSERT INTO requests (${COLUMNS}) VALUES ${chunk.map(() => "(?, ?, 1, ?, ?, '{}', 0, 0, ?, ?, ?, ?, ?, ?, ?)").join(', ')}`, chunk.flatMap((r) => [
        r.id, r.pipeline, r.status, r.businessKey, r.releaseAt, r.createdAt, r.createdAt, r.finishedAt, r.hold, r.callbackDue === null ? null : 'http://127.0.0.1:1/cb', r.callbackDue,
      ]));
    }
    await store.query('ANALYZE TABLE requests');
  });
  after(async () => {
    await store?.close();
    await drop?.();
  });

  const check = async (): Promise<void> => {
    const got = await store.query<Record<string, unknown>>(
      'SELECT id, status, hold, created_at, callback_due, finished_at, buffered_status, key_queued_at, callback_status, finished_status FROM requests ORDER BY id');
    expect(got.length).to.equal(rows.length);
    for (const r of got) {
      const n = (v: unknown): number | null => (v === null ? null : Number(v));
      expect(r.buffered_status, String(r.id)).to.equal(r.status === 'buffered' ? 'buffered' : null);
      expect(n(r.key_queued_at), String(r.id)).to.equal(r.hold === 'key' ? Number(r.created_at) : null);
      expect(r.callback_status, String(r.id)).to.equal(r.callback_due === null ? null : r.status);
      expect(r.finished_status, String(r.id)).to.equal(r.finished_at === null ? null : r.status);
    }
  };

  it('the generated columns follow the status, the hold, the callback and the finish time', async () => {
    await check();
    for (const status of REQUEST_STATUSES) expect(rows.some((r) => r.status === status && r.callbackDue !== null), status).to.equal(true);
  });

  it('a step commit that starts, ends or only counts a request keeps them right (per-commit and bulk paths)', async () => {
    const started = rows.filter((r) => r.status === 'buffered' && r.hold === null).slice(0, 4);
    const ending = rows.filter((r) => r.status === 'running').slice(0, 4);
    const steps = rows.filter((r) => r.status === 'waiting').slice(0, 4);
    const commit = (r: Row, status: RequestStatus, finishedAt: number | null) => ({
      requestId: r.id, expectRev: 0, moved: status !== r.status, cancelRuns: [], insertRuns: [],
      request: { status, error: null, joins: {}, stepCount: 1, finishedAt, updatedAt: r.createdAt + 900 },
    });
    const all = [...started.map((r) => commit(r, 'running', null)), ...ending.map((r) => commit(r, 'completed', r.createdAt + 900)), ...steps.map((r) => commit(r, 'waiting', null))];
    // One commit alone takes the per-commit path (the guard UPDATE), the rest the bulk path.
    for (const batch of [all.slice(0, 1), all.slice(1)]) {
      const held = await store.write({ newRequests: [], commits: batch as never });
      expect(held).to.deep.equal(batch.map(() => true));
    }
    for (const r of started) r.status = 'running';
    for (const r of ending) [r.status, r.finishedAt] = ['completed', r.createdAt + 900];
    await store.query("UPDATE requests SET hold = NULL, release_at = created_at WHERE hold = 'key' AND business_key = 'k0'");
    for (const r of rows) if (r.hold === 'key' && r.businessKey === 'k0') [r.hold, r.releaseAt] = [null, r.createdAt];
    await check();
  });

  it('the sweeps, the key queue, the callbacks and the overview find exactly the rows they did', async () => {
    const buffered = rows.filter((r) => r.status === 'buffered');
    expect(await store.listStaleBuffered(T0 + 10_000_000, 1000)).to.deep.equal(
      buffered.filter((r) => r.releaseAt !== null).sort((a, b) => a.releaseAt! - b.releaseAt! || (a.id < b.id ? -1 : 1)).map((r) => r.id));
    expect(await store.intake.listReleased(1000)).to.deep.equal(buffered.filter((r) => r.hold === null).map((r) => r.id).sort());
    for (const key of ['k0', 'k1', 'k3']) {
      const waiters = rows.filter((r) => r.pipeline === 'p' && r.businessKey === key && r.hold === 'key');
      expect(await store.intake.hasKeyWaiters('p', key), key).to.equal(waiters.length > 0);
      expect(await store.intake.mustQueueForKey('p', key), key).to.equal(waiters.length > 0);
    }
    const oldest = rows.filter((r) => r.pipeline === 'p' && r.businessKey === 'k3' && r.hold === 'key')[0]!;
    expect(await store.intake.promoteKeyWaiter('p', 'k3', false, T0 + 1)).to.equal(oldest.id);
    [oldest.hold, oldest.releaseAt] = [null, T0 + 1];
    const finished = rows.filter((r) => r.finishedAt !== null && r.finishedAt >= T0);
    const overview = await readOverview((store as unknown as { x: SqlExecutor }).x, T0 + 300_000, { windowMs: 600_000, bucketMs: 60_000 });
    const counts = new Map<string, number>();
    for (const r of finished.filter((f) => f.finishedAt! >= T0 - 300_000)) counts.set(`${r.pipeline} ${r.status}`, (counts.get(`${r.pipeline} ${r.status}`) ?? 0) + 1);
    expect(new Map(overview.finished.map((f) => [`${f.pipeline} ${f.status}`, f.n]))).to.deep.equal(counts);
    const owed = rows.filter((r) => r.callbackDue !== null && ['completed', 'stopped', 'error_stop'].includes(r.status)).map((r) => r.id).sort();
    const claims = await store.intake.claimDueCallbacks(T0 + 10_000_000, T0 + 20_000_000, 1000);
    expect(claims.map((c) => c.id).sort()).to.deep.equal(owed);
    await check();
  });

  it('every sweep, intake, overview, admission and search statement reads requests through an index', async () => {
    const seen: Array<{ sql: string; params: unknown[] }> = [];
    const capture = { dialect: 'mysql', all: async (sql: string, params: unknown[] = []) => (seen.push({ sql, params }), []), run: async () => 0 } as unknown as SqlExecutor;
    // The store's sweeps on the capturing executor: these methods use nothing but `x`.
    const sweeper = Object.assign(Object.create(SqlStore.prototype) as object, { x: capture }) as unknown as SqlStore;
    await sweeper.listStaleBuffered(1, 10);
    await sweeper.listRequestIds(['running', 'waiting'], 10);
    await sweeper.pruneFinished(1, 10);
    const intake = new IntakeStore(capture);
    await intake.listReleased(10);
    await intake.hasKeyWaiters('p', 'k1');
    await intake.mustQueueForKey('p', 'k1');
    await intake.promoteKeyWaiter('p', 'k1', false, 1);
    await intake.listWaitingKeys('p', 10);
    await intake.claimDueCallbacks(1, 2, 10);
    await new SourceStore(capture).backlog('p', 10);
    // The attempts open in requests' rows (migration 1763800000390): expired leases, expired callback deadlines.
    await new StepStore(capture).claimExpiredLeases(1, () => 2, 10);
    await new StepStore(capture).claimExpiredWaits(1, 10);
    drive(rateScript('mysql', 'p', { max: 5, perMs: 1000 }, 3, T0, 10), seen);
    drive(batchScript('mysql', 'p', 5, 1000, 3, T0), seen);
    await countRequestsByStatus(capture, ['buffered', 'running', 'waiting', 'error_stop']);
    const window = { limit: 50, after: { t: T0 + 1, id: 'x' } };
    for (const f of [{}, { pipeline: 'p' }, ...REQUEST_STATUSES.flatMap((status) => [{ status }, { pipeline: 'p', status }])]) {
      await searchRequestRows(capture, 'id, created_at', { ...window, ...f } as never);
    }
    const overviewFrom = seen.length;
    await readOverview(capture, T0, {});
    const onRequests = seen.filter((q, i) => (i < overviewFrom || /FROM requests WHERE (status|finished_at)/.test(q.sql)) && /\brequests\b/.test(q.sql) && !/^(UPDATE|INSERT)|WHERE id (=|IN)|FROM intake_marks/.test(q.sql));
    expect(onRequests.length).to.be.greaterThan(30);
    for (const q of onRequests) {
      const plan = await store.query<{ table: string | null; key: string | null; type: string | null; Extra: string | null }>(`EXPLAIN ${q.sql}`, q.params);
      for (const p of plan.filter((s) => s.table === 'requests' || s.table === 'r')) {
        expect(p.type, q.sql).to.not.equal('ALL');
        expect(p.key, q.sql).to.be.a('string');
      }
    }
    // Each query on a generated column may use its index (on a small table MariaDB may still
    // prefer the primary key for `id > ? ORDER BY id`); the overview's finished count is read
    // from the index alone.
    const named = (sql: string) => onRequests.filter((q) => q.sql.includes(sql));
    const uses = async (column: string, index: string) => {
      for (const q of named(column)) {
        const plan = await store.query<{ possible_keys: string | null }>(`EXPLAIN ${q.sql}`, q.params);
        expect(plan.flatMap((p) => p.possible_keys?.split(',') ?? []), q.sql).to.include(index);
      }
    };
    await uses('buffered_status', 'ix_requests_status');
    await uses('key_queued_at', 'ix_requests_key_waiters');
    await uses('callback_status', 'ix_requests_callback_due');
    for (const q of named('finished_status')) {
      const [p] = await store.query<{ key: string; Extra: string }>(`EXPLAIN ${q.sql}`, q.params);
      expect(p!.key, q.sql).to.equal('ix_requests_finished');
      expect(p!.Extra, q.sql).to.include('Using index');
    }
    expect(named('buffered_status').length).to.equal(2);
    expect(named('key_queued_at').length).to.equal(3);
    expect(named('callback_status').length).to.equal(1);
    expect(named('finished_status').length).to.equal(2);
    // The overview's marker of change reads the dispatched attempts' leases through the index of open ones.
    const marker = seen.find((q) => q.sql.includes('MAX(open_lease)'))!;
    const markerPlan = await store.query<{ table: string; key: string | null }>(`EXPLAIN ${marker.sql}`, marker.params);
    expect(markerPlan.filter((p) => p.table === 'requests').map((p) => p.key), marker.sql).to.include('ix_requests_open_status');
    for (const [sql, index] of [["open_status = 'dispatched' AND open_lease < ?", 'ix_requests_open_status'], ['open_wait_lease < ?', 'ix_requests_open_wait']] as const) {
      expect(named(sql), sql).to.have.length(1);
      const [p] = await store.query<{ key: string }>(`EXPLAIN ${named(sql)[0]!.sql}`, named(sql)[0]!.params);
      expect(p!.key, sql).to.equal(index);
    }
  });

  it('open_wait_lease is the lease of a waiting attempt only; the sweeps claim exactly the expired ones, deadlines in order', async () => {
    const open = rows.filter((r) => r.status === 'running').slice(0, 6);
    const openRun = (r: Row, i: number): string => JSON.stringify({ id: `run-${r.id}`, stepId: 's', seq: 1, attempt: 1, kind: 'module', module: 'm', transport: 'http', startedAt: T0 + i });
    // Three dispatched (leases T0+10, +20, +30), three waiting (deadlines T0+30, +20, +10).
    for (const [i, r] of open.entries()) {
      await store.query('UPDATE requests SET open_run = ?, open_status = ?, open_lease = ? WHERE id = ?', [openRun(r, i), i < 3 ? 'dispatched' : 'waiting', i < 3 ? T0 + 10 * (i + 1) : T0 + 10 * (6 - i), r.id]);
    }
    const got = await store.query<{ id: string; open_wait_lease: unknown }>(`SELECT id, open_wait_lease FROM requests WHERE id IN (${open.map(() => '?').join(',')}) ORDER BY id`, open.map((r) => r.id));
    expect(got.map((g) => [g.id, g.open_wait_lease === null ? null : Number(g.open_wait_lease)])).to.deep.equal(
      open.map((r, i) => [r.id, i < 3 ? null : T0 + 10 * (6 - i)]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    const [stray] = await store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE open_wait_lease IS NOT NULL AND (open_status <> 'waiting' OR open_wait_lease <> open_lease)");
    expect(Number(stray!.n), 'no deadline outside a waiting attempt').to.equal(0);
    const steps = new StepStore((store as unknown as { x: SqlExecutor }).x);
    // Before T0+25: the dispatched leases of +10 and +20, the waiting deadlines of +10 and +20 (earliest first).
    expect((await steps.claimExpiredLeases(T0 + 25, () => T0 + 1_000_000, 10)).map((c) => c.requestId)).to.deep.equal([open[0]!.id, open[1]!.id]);
    expect((await steps.claimExpiredWaits(T0 + 25, 10)).map((c) => c.requestId)).to.deep.equal([open[5]!.id, open[4]!.id]);
    // Claimed once: their new leases are past the next sweep.
    expect(await steps.claimExpiredLeases(T0 + 25, () => T0 + 1_000_000, 10)).to.deep.equal([]);
    expect(await steps.claimExpiredWaits(T0 + 25, 10)).to.deep.equal([]);
    await store.query(`UPDATE requests SET open_run = NULL, open_status = NULL, open_lease = NULL WHERE id IN (${open.map(() => '?').join(',')})`, open.map((r) => r.id));
  });
});
