/**
 * Moving running requests to a new pipeline version, on SQLite and on MariaDB:
 * - 1,000 requests waiting in v1's `wait` move to v2 (the step renamed, a step added after
 *   it); woken by their events, all run v2's route. Three requests held at `hold`, a step v2
 *   does not have and the plan does not map, are refused with the reason and left untouched.
 * - a dry run first, which changes nothing;
 * - a second migration of the pipeline while one runs is refused (409), by the database;
 * - a module result racing a migration: the result commits under the new step id, and a move
 *   built on a stale `rev` is refused by the store and the request checked again.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requireMysql } from '../support/services';
import { createTestDatabase, type TestDatabase } from '../fixtures/dist/harness';
import { buildMove } from '../../src/migration/move';
import { Migrations } from '../../src/migration/service';
import { FIXTURES, MOVE_WAIT_V2, MOVE_WORK_V2, registerVersion, scalar, sleep, untilCount, untilMigrationEnds, type MigrationBody } from './support';

const TOTAL = 1000;
const HELD = 3;
const g = globalThis as { migrationLatch?: Promise<void>; migrationLatchCalls?: number };

for (const dialect of ['sqlite', 'mysql'] as const) {
  describe(`request migration (${dialect})`, function () {
    this.timeout(300_000);
    let t: TestEngine;
    let db: TestDatabase | undefined;
    let v2: number;
    const ids: string[] = [];
    const held: string[] = [];

    before(async () => {
      if (dialect === 'mysql') db = await createTestDatabase(await requireMysql(), 'migrate');
      t = await startTestEngine({
        databaseUrl: db?.url, pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'),
        engine: { migrations: { pollMs: 50, batchSize: 200 } },
      });
      for (let i = 0; i < TOTAL + HELD; i += 250) {
        const chunk = await Promise.all(Array.from({ length: Math.min(250, TOTAL + HELD - i) }, (_v, j) => {
          const n = i + j;
          return t.engine.intake.submit({ pipelineId: 'move-wait', payload: { n, key: `k-${n}`, hold: n >= TOTAL } });
        }));
        for (const r of chunk) ((r.payload as { hold: boolean }).hold ? held : ids).push(r.id);
      }
      await untilCount(t, "SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'move-wait' AND status = 'waiting'", [], TOTAL + HELD);
      v2 = await registerVersion(t, MOVE_WAIT_V2);
    });
    after(async () => {
      await t?.close();
      await db?.drop();
    });

    const plan = (): Record<string, unknown> => ({ toVersion: v2, mapping: { wait: 'await_wake' } });
    const snapshot = async (): Promise<string> => JSON.stringify(await t.engine.store.query(
      "SELECT r.id, r.version, r.rev, s.step_id, s.status FROM requests r JOIN step_runs s ON s.request_id = r.id WHERE r.pipeline_id = 'move-wait' ORDER BY r.id, s.seq",
    ));

    it('a dry run checks every request and changes nothing', async () => {
      const before = await snapshot();
      const res = await t.api<MigrationBody>('POST', '/api/pipelines/move-wait/migrations', { body: { fromVersion: 1, plan: plan(), dryRun: true } });
      expect(res.status, res.text).to.equal(202);
      const done = await untilMigrationEnds(t, res.body.id);
      expect(done.counts).to.deep.equal({ total: TOTAL + HELD, migrated: TOTAL, refused: HELD, left: 0 });
      expect(await snapshot()).to.equal(before);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'migrate'")).to.equal(0);
    });

    it('refuses a second migration of the pipeline while one runs (409, in the database)', async () => {
      const now = Date.now();
      const store = t.engine.store.migrations;
      // A migration another engine holds (its lease far ahead), so no runner here takes it.
      expect(await store.create({ id: `blocker-${dialect}`, pipelineId: 'move-wait', fromVersion: 1, toVersion: v2, plan: plan(), filter: {}, dryRun: false, actor: 'x', via: null, total: 0, createdAt: now })).to.equal(true);
      await t.engine.store.query('UPDATE request_migrations SET owner = ?, lease_until = ? WHERE id = ?', ['elsewhere', now + 3_600_000, `blocker-${dialect}`]);
      const res = await t.api<{ error: { code: string; message: string } }>('POST', '/api/pipelines/move-wait/migrations', { body: { fromVersion: 1, plan: plan() } });
      expect(res.status, res.text).to.equal(409);
      expect(res.body.error.code).to.equal('CONVEYOR_ERR_MIGRATION_RUNNING');
      expect(await store.finish(`blocker-${dialect}`, 'elsewhere', 'done', Date.now())).to.equal(true);
    });

    it(`moves ${TOTAL.toLocaleString('en')} waiting requests to v2; refuses the ones at a step with no mapping, untouched`, async () => {
      const heldBefore = JSON.stringify(await t.engine.store.query(`SELECT id, version, rev FROM requests WHERE id IN (${held.map(() => '?').join(',')}) ORDER BY id`, held));
      const started = Date.now();
      const res = await t.api<MigrationBody>('POST', '/api/pipelines/move-wait/migrations', { body: { fromVersion: 1, plan: plan(), filter: { status: 'waiting' } } });
      expect(res.status, res.text).to.equal(202);
      const done = await untilMigrationEnds(t, res.body.id);
      const ms = Date.now() - started;
      console.log(`      ${dialect}: ${TOTAL} requests migrated in ${ms} ms`);
      expect(done.status).to.equal('done');
      expect(done.counts).to.deep.equal({ total: TOTAL + HELD, migrated: TOTAL, refused: HELD, left: 0 });
      expect(done.refusals.map((r) => r.requestId).sort()).to.deep.equal([...held].sort());
      expect(done.refusals[0]!.problems).to.deep.equal([{ path: 'steps.hold', message: `the request is at "hold", and version ${v2} has no step "hold": map it (hold=<step>)` }]);
      expect(JSON.stringify(await t.engine.store.query(`SELECT id, version, rev FROM requests WHERE id IN (${held.map(() => '?').join(',')}) ORDER BY id`, held))).to.equal(heldBefore);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'move-wait' AND version = ?", [v2])).to.equal(TOTAL);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM step_runs WHERE step_id = 'await_wake' AND status = 'waiting'")).to.equal(TOTAL);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'migrate'")).to.equal(TOTAL);
      const [audit] = await t.engine.store.listAudit(ids[0]!);
      expect(audit).to.include({ action: 'migrate', outcome: 'accepted' });
      expect(audit!.details).to.deep.equal({ fromVersion: 1, toVersion: v2, mapping: { wait: 'await_wake' }, migrationId: res.body.id });
    });

    it('lists the versions with their requests, and the diff of the two through the mapping', async () => {
      const versions = await t.api<{ items: Array<{ version: number; current: boolean; active: number; requests: Record<string, number> }> }>('GET', '/api/pipelines/move-wait/versions');
      expect(versions.status, versions.text).to.equal(200);
      expect(versions.body.items.map((v) => [v.version, v.current, v.active, v.requests])).to.deep.equal([[1, false, HELD, { waiting: HELD }], [v2, true, TOTAL, { waiting: TOTAL }]]);
      const diff = await t.api('GET', `/api/pipelines/move-wait/diff?from=1&to=${v2}&map=wait:await_wake`);
      expect(diff.status, diff.text).to.equal(200);
      expect(diff.body).to.deep.equal({
        pipeline: 'move-wait', from: 1, to: v2, mapping: { wait: 'await_wake' },
        added: ['added'], removed: ['hold'], renamed: [{ from: 'wait', to: 'await_wake' }], changed: ['after', 'await_wake', 'gate'],
      });
    });

    it('wakes every moved request by its event, and each runs v2\'s route', async () => {
      for (let i = 0; i < TOTAL; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, TOTAL - i) }, async (_v, j) => {
          const r = await t.api<{ woken: number }>('POST', '/api/events/move-wake', { body: { key: `k-${i + j}`, data: { by: 'event' } }, key: t.keys.submit });
          expect(r.body.woken, r.text).to.equal(1);
        }));
      }
      await untilCount(t, "SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'move-wait' AND status = 'completed'", [], TOTAL);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM step_runs WHERE step_id = 'added' AND status = 'completed'")).to.equal(TOTAL);
      const one = await t.engine.getRequest(ids[7]!);
      expect(one!.context.after).to.deep.equal({ n: 7, by: 'event', v: 2 });
      expect(one!.runs.map((r) => `${r.stepId}:${r.status}`)).to.deep.equal(['gate:completed', 'await_wake:completed', 'added:completed', 'after:completed']);
    });

    it('a move that loses the rev race is read, checked and tried again, once', async () => {
      // v1 current again for one submit (registering a known definition finds its version), then v2.
      expect(await registerVersion(t, (await t.engine.catalog.get('move-wait', 1)).definition as unknown as Record<string, unknown>)).to.equal(1);
      const w = await t.engine.intake.submit({ pipelineId: 'move-wait', payload: { n: 9001, key: 'race-1' } });
      expect(await registerVersion(t, MOVE_WAIT_V2)).to.equal(v2);
      await untilCount(t, "SELECT COUNT(*) AS n FROM step_runs WHERE request_id = ? AND step_id = 'wait' AND status = 'waiting'", [w.id], 1);
      const real = t.engine.store.migrations;
      let raced = 0;
      // Another commit lands between the check and the move: the first move's guard fails.
      const store = Object.assign(Object.create(real) as typeof real, {
        move: async (moves: Parameters<typeof real.move>[0]) => {
          if (raced++ === 0) await t.engine.store.query('UPDATE requests SET rev = rev + 1 WHERE id = ?', [w.id]);
          return real.move(moves);
        },
      });
      const migrations = new Migrations({ store, pipelines: t.engine.catalog, logger: t.engine.logger });
      const r = await migrations.migrateRequest(w.id, { toVersion: v2, mapping: { wait: 'await_wake' } }, { actor: 'race-test' });
      expect(r.moved).to.equal(true);
      expect(raced).to.equal(2);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM audit_events WHERE request_id = ? AND action = 'migrate'", [w.id])).to.equal(1);
      expect(await scalar(t, "SELECT COUNT(*) AS n FROM step_runs WHERE request_id = ? AND step_id = 'await_wake' AND status = 'waiting'", [w.id])).to.equal(1);
    });

    it('a module result racing a migration commits under the new step id; a stale move is checked again', async () => {
      let release!: () => void;
      g.migrationLatch = new Promise<void>((r) => (release = r));
      const calls = g.migrationLatchCalls ?? 0;
      const r1 = (await t.engine.intake.submit({ pipelineId: 'move-work', payload: { n: 41 } })).id;
      const r2 = (await t.engine.intake.submit({ pipelineId: 'move-work', payload: { n: 42 } })).id;
      for (const end = Date.now() + 10_000; (g.migrationLatchCalls ?? 0) < calls + 2;) {
        if (Date.now() > end) throw new Error('the latch module was not called twice');
        await sleep(10);
      }
      const w2 = await registerVersion(t, MOVE_WORK_V2);
      const [stale] = await t.engine.store.migrations.load([r2]);
      // The module of r1 is still working (held by the latch): its run keeps its lease and moves.
      const moved = await t.api('POST', `/api/requests/${r1}/migrate`, { body: { toVersion: w2, mapping: { work: 'do_work' } } });
      expect(moved.status, moved.text).to.equal(200);
      const open = await t.engine.store.listStepRuns(r1);
      expect(open.map((r) => `${r.stepId}:${r.status}`)).to.deep.equal(['do_work:dispatched']);
      g.migrationLatch = undefined;
      release();
      await untilCount(t, `SELECT COUNT(*) AS n FROM requests WHERE id IN (?, ?) AND status = 'completed'`, [r1, r2], 2);
      const one = await t.engine.getRequest(r1);
      expect(one!.request.version).to.equal(w2);
      expect(one!.runs.map((r) => `${r.stepId}:${r.status}`)).to.deep.equal(['do_work:completed', 'extra:completed', 'done:completed']);
      expect(one!.context.done).to.deep.equal({ result: 41 });
      // r2's result committed first (on v1): a move built before it is refused by the store,
      // and the request, read again, is checked again (it has ended now).
      const to = await t.engine.catalog.get('move-work', w2);
      expect(await t.engine.store.migrations.move([buildMove(stale!, to, { toVersion: w2, mapping: { work: 'do_work' } }, { actor: 'test' }, Date.now())])).to.deep.equal([false]);
      const again = await t.api<{ error: { code: string; details: { problems: unknown[] } } }>('POST', `/api/requests/${r2}/migrate`, { body: { toVersion: w2, mapping: { work: 'do_work' } } });
      expect(again.status, again.text).to.equal(422);
      expect(again.body.error.details.problems).to.deep.equal([{ path: 'status', message: 'the request has ended (completed): only a request that has not ended can move' }]);
      const two = await t.engine.getRequest(r2);
      expect(two!.request.version).to.equal(1);
      expect(two!.context.done).to.deep.equal({ result: 42 });
    });
  });
}

