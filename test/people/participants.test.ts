/**
 * Participants, per-request rights, read scoping, `GET /api/actions` and redaction (issue 12
 * §2), through the HTTP API on the fixture pipeline `ticket` (customer and watchers from the
 * payload, the agent from a step output; `triage` a global role). Every refusal is audited
 * and leaves the request and its step log as they were.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { startTestEngine, type ErrorBody, type TestEngine } from '../support/engine';
import { requestClient, type RequestView } from '../workflow/support';

const FIXTURES = path.join(__dirname, 'fixtures');
const KEY = {
  alice: 'alice-key-0000001', bob: 'bob-key-00000001', triage: 'triage-key-000001',
  agent1: 'agent1-key-000001', agent2: 'agent2-key-000001', wendy: 'wendy-key-0000001', reader: 'reader-key-000001',
  support: 'support-key-00001',
};
const PHONE = '+7 900 111-22-33';

function ticket(customer: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { customer: { id: customer, name: 'Ann', phone: PHONE }, watchers: [], hidePhone: true, ...over };
}

describe('people: participants, scoped reads, GET /api/actions and redaction', function () {
  this.timeout(60_000);
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;

  before(async () => {
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      extraKeys: [
        `alice=${KEY.alice}:submit`, `bob=${KEY.bob}:submit`, `triage=${KEY.triage}:triage`,
        // "agent" is a participant role of `ticket`: as a key's role it grants nothing there.
        `agent1=${KEY.agent1}:agent`, `agent2=${KEY.agent2}:agent+read`, `wendy=${KEY.wendy}:submit`, `reader=${KEY.reader}:read`, `support=${KEY.support}:read+triage`,
      ].join(','),
    });
    c = requestClient(t);
  });
  after(() => t?.close());

  const submit = async (key: string, body: Record<string, unknown>): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', { key, body });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const status = async (key: string, route: string): Promise<number> => (await t.api('GET', route, { key })).status;
  const rows = async (id: string): Promise<string[]> =>
    (await t.engine.store.query<{ role: string; actor_id: string }>('SELECT role, actor_id FROM request_participants WHERE request_id = ? ORDER BY role, actor_id', [id]))
      .map((r) => `${r.role}:${r.actor_id}`);
  /** Everything a refused call must leave as it was: status, step log, open steps. */
  const snapshot = async (id: string) => ({ view: (await c.get(id)).status, log: await c.log(id) });

  it('a customer reads only its own tickets; others get 404 on the request, its steps and its audit', async () => {
    const a = await submit(KEY.alice, ticket('alice'));
    const b = await submit(KEY.bob, ticket('bob'));
    await c.waitingAt(a, 'open');
    await c.waitingAt(b, 'open');
    for (const route of [`/api/requests/${a}`, `/api/requests/${a}/steps`, `/api/requests/${a}/audit`]) {
      expect(await status(KEY.alice, route), route).to.equal(200);
      expect(await status(KEY.bob, route), route).to.equal(404);
      // A key whose role has the participant role's name is no participant either.
      expect(await status(KEY.agent1, route), route).to.equal(404);
      expect(await status(KEY.reader, route), route).to.equal(200);
    }
    // The 404 is the one an unknown id gets, so ids do not leak.
    const hidden = await t.api<ErrorBody>('GET', `/api/requests/${a}`, { key: KEY.bob });
    const unknown = await t.api<ErrorBody>('GET', '/api/requests/01a20185-0000-7000-8000-000000000000', { key: KEY.bob });
    expect(hidden.body.error.code).to.equal(unknown.body.error.code);
    // Who takes part, and who may act now (alice may cancel; role triage may assign).
    expect(await rows(a)).to.deep.equal(['customer:alice', 'offered:alice', 'offered:role:triage']);
  });

  it('the search lists only the caller\'s requests, filtered in the query, with cursor paging intact', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push(await submit(KEY.wendy, ticket('wendy', { watchers: i % 2 === 0 ? ['wendy', 'bob'] : [] })));
    // wendy is customer and watcher of some: each still appears once.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const page = await t.api<{ items: Array<{ id: string }>; nextCursor: string | null }>('GET', `/api/requests?limit=2${q}`, { key: KEY.wendy });
      expect(page.status, page.text).to.equal(200);
      expect(page.body.items.length).to.be.at.most(2);
      seen.push(...page.body.items.map((r) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).to.deep.equal([...mine].reverse());
    // bob watches three of them, plus his own tickets.
    const bobs = await t.api<{ items: Array<{ id: string }> }>('GET', '/api/requests?limit=100', { key: KEY.bob });
    expect(bobs.body.items.map((r) => r.id)).to.include.members([mine[0], mine[2], mine[4]]);
    expect(bobs.body.items.map((r) => r.id)).to.not.include.members([mine[1], mine[3]]);
    // ?participant= is one's own id without `read`; anyone's with it.
    expect((await t.api<ErrorBody>('GET', '/api/requests?participant=wendy', { key: KEY.bob })).status).to.equal(403);
    const byReader = await t.api<{ items: Array<{ id: string }> }>('GET', '/api/requests?participant=wendy&limit=100', { key: KEY.reader });
    expect(byReader.body.items.map((r) => r.id)).to.deep.equal([...mine].reverse());
    const withStatus = await t.api<{ items: Array<{ id: string }> }>('GET', '/api/requests?participant=wendy&status=completed', { key: KEY.reader });
    expect(withStatus.body.items).to.deep.equal([]);
  });

  it('only this request\'s participant may take a participant action: refused ones are audited and change nothing', async () => {
    const a = await submit(KEY.alice, ticket('alice'));
    await c.waitingAt(a, 'open');
    const before = await snapshot(a);
    // bob cannot see it: 404. agent2 has `read` but is not its customer: 403.
    const byBob = await c.act(a, 'cancel', KEY.bob);
    expect(byBob.status, byBob.text).to.equal(404);
    const byReader = await c.act(a, 'cancel', KEY.agent2);
    expect(byReader.status, byReader.text).to.equal(403);
    expect(byReader.body.error!.message).to.include("only by this request's customer");
    // admin may take global-role actions, never a participant's.
    expect((await c.act(a, 'cancel', t.keys.admin)).status).to.equal(403);
    expect(await snapshot(a)).to.deep.equal(before);
    const audit = await c.audit(a);
    expect(audit).to.have.length(3);
    expect(audit[0]).to.match(/^bob action:cancel:forbidden$/);
    expect(audit[1]).to.match(/^agent2 action:cancel:forbidden$/);

    // triage (a global role, no `read`) sees the ticket because an action is offered to it.
    expect(await status(KEY.triage, `/api/requests/${a}`)).to.equal(200);
    const assign = await c.act(a, 'assign', KEY.triage, { agent: 'agent1' });
    expect(assign.status, assign.text).to.equal(200);
    await c.waitingAt(a, 'work');
    expect(await rows(a)).to.deep.equal(['agent:agent1', 'customer:alice', 'offered:agent1', 'offered:alice', 'offered:role:triage']);

    // agent2 (read, not the agent) may not resolve; agent1 may.
    const wrong = await c.act(a, 'resolve', KEY.agent2);
    expect(wrong.status, wrong.text).to.equal(403);
    expect((await c.get(a)).status).to.equal('waiting');
    // Reassigning moves the right at once: agent1 loses it (and the ticket) and agent2 gains it.
    expect((await c.act(a, 'reassign', KEY.triage, { agent: 'agent2' })).status).to.equal(200);
    await c.until(a, (v) => v.status === 'waiting' && (v.context.assign as { agent: string }).agent === 'agent2');
    expect(await rows(a)).to.deep.equal(['agent:agent2', 'customer:alice', 'offered:agent2', 'offered:alice', 'offered:role:triage']);
    expect((await c.act(a, 'resolve', KEY.agent1)).status).to.equal(404);
    const done = await c.act(a, 'resolve', KEY.agent2);
    expect(done.status, done.text).to.equal(200);
    const end = await c.until(a, (v) => v.status === 'completed');
    expect((end.context.work as { data: { resolvedBy: string } }).data.resolvedBy).to.equal('agent2');
    // Finished: no action is offered to triage any more, so it no longer sees the ticket.
    expect(await rows(a)).to.deep.equal(['agent:agent2', 'customer:alice']);
    expect(await status(KEY.triage, `/api/requests/${a}`)).to.equal(404);
    expect(await status(KEY.alice, `/api/requests/${a}`)).to.equal(200);
    const outcomes = (await c.audit(a)).filter((x) => x.includes('resolve'));
    expect(outcomes).to.deep.equal(['agent2 action:resolve:forbidden', 'agent1 action:resolve:forbidden', 'agent2 action:resolve:accepted']);
  });

  it('GET /api/actions lists what each caller may take now, across requests', async () => {
    const x = await submit(KEY.alice, ticket('alice', { watchers: ['wendy'] }));
    await c.waitingAt(x, 'open');
    type Items = { items: Array<{ requestId: string; pipeline: string; stepId: string; code: string; label: string | null; fields: Array<{ name: string }> }>; nextCursor: string | null };
    const ofAlice = await t.api<Items>('GET', '/api/actions?limit=500', { key: KEY.alice });
    expect(ofAlice.status, ofAlice.text).to.equal(200);
    expect(ofAlice.body.items.filter((i) => i.requestId === x)).to.deep.equal([{ requestId: x, pipeline: 'ticket', stepId: 'open', code: 'cancel', label: 'Cancel', fields: [] }]);
    const ofTriage = await t.api<Items>('GET', '/api/actions?limit=500', { key: KEY.triage });
    expect(ofTriage.body.items.find((i) => i.requestId === x)).to.deep.include({ code: 'assign', stepId: 'open' });
    expect(ofTriage.body.items.every((i) => i.code === 'assign' || i.code === 'reassign')).to.equal(true);
    // wendy watches it but may do nothing at `open`; bob has nothing on it.
    expect((await t.api<Items>('GET', '/api/actions', { key: KEY.wendy })).body.items.filter((i) => i.requestId === x)).to.deep.equal([]);
    expect((await t.api<Items>('GET', '/api/actions', { key: KEY.bob })).body.items.filter((i) => i.requestId === x)).to.deep.equal([]);
    await c.act(x, 'assign', KEY.triage, { agent: 'agent1' });
    await c.waitingAt(x, 'work');
    const ofWendy = await t.api<Items>('GET', '/api/actions', { key: KEY.wendy });
    expect(ofWendy.body.items.filter((i) => i.requestId === x).map((i) => i.code)).to.deep.equal(['note']);
    const ofAgent = await t.api<Items>('GET', '/api/actions', { key: KEY.agent1 });
    expect(ofAgent.body.items.filter((i) => i.requestId === x).map((i) => i.code)).to.deep.equal(['resolve']);
    // Paging: one request per page for triage, every page a real one.
    const page1 = await t.api<Items>('GET', '/api/actions?limit=1', { key: KEY.triage });
    expect(page1.body.items.length).to.be.greaterThan(0);
    expect(page1.body.nextCursor).to.be.a('string');
  });

  it('masks a redacted value in every view its roles get, only while its condition holds', async () => {
    const hidden = await submit(KEY.alice, ticket('alice'));
    const shown = await submit(KEY.alice, ticket('alice', { hidePhone: false }));
    for (const id of [hidden, shown]) {
      await c.waitingAt(id, 'open');
      await c.act(id, 'assign', KEY.triage, { agent: 'agent1' });
      await c.waitingAt(id, 'work');
    }
    const view = async (id: string, key: string): Promise<RequestView> => (await t.api<RequestView>('GET', `/api/requests/${id}`, { key })).body;
    const steps = async (id: string, key: string): Promise<string> => (await t.api('GET', `/api/requests/${id}/steps`, { key })).text;
    // The agent: the payload's phone and the step that quotes it are masked.
    const byAgent = await view(hidden, KEY.agent1);
    expect((byAgent.context.payload as { customer: { phone: string; name: string } }).customer).to.deep.equal({ id: 'alice', name: 'Ann', phone: '[REDACTED]' });
    expect((byAgent.context.assign as { brief: string }).brief).to.equal('Call Ann on [REDACTED]');
    expect(JSON.stringify(byAgent)).to.not.include(PHONE);
    expect(await steps(hidden, KEY.agent1)).to.not.include(PHONE);
    expect(await steps(hidden, KEY.agent1)).to.include('[REDACTED]');
    // triage (a global role named in `from`) too, in the audit as well.
    expect(JSON.stringify(await view(hidden, KEY.triage))).to.not.include(PHONE);
    // The customer and a plain reader see it; so does the agent where hidePhone is false.
    expect(JSON.stringify(await view(hidden, KEY.alice))).to.include(PHONE);
    expect(JSON.stringify(await view(hidden, KEY.reader))).to.include(PHONE);
    expect(JSON.stringify(await view(shown, KEY.agent1))).to.include(PHONE);
    expect(await steps(shown, KEY.agent1)).to.include(PHONE);
    // The step search (global `read`) masks for a global role named in `from` too.
    const search = async (key: string): Promise<string> => (await t.api('GET', '/api/steps?pipeline=ticket&step=assign&limit=500', { key })).text;
    expect(await search(KEY.support)).to.include('Call Ann on [REDACTED]').and.to.include(`Call Ann on ${PHONE}`);
    expect((await search(KEY.support)).split(`Call Ann on ${PHONE}`).length - 1, 'only the ticket without hidePhone shows it').to.equal(1);
    expect(await search(KEY.reader)).to.not.include('[REDACTED]');
    // Masking is a view: the stored request keeps the value.
    expect(((await t.engine.getRequest(hidden))!.request.payload as { customer: { phone: string } }).customer.phone).to.equal(PHONE);
  });
});
