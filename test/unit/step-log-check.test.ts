/**
 * The step log's invariant check itself (test/support/step-log.ts), which the root hook runs
 * over every store the suite closes: it must find each kind of broken row, or it proves nothing.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { SqlStore } from '../../src/store/store';
import { findStepLogViolations } from '../support/step-log';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

describe('step log invariants: the check the suite runs on every store it closes', () => {
  let store: SqlStore;
  before(async () => {
    store = await SqlStore.open(`sqlite:${path.join(tmpDir('steplog'), 'c.db')}`);
  });
  after(async () => {
    // Leave no broken row behind: the root hook checks this store too as it closes.
    await store.query('DELETE FROM step_runs');
    await store.query('DELETE FROM step_polls');
    await store.close();
    cleanupTmpDirs();
  });

  const insertRun = (id: string, row: { kind?: string; status: string; started: number; finished: number | null; duration: number | null; endedBy?: string | null }) =>
    store.query(
      'INSERT INTO step_runs (id, request_id, pipeline_id, step_id, seq, attempt, status, kind, started_at, finished_at, duration_ms, ended_by) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)',
      [id, 'req', 'p', `s-${id}`, Number(id.slice(1)), row.status, row.kind ?? 'module', row.started, row.finished, row.duration, row.endedBy ?? null],
    );

  it('passes truthful rows and names each broken one', async () => {
    await insertRun('r1', { status: 'completed', started: 1000, finished: 1500, duration: 500 });
    await insertRun('r2', { status: 'pending', started: 1000, finished: null, duration: null });
    await insertRun('r3', { kind: 'wait', status: 'completed', started: 1000, finished: 2000, duration: 1000, endedBy: 'event' });
    expect(await findStepLogViolations(store)).to.deep.equal([]);
    await insertRun('r4', { kind: 'wait', status: 'completed', started: 2000, finished: 1000, duration: -1000, endedBy: 'event' }); // woken before it started
    await insertRun('r5', { kind: 'delay', status: 'completed', started: 1000, finished: 2500, duration: 0 }); // a 1.5 s delay logged as 0
    await insertRun('r6', { kind: 'wait', status: 'completed', started: 1000, finished: 1000, duration: 0, endedBy: null }); // how it ended unknown
    await insertRun('r7', { status: 'cancelled', started: 1000, finished: 1200, duration: null });
    await store.query('INSERT INTO step_polls (run_id, n, request_id, started_at, finished_at, duration_ms) VALUES (?, 1, ?, 5, 3, -2)', ['r3', 'req']);
    const found = await findStepLogViolations(store);
    expect(found.filter((v) => v.table === 'step_runs').map((v) => v.row.id).sort()).to.deep.equal(['r4', 'r5', 'r6', 'r7']);
    expect(found.filter((v) => v.table === 'step_polls').map((v) => v.row.run_id)).to.deep.equal(['r3']);
  });
});
