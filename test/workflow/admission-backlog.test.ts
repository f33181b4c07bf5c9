/**
 * Admission control's second bound (src/supervisor/admission.ts, docs/performance.md
 * "Admission by the store's backlog"): no new start while `maxBacklog` requests wait for the
 * store. A request whose module is still working waits for nothing of the store, so it does
 * not count: slow modules keep up to `maxInFlight` requests in flight. Fast steps, whose
 * requests always have a commit waiting, are held to the bound; the starts beyond it stay
 * `buffered` and are taken back as the backlog falls. Nothing is lost or started twice.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { installGate, openGate, removeGate, type Gate } from '../fixtures/admission/gate';
import { startTestEngine, type TestEngine } from '../support/engine';
import { waitFor } from '../support/poll';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'admission');

async function count(t: TestEngine, sql: string): Promise<number> {
  const r = await t.engine.store.query<{ n: unknown }>(sql);
  return Number(r[0]!.n);
}

describe("admission control: no new start while maxBacklog requests wait for the store", function () {
  this.timeout(30_000);
  let t: TestEngine;
  let gate: Gate;

  before(async () => {
    gate = installGate();
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), listen: false,
      engine: { supervisor: { maxInFlight: 100, maxBacklog: 5 } },
    });
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
    const ids = (await Promise.all(submits)).map((r) => r.id);
    await waitFor('60 completed', async () => ((await count(t, `SELECT COUNT(*) AS n FROM requests WHERE id IN (${ids.map((id) => `'${id}'`).join(',')}) AND status = 'completed'`)) === 60 ? true : undefined), 20_000, 20);
    const after = t.engine.supervisor.admitted;
    expect(after.deferred - before.deferred, 'starts turned away while the backlog was full').to.be.at.least(55);
    expect(after.pulled - before.pulled, 'and taken back from the store').to.be.at.least(55);
    expect(gate.started.slice().sort((a, b) => a - b), 'each first step ran once').to.deep.equal(Array.from({ length: 60 }, (_, i) => 100 + i));
    const runs = await count(t, `SELECT COUNT(*) AS n FROM step_runs WHERE request_id IN (${ids.map((id) => `'${id}'`).join(',')}) AND status = 'completed'`);
    expect(runs, 'two steps each, once').to.equal(120);
    expect(t.engine.supervisor.admitted.inFlight).to.equal(0);
  });
});
