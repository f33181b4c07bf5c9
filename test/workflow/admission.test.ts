/**
 * Admission control (docs/performance.md#admission-control): an engine keeps at most
 * `maxInFlight` requests in flight; the starts beyond it stay `buffered` in the store and are
 * taken back oldest first as requests end. Nothing is lost or started twice.
 *
 * Its second bound (src/supervisor/admission.ts, docs/performance.md "Admission by the
 * store's backlog"): no new start while `maxBacklog` requests wait for the store. A request
 * whose module is still working waits for nothing of the store, so it does not count: slow
 * modules keep up to `maxInFlight` requests in flight. Fast steps, whose requests always have
 * a commit waiting, are held to the bound; the starts beyond it stay `buffered` and are taken
 * back as the backlog falls.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { installGate, openGate, removeGate, type Gate } from '../fixtures/admission/gate';
import { startTestEngine, type TestEngine } from '../support/engine';
import { waitFor } from '../support/poll';
import type { SupervisorOptions } from '../../src/supervisor/options';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'admission');

/** An engine on the admission fixtures: the `gate` module holds each call until the test opens the gate. */
const gatedEngine = (supervisor: SupervisorOptions): Promise<TestEngine> =>
  startTestEngine({ pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), listen: false, engine: { supervisor } });

describe('admission control: at most maxInFlight requests in flight, the rest wait in the store', function () {
  this.timeout(30_000);
  let t: TestEngine;
  let gate: Gate;

  before(async () => {
    gate = installGate();
    t = await gatedEngine({ maxInFlight: 5 });
  });

  after(async () => {
    openGate(gate);
    await t?.close();
    removeGate(gate);
  });

  it('starts 5 of 20, keeps 15 buffered in the store, then starts them oldest first as slots free; all 20 complete once', async () => {
    // Which requests are read back one by one (the supervisor's load of a request it does not hold).
    const store = t.engine.store;
    const getRequest = store.getRequest.bind(store);
    const readOneByOne: string[] = [];
    store.getRequest = (id, options) => {
      readOneByOne.push(id);
      return getRequest(id, options);
    };
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await t.engine.intake.submit({ pipelineId: 'admission', payload: { i } })).id);
    await waitFor('5 first steps running', () => (gate.running === 5 ? true : undefined), 10_000, 10);
    const stats = () => t.engine.supervisor.admitted;
    await waitFor('15 starts deferred', () => (stats().deferred >= 15 ? true : undefined), 10_000, 10);
    expect(stats().deferred, 'starts turned away while 5 were in flight').to.equal(15);
    expect(gate.started.slice().sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4]);
    // The operator sees it in /metrics: 5 in flight, 15 starts left in the store.
    const metrics = (await t.api<string>('GET', '/metrics', { key: t.keys.admin })).text;
    expect(metrics).to.match(/^conveyor_requests_in_flight 5$/m);
    expect(metrics).to.match(/^conveyor_starts_deferred_total 15$/m);
    const buffered = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'admission' AND status = 'buffered'");
    expect(Number(buffered[0]!.n), 'the excess waits in the store').to.equal(15);

    openGate(gate);
    await waitFor('20 completed', async () => {
      const r = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'admission' AND status = 'completed'");
      return Number(r[0]!.n) === 20 ? true : undefined;
    }, 20_000, 50);
    expect(gate.maxRunning, 'never more than the cap at once').to.be.at.most(5);
    expect(gate.started.slice().sort((a, b) => a - b), 'each first step ran once').to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    expect(stats().pulled, 'the deferred starts, taken back from the store').to.be.at.least(15);
    store.getRequest = getRequest;
    const deferred = gate.started.slice(5).map((i) => ids[i]!);
    expect(readOneByOne.filter((id) => deferred.includes(id)), 'a pulled start uses the row its pull read').to.deep.equal([]);
    // Oldest first: the deferred requests started in the order they were released.
    const rows = await t.engine.store.query<{ id: string; release_at: unknown }>("SELECT id, release_at FROM requests WHERE pipeline_id = 'admission'");
    const releaseOf = new Map(rows.map((r) => [String(r.id), Number(r.release_at)]));
    const later = gate.started.slice(5).map((i) => releaseOf.get(ids[i]!)!);
    expect(later).to.deep.equal([...later].sort((a, b) => a - b));
    const runs = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM step_runs WHERE pipeline_id = 'admission' AND status = 'completed'");
    expect(Number(runs[0]!.n), 'two steps each, once').to.equal(40);
  });

  it('a request with room to start is stored already running, with its first run, in the one transaction that stores it', async () => {
    gate = installGate();
    const batches = t.engine.committer.stats.batches;
    const { id } = await t.engine.intake.submit({ pipelineId: 'admission', payload: { i: 100 } });
    expect(t.engine.committer.stats.batches - batches, 'one transaction for the submit and the start').to.equal(1);
    const [request] = await t.engine.store.query<{ status: string; rev: unknown }>('SELECT status, rev FROM requests WHERE id = ?', [id]);
    expect([request!.status, Number(request!.rev)]).to.deep.equal(['running', 1]);
    // Its first attempt is open in its row (migration 1763800000370): the store's reader shows it.
    const first = await t.engine.store.listStepRuns(id);
    expect(first.map((r) => [r.seq, r.status])).to.deep.equal([[1, 'dispatched']]);
    await waitFor('its first step running', () => (gate.running === 1 ? true : undefined), 10_000, 10);
    openGate(gate);
    await waitFor('completed', async () => {
      const [r] = await t.engine.store.query<{ status: string }>('SELECT status FROM requests WHERE id = ?', [id]);
      return r?.status === 'completed' ? true : undefined;
    }, 10_000, 20);
    const runs = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM step_runs WHERE request_id = ? AND status = 'completed'", [id]);
    expect(Number(runs[0]!.n), 'two steps, once each').to.equal(2);
    expect(gate.started).to.deep.equal([100]);
  });
});

async function count(t: TestEngine, sql: string): Promise<number> {
  const r = await t.engine.store.query<{ n: unknown }>(sql);
  return Number(r[0]!.n);
}

/** How many of these requests completed. */
const completed = (t: TestEngine, ids: string[]): Promise<number> =>
  count(t, `SELECT COUNT(*) AS n FROM requests WHERE id IN (${ids.map((id) => `'${id}'`).join(',')}) AND status = 'completed'`);

describe("admission control: no new start while maxBacklog requests wait for the store", function () {
  this.timeout(30_000);
  let t: TestEngine;
  let gate: Gate;

  before(async () => {
    gate = installGate();
    t = await gatedEngine({ maxInFlight: 100, maxBacklog: 5 });
  });

  after(async () => {
    openGate(gate);
    await t?.close();
    removeGate(gate);
  });

  it('requests whose module is still working do not count: 20 held at once under a backlog bound of 5', async () => {
    for (let i = 0; i < 20; i++) await t.engine.intake.submit({ pipelineId: 'admission', payload: { i } });
    await waitFor('20 first steps held by the module', () => (gate.running === 20 ? true : undefined), 10_000, 10);
    expect(t.engine.supervisor.admitted.inFlight).to.equal(20);
    // The operator sees it in /metrics: all 20 in flight, none of them waiting for the store.
    const metrics = (await t.api<string>('GET', '/metrics', { key: t.keys.admin })).text;
    expect(metrics).to.match(/^conveyor_requests_in_flight 20$/m);
    expect(metrics).to.match(/^conveyor_requests_waiting_for_store 0$/m);
    expect(gate.started.slice().sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    openGate(gate);
    await waitFor('20 completed', async () => ((await count(t, "SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'admission' AND status = 'completed'")) === 20 ? true : undefined), 20_000, 20);
  });

  it('fast steps are held to the bound: of 60 submitted at once, 5 start, the rest wait in the store and all complete once', async () => {
    gate = installGate();
    openGate(gate);
    const before = t.engine.supervisor.admitted;
    const submits = Array.from({ length: 60 }, (_, i) => t.engine.intake.submit({ pipelineId: 'admission', payload: { i: 100 + i } }));
    // The starts are admitted as the submits are taken, in this turn: 5, then the backlog is full.
    expect(t.engine.supervisor.admitted.inFlight, 'starts under way, right after the submits').to.equal(5);
    const stored = await Promise.all(submits);
    expect(stored.filter((r) => r.status === 'running'), 'started in the transaction that stored them').to.have.length(5);
    expect(stored.filter((r) => r.status === 'buffered'), 'stored to wait').to.have.length(55);
    const ids = stored.map((r) => r.id);
    await waitFor('60 completed', async () => ((await completed(t, ids)) === 60 ? true : undefined), 20_000, 20);
    expect(t.engine.supervisor.admitted.pulled - before.pulled, 'the waiting starts, taken back from the store').to.be.at.least(1);
    expect(gate.started.slice().sort((a, b) => a - b), 'each first step ran once').to.deep.equal(Array.from({ length: 60 }, (_, i) => 100 + i));
    const runs = await count(t, `SELECT COUNT(*) AS n FROM step_runs WHERE request_id IN (${ids.map((id) => `'${id}'`).join(',')}) AND status = 'completed'`);
    expect(runs, 'two steps each, once').to.equal(120);
    expect(t.engine.supervisor.admitted.inFlight).to.equal(0);
    expect(t.engine.supervisor.admitted.waitingForStore).to.equal(0);
  });

  it('a burst larger than the bound with a slow module: every request reaches the module, none waits on the store', async () => {
    gate = installGate();
    const submits = Array.from({ length: 30 }, (_, i) => t.engine.intake.submit({ pipelineId: 'admission', payload: { i: 200 + i } }));
    expect(t.engine.supervisor.admitted.inFlight, 'the bound holds the burst at first').to.equal(5);
    const ids = (await Promise.all(submits)).map((r) => r.id);
    // As the first ones' writes are answered, the backlog empties (they wait in the module now), and the rest start.
    await waitFor('30 first steps held by the module', () => (gate.running === 30 ? true : undefined), 10_000, 10);
    expect(t.engine.supervisor.admitted).to.include({ inFlight: 30, waitingForStore: 0 });
    openGate(gate);
    await waitFor('30 completed', async () => ((await completed(t, ids)) === 30 ? true : undefined), 20_000, 20);
  });
});
