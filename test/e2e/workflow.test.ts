import { expect } from 'chai';
import path from 'node:path';
import { startTestEngine, type TestEngine } from '../support/engine';
import { pollUntil } from '../support/poll';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'workflow');

interface View {
  id: string;
  status: string;
  context: Record<string, unknown>;
  error: { code: string; stepId: string } | null;
  currentSteps: Array<{ stepId: string; status: string }>;
  actions: Array<{ code: string; stepId: string; fields: Array<{ name: string }> }>;
}

describe('long-running workflows: actions, waits, delays, loops, resume and stop', () => {
  let t: TestEngine;
  let moderator: string;
  let customer: string;

  before(async () => {
    moderator = 'moderator-key-123';
    customer = 'customer-key-1234';
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      modulesDir: path.join(FIXTURES, 'modules'),
      engine: { supervisor: { sweepIntervalMs: 100 } },
      extraKeys: `${moderator}:moderator+read,${customer}:customer+read`,
    });
  });
  after(() => t?.close());

  const submit = async (payload: Record<string, unknown>, query = ''): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', `/api/pipelines/listing/requests${query}`, { body: payload });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return res.body.id;
  };
  const get = async (id: string, key?: string): Promise<View> => (await t.api<View>('GET', `/api/requests/${id}`, key ? { key } : {})).body;
  const until = async (id: string, pred: (v: View) => boolean, ms = 5000): Promise<View> => {
    return pollUntil(() => get(id), pred, { timeoutMs: ms, everyMs: 40, failure: (v) => `request ${id} stuck at ${v.status} ${JSON.stringify(v.currentSteps)}` });
  };
  const steps = async (id: string): Promise<string[]> =>
    (await t.engine.store.listStepRuns(id)).map((r) => `${r.stepId}:${r.status}`);
  const act = (id: string, code: string, key: string, data?: Record<string, unknown>) =>
    t.api<{ error?: { code: string } } & View>('POST', `/api/requests/${id}/actions/${code}`, { key, body: data ? { data } : {} });

  it('skips the confirmation when no "when" entry holds, and completes after the sale event', async () => {
    const id = await submit({ price: 50, item: 'sku-1', ok: true });
    await until(id, (v) => v.status === 'waiting' && v.currentSteps[0]?.stepId === 'wait-sale');
    const ev = await t.api<{ woken: number }>('POST', '/api/events/sale', { body: { key: 'sku-1', data: { buyer: 'ann' } } });
    expect(ev.body.woken).to.equal(1);
    const v = await until(id, (x) => x.status === 'completed');
    expect(v.context['post-sale']).to.deep.include({ buyer: 'ann' });
    expect(v.context.confirm).to.deep.equal({ skipped: true, reason: 'no "when" entry held' });
    expect(await steps(id)).to.deep.equal([
      'prepare:completed', 'confirm:completed', 'check:completed', 'cooldown:completed', 'wait-sale:completed', 'post-sale:completed', 'done:completed',
    ]);
    const cooldown = (await t.engine.store.listStepRuns(id)).find((r) => r.stepId === 'cooldown')!;
    expect(cooldown.finishedAt! - cooldown.startedAt).to.be.at.least(140);
  });

  it('asks for confirmation in semi mode; offers each caller only the actions its roles allow', async () => {
    const id = await submit({ price: 50, item: 'sku-2', ok: true }, '?mode=semi');
    const v = await until(id, (x) => x.status === 'waiting' && x.currentSteps[0]?.stepId === 'confirm');
    expect(v.actions.map((a) => a.code).sort()).to.deep.equal(['approve', 'edit', 'reject']); // admin: all visible ones
    // A waiting request is only rows: the supervisor keeps no state for it in memory.
    expect(t.engine.supervisor.cachedCount).to.equal(0);
    const asModerator = await get(id, moderator);
    expect(asModerator.actions.map((a) => a.code).sort()).to.deep.equal(['approve', 'edit', 'reject']);
    expect((await get(id, customer)).actions).to.deep.equal([]);
    expect(asModerator.actions.find((a) => a.code === 'edit')!.fields.map((f) => f.name)).to.deep.equal(['price']);
  });

  it('refuses a wrong role (403), an action not offered (409) and missing data (422), audits each, and moves nothing', async () => {
    const id = await submit({ price: 500, item: 'sku-3', ok: true });
    await until(id, (x) => x.status === 'waiting');
    const before = await steps(id);
    const forbidden = await act(id, 'reject', customer);
    expect(forbidden.status).to.equal(403);
    expect(forbidden.body.error?.code).to.equal('CONVEYOR_ERR_FORBIDDEN');
    const hidden = await act(id, 'vip', moderator);
    expect(hidden.status).to.equal(409);
    const unknown = await act(id, 'publish-now', moderator);
    expect(unknown.status).to.equal(409);
    expect(unknown.body.error?.code).to.equal('CONVEYOR_ERR_ACTION_NOT_OFFERED');
    const missing = await act(id, 'edit', moderator, {});
    expect(missing.status).to.equal(422);
    const extra = await act(id, 'edit', moderator, { price: 1, discount: 5 });
    expect(extra.status).to.equal(422);
    expect(await steps(id)).to.deep.equal(before);
    const audit = await t.api<{ items: Array<{ action: string; outcome: string; actor: string }> }>('GET', `/api/requests/${id}/audit`);
    expect(audit.body.items.map((a) => `${a.action}:${a.outcome}`)).to.deep.equal([
      'action:reject:forbidden', 'action:vip:not_offered', 'action:publish-now:not_offered', 'action:edit:invalid', 'action:edit:invalid',
    ]);
  });

  it('edits params: the edit routes back with the new price, recorded with who did it', async () => {
    const id = await submit({ price: 500, item: 'sku-4', ok: true });
    await until(id, (x) => x.status === 'waiting');
    const res = await act(id, 'edit', moderator, { price: 90 });
    expect(res.status).to.equal(200);
    const v = await until(id, (x) => x.status === 'waiting' && (x.context.prepare as { price: unknown } | undefined) !== undefined && x.currentSteps[0]?.stepId === 'confirm' && Boolean(x.context.confirm));
    expect(v.context.confirm).to.deep.include({ action: 'edit', by: 'env#4', data: { price: 90, by: 'env#4' } });
    const runs = await t.engine.store.listStepRuns(id);
    expect(runs.map((r) => r.stepId)).to.deep.equal(['prepare', 'confirm', 'prepare', 'confirm']);
  });

  it('rejects: the request stops, and later actions get 409', async () => {
    const id = await submit({ price: 500, item: 'sku-5', ok: true });
    await until(id, (x) => x.status === 'waiting');
    expect((await act(id, 'reject', moderator)).status).to.equal(200);
    const v = await until(id, (x) => x.status === 'stopped');
    expect(v.context.rejected).to.deep.equal({ status: 'stopped', reason: 'rejected by the moderator' });
    expect((await act(id, 'approve', moderator)).status).to.equal(409);
  });

  it('takes the timeout route when no sale event comes in time', async () => {
    const id = await submit({ price: 10, item: 'sku-6', ok: true });
    const v = await until(id, (x) => x.status === 'completed', 6000);
    expect(v.context.expired).to.deep.equal({ expired: true, note: null });
    const runs = await t.engine.store.listStepRuns(id);
    const wait = runs.find((r) => r.stepId === 'wait-sale')!;
    expect(wait.status).to.equal('failed');
    expect((wait.error as { code: string }).code).to.equal('CONVEYOR_ERR_WAIT_TIMEOUT');
  });

  it('loops back in auto mode at most max times', async () => {
    const id = await submit({ price: 10, item: 'sku-7', ok: true }, '?mode=auto');
    for (let round = 0; round < 2; round++) {
      await until(id, (x) => x.status === 'waiting' && x.currentSteps[0]?.stepId === 'wait-sale');
      await t.api('POST', '/api/events/sale', { body: { key: 'sku-7', data: { buyer: `b${round}` } } });
      await until(id, (x) => x.currentSteps[0]?.stepId !== 'wait-sale' || x.status !== 'waiting');
    }
    const v = await until(id, (x) => x.status === 'completed');
    expect(v.context.loop).to.deep.equal({ iteration: 2, max: 1 });
    expect((await steps(id)).filter((s) => s.startsWith('prepare')).length).to.equal(2);
  });

  it('goes to error_stop, then resume with edited params retries the failed step and continues', async () => {
    const id = await submit({ price: 10, item: 'sku-8', ok: false });
    const stopped = await until(id, (x) => x.status === 'error_stop');
    expect(stopped.error).to.include({ code: 'CONVEYOR_ERR_NON_RETRYABLE', stepId: 'check' });
    const readOnly = await t.api('POST', `/api/requests/${id}/resume`, { key: t.keys.read, body: {} });
    expect(readOnly.status).to.equal(403);
    const res = await t.api<View>('POST', `/api/requests/${id}/resume`, { body: { params: { ok: true } } });
    expect(res.status).to.equal(200);
    await until(id, (x) => x.status === 'waiting' && x.currentSteps[0]?.stepId === 'wait-sale');
    const runs = await t.engine.store.listStepRuns(id);
    const checks = runs.filter((r) => r.stepId === 'check');
    expect(checks.map((r) => r.status)).to.deep.equal(['failed', 'completed']);
    expect(checks[1]!.params).to.deep.equal({ ok: true });
    expect((await t.api('POST', `/api/requests/${id}/resume`, { body: {} })).status).to.equal(409);
    const stop = await t.api<View>('POST', `/api/requests/${id}/stop`, { body: { reason: 'no longer for sale' } });
    expect(stop.status).to.equal(200);
    expect(stop.body.status).to.equal('stopped');
    expect((await t.api('POST', `/api/requests/${id}/stop`, { body: {} })).status).to.equal(409);
    const audit = await t.api<{ items: Array<{ action: string; outcome: string }> }>('GET', `/api/requests/${id}/audit`);
    expect(audit.body.items.map((a) => `${a.action}:${a.outcome}`)).to.deep.equal(['resume:accepted', 'resume:conflict', 'stop:accepted', 'stop:conflict']);
  });

  it('waits by polling a module until it reports done', async () => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/polling/requests', { body: { item: 'p-1' } });
    const v = await until(res.body.id, (x) => x.status === 'completed');
    expect(v.context.after).to.deep.equal({ buyer: 'polled-buyer' });
    // Three polls, one step run: the polls are counted on it and listed in its poll history.
    const runs = (await t.engine.store.listStepRuns(res.body.id)).filter((r) => r.stepId === 'wait-sale');
    expect(runs.map((r) => [r.status, r.polls, r.endedBy])).to.deep.equal([['completed', 3, 'poll']]);
    const history = await t.api<{ items: Array<{ n: number; output: { done: boolean } }> }>('GET', `/api/requests/${res.body.id}/steps/${runs[0]!.id}/polls`);
    expect(history.body.items.map((p) => [p.n, p.output.done])).to.deep.equal([[1, false], [2, false], [3, true]]);
  });

  it('wakes a polling wait by the webhook too', async () => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/polling/requests?test=1', { body: { item: 'p-2', neverSold: true } });
    // An event only wakes a wait that exists: wait until the request reached it.
    await until(res.body.id, (x) => x.currentSteps[0]?.stepId === 'wait-sale');
    const ev = await t.api<{ woken: number }>('POST', '/api/events/sale', { body: { key: 'p-2', data: { buyer: 'hooked' } } });
    expect(ev.body.woken).to.equal(1);
    const v = await until(res.body.id, (x) => x.status === 'completed');
    expect(v.context.after).to.deep.equal({ buyer: 'hooked' });
    // The woken wait's row: it ended by the event (a field of its own), after it started.
    const steps = await t.api<{ items: Array<{ stepId: string; transport: string; endedBy: string; startedAt: string; finishedAt: string; durationMs: number }> }>('GET', `/api/requests/${res.body.id}/steps`);
    const wait = steps.body.items.find((s) => s.stepId === 'wait-sale')!;
    expect(wait.endedBy).to.equal('event');
    expect(Date.parse(wait.finishedAt) - Date.parse(wait.startedAt)).to.equal(wait.durationMs).and.to.be.at.least(0);
  });

  it('resumes a request halted by maxSteps only with a larger budget, and it then finishes', async () => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/budget/requests', { body: {} });
    const halted = await until(res.body.id, (x) => x.status === 'error_stop');
    expect(halted.error).to.include({ code: 'CONVEYOR_ERR_MAX_STEPS', stepId: 'again' });
    const refused = await t.api<{ error: { code: string; message: string } }>('POST', `/api/requests/${res.body.id}/resume`, { body: {} });
    expect(refused.status).to.equal(409);
    expect(refused.body.error.message).to.match(/resume it with a larger "maxSteps"/);
    const resumed = await t.api<View>('POST', `/api/requests/${res.body.id}/resume`, { body: { maxSteps: 20 } });
    expect(resumed.status, JSON.stringify(resumed.body)).to.equal(200);
    const done = await until(res.body.id, (x) => x.status === 'completed');
    expect(done.context.again).to.deep.equal({ iteration: 4, max: 3 });
    // work ×4 and again ×4: no step ran twice for the halt.
    const runs = await t.engine.store.listStepRuns(res.body.id);
    expect(runs.map((r) => r.stepId)).to.deep.equal(['work', 'again', 'work', 'again', 'work', 'again', 'work', 'again']);
  });

  it('logs a delay step with the time it waited', async () => {
    const id = await submit({ item: 'delay-1', price: 10, ok: true });
    await until(id, (x) => x.currentSteps.some((s) => s.stepId === 'wait-sale'));
    const rows = (await t.engine.store.listStepRuns(id)).filter((r) => r.stepId === 'cooldown');
    expect(rows).to.have.length(1);
    expect(rows[0]!.status).to.equal('completed');
    expect(rows[0]!.durationMs).to.equal(rows[0]!.finishedAt! - rows[0]!.startedAt).and.to.be.at.least(150);
  });
});
