/**
 * A request's participants are stored with the request itself (src/intake/intake.ts), not
 * with its first step: a customer finds a ticket that has not started yet, whether intake
 * holds it (`maxActive`, a keyed insert) or the engine's admission cap keeps it buffered (a
 * plain insert). Before, such a ticket was invisible to its customer until it started.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { installGate, openGate, removeGate, type Gate } from '../fixtures/admission/gate';
import { startTestEngine, type TestEngine } from '../support/engine';
import { waitFor } from '../support/poll';

const FIXTURES = path.join(__dirname, 'fixtures');
const KEY = { alice: 'alice-key-0000001', bob: 'bob-key-00000001' };

describe('people: participant rows are written with the request, before its first step', function () {
  this.timeout(30_000);
  let t: TestEngine;
  let gate: Gate;

  before(async () => {
    // The slow ticket's step is held by the `gate` module until the end.
    gate = installGate();
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'intake-pipelines'), modulesDir: path.join(__dirname, '..', 'fixtures', 'admission', 'modules'), listen: false,
      extraKeys: `alice=${KEY.alice}:submit,bob=${KEY.bob}:submit`,
      engine: { supervisor: { maxInFlight: 1 } },
    });
  });
  after(async () => {
    openGate(gate);
    await t?.close();
    removeGate(gate);
  });

  const submit = async (pipeline: string, customer: string): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', `/api/pipelines/${pipeline}/requests`, { key: customer === 'alice' ? KEY.alice : KEY.bob, body: { customer: { id: customer } } });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const statusOf = async (id: string): Promise<string> => String((await t.engine.store.query<{ status: string }>('SELECT status FROM requests WHERE id = ?', [id]))[0]!.status);
  const listed = async (key: string, pipeline: string): Promise<string[]> =>
    (await t.api<{ items: Array<{ id: string }> }>('GET', `/api/requests?pipeline=${pipeline}`, { key })).body.items.map((r) => r.id);

  for (const [pipeline, how] of [['queued-ticket', 'held by intake (maxActive: 1, a keyed insert)'], ['slow-ticket', 'kept buffered by the admission cap (a plain insert)']] as const) {
    it(`a ticket ${how} is its customer's at once, and nobody else's`, async () => {
      const first = await submit(pipeline, 'bob');
      // The first ticket has started: waiting an hour (queued-ticket), or held in its module (slow-ticket).
      await waitFor('the first ticket to start', async () => (['running', 'waiting'].includes(await statusOf(first)) ? true : undefined), 10_000, 20);
      const second = await submit(pipeline, 'alice');
      expect(await statusOf(second), 'not started').to.equal('buffered');
      expect(await listed(KEY.alice, pipeline)).to.deep.equal([second]);
      expect((await t.api('GET', `/api/requests/${second}`, { key: KEY.alice })).status).to.equal(200);
      expect((await t.api('GET', `/api/requests/${second}`, { key: KEY.bob })).status, 'not bob\'s').to.equal(404);
      expect(await listed(KEY.bob, pipeline)).to.deep.equal([first]);
      const rows = await t.engine.store.query<{ role: string; actor_id: string }>('SELECT role, actor_id FROM request_participants WHERE request_id = ?', [second]);
      expect(rows.map((r) => `${r.role}:${r.actor_id}`)).to.deep.equal(['customer:alice']);
    });
  }
});
