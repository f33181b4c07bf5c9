/**
 * MariaDB's stand-ins for partial indexes on the step log (migration 1763800000320): the
 * generated columns follow the status, every search by status finds exactly the runs with
 * that status, and the sweeper's and the search's statements are served by an index (never
 * a scan of `step_runs`), as `bench-smoke.test.ts` checks on SQLite.
 */
import { expect } from 'chai';
import { newId } from '../../src/ids';
import type { StepRunRecord } from '../../src/model';
import { insertStmts, RUN_COLUMNS, runParams } from '../../src/store/rows';
import { openRowRuns, searchStepRows } from '../../src/store/search';
import type { SqlExecutor } from '../../src/store/sql-executor';
import { StepStore } from '../../src/store/step-store';
import { SqlStore } from '../../src/store/store';
import { createMysqlDatabase } from '../ops/support';

const STATUSES = ['pending', 'dispatched', 'waiting', 'completed', 'failed', 'cancelled'] as const;

function runOf(i: number, status: StepRunRecord['status'], pipelineId: string): StepRunRecord {
  const now = 1_700_000_000_000 + i * 1000;
  return {
    id: newId(now), requestId: `req-${i % 7}`, pipelineId, stepId: i % 2 ? 'a' : 'b', seq: i, attempt: 1, status, kind: 'module', module: 'm', transport: 'event',
    params: null, output: null, error: null, causedBy: null, availableAt: status === 'pending' ? now + 5 : null, leaseUntil: status === 'dispatched' || status === 'waiting' ? now + 60_000 : null,
    waitEvent: i % 3 === 0 ? 'paid' : null, waitKey: i % 3 === 0 ? `k${i % 2}` : null, deadlineAt: null, override: null, startedAt: now,
    ...(['completed', 'failed', 'cancelled'].includes(status) ? { finishedAt: now + 10, durationMs: 10 } : { finishedAt: null, durationMs: null }),
  };
}

describe('MariaDB step-log indexes: generated columns instead of partial indexes', function () {
  this.timeout(60_000);
  let store: SqlStore;
  let drop: () => Promise<void>;
  const runs: StepRunRecord[] = [];

  before(async () => {
    const db = await createMysqlDatabase();
    drop = db.drop;
    store = await SqlStore.open(db.url);
    for (let i = 0; i < 120; i++) runs.push(runOf(i, STATUSES[i % STATUSES.length]!, i % 4 === 0 ? 'p' : 'q'));
    for (const st of insertStmts('step_runs', RUN_COLUMNS, runs.map(runParams))) await store.query(st.sql, st.params);
  });
  after(async () => {
    await store?.close();
    await drop?.();
  });

  it('the generated columns follow the status, also when a run closes', async () => {
    const check = async (): Promise<void> => {
      const rows = await store.query<{ status: string; available_at: unknown; wait_event: unknown; due_at: unknown; wait_status: unknown; searched_status: unknown }>(
        'SELECT status, available_at, wait_event, due_at, wait_status, searched_status FROM step_runs');
      for (const r of rows) {
        expect(r.due_at === null ? null : Number(r.due_at)).to.equal(r.status === 'pending' ? Number(r.available_at) : null);
        expect(r.wait_status).to.equal(r.wait_event === null ? null : r.status);
        expect(r.searched_status).to.equal(['waiting', 'failed', 'cancelled'].includes(r.status) ? r.status : null);
      }
    };
    await check();
    const open = runs.filter((r) => r.status === 'pending' || r.status === 'waiting').slice(0, 6).map((r) => r.id);
    await store.query(`UPDATE step_runs SET status = 'completed', finished_at = started_at, duration_ms = 0 WHERE id IN (${open.map(() => '?').join(',')})`, open);
    await check();
    for (const r of runs) if (open.includes(r.id)) r.status = 'completed';
  });

  it('a search by status finds exactly the runs with that status, with and without a pipeline', async () => {
    const x = (store as unknown as { x: SqlExecutor }).x;
    for (const status of STATUSES) {
      for (const pipeline of [undefined, 'p']) {
        const want = runs.filter((r) => r.status === status && (!pipeline || r.pipelineId === pipeline)).map((r) => r.id).sort().reverse();
        const got: string[] = [];
        let after: { t: number; id: string } | undefined;
        do {
          const page = await searchStepRows(x, 'id, started_at', { status, pipeline, limit: 7, after });
          got.push(...page.rows.map((r) => String(r.id)));
          after = page.next;
        } while (after);
        expect(got, `${status} ${pipeline ?? ''}`).to.deep.equal(want);
      }
    }
  });

  it('the sweeper finds due runs and runs waiting for an event through the new columns', async () => {
    const due = runs.filter((r) => r.status === 'pending').map((r) => r.id).sort();
    const claimed = await store.claimDueRuns(2_000_000_000_000, 2_000_000_060_000, 1000);
    expect(claimed.map((c) => c.id).sort()).to.deep.equal(due);
    const waiting = runs.filter((r) => r.waitEvent === 'paid' && r.waitKey === 'k0' && ['pending', 'dispatched', 'waiting'].includes(r.status)).map((r) => r.id).sort();
    const found = await store.findWaitingForEvent('paid', 'k0', 1000);
    expect(waiting.length).to.be.greaterThan(0);
    expect(found.map((c) => c.id).sort()).to.deep.equal(waiting);
  });

  it('every sweeper and search statement reads step_runs (and the attempts open in request rows) through an index', async () => {
    const seen: Array<{ sql: string; params: unknown[] }> = [];
    const capture = { dialect: 'mysql', all: async (sql: string, params: unknown[] = []) => (seen.push({ sql, params }), []), run: async () => 0 } as unknown as SqlExecutor;
    const window = { limit: 50, after: { t: 1, id: 'x' } };
    for (const f of [{}, { pipeline: 'p' }, { pipeline: 'p', step: 'a' }, ...STATUSES.flatMap((status) => [{ status }, { pipeline: 'p', status }])]) {
      await searchStepRows(capture, 'id, started_at', { ...window, ...f } as never);
    }
    // The attempts open in requests' rows that a step search merges in (only dispatched and waiting ones live there).
    for (const f of [{}, { pipeline: 'p' }, { status: 'dispatched' }, { pipeline: 'p', status: 'waiting' }]) await openRowRuns(capture, { ...window, ...f });
    const sweeper = new StepStore(capture);
    await sweeper.claimDueRuns(1, 2, 10);
    // Each of these two reads the log, then the attempts open in requests' rows.
    await sweeper.claimExpiredLeases(1, () => 2, 10);
    await sweeper.claimExpiredWaits(1, 10);
    await sweeper.findWaitingForEvent('e', 'k', 10);
    expect(seen.length).to.equal(3 + STATUSES.length * 2 + 4 + 6);
    for (const q of seen) {
      const [plan] = await store.query<{ key: string | null; type: string }>(`EXPLAIN ${q.sql}`, q.params);
      expect(plan!.key, q.sql).to.be.a('string');
      expect(plan!.type, q.sql).to.not.equal('ALL');
    }
  });
});
