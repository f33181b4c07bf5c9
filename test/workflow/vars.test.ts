/**
 * Process variables through the HTTP API (`test/fixtures/vars`): `GET /api/requests/:id`
 * shows `vars`, each run in the step log shows what it assigned, templates and conditions
 * read `vars.<name>`, and an assign that would pass the 256 KiB limit stops the request with
 * CONVEYOR_ERR_VARS_TOO_LARGE, leaving `vars` as they were.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requestClient, type RequestView } from './support';

const EXECUTOR = 'executor-key-vars01';
interface StepRow { stepId: string; status: string; params: Record<string, unknown> | null; output: unknown; error: { code: string; message: string } | null; assigned: Record<string, unknown> | null }

describe('process variables through the API', function () {
  this.timeout(60_000);
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;

  before(async () => {
    t = await startTestEngine({
      pipelinesDir: path.join(__dirname, '..', 'fixtures', 'vars', 'pipelines'),
      modulesDir: path.join(__dirname, '..', 'fixtures', 'workflow', 'modules'),
      extraKeys: `${EXECUTOR}:executor+read`,
      engine: { supervisor: { sweepIntervalMs: 100 } },
    });
    c = requestClient(t);
  });
  after(async () => {
    await t?.close();
  });

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/vars-order/requests', { body });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const view = (id: string): Promise<RequestView> => c.get(id);
  const steps = async (id: string): Promise<StepRow[]> => {
    const res = await t.api<{ items: StepRow[] }>('GET', `/api/requests/${id}/steps`);
    expect(res.status, res.text).to.equal(200);
    return res.body.items;
  };

  it('vars start empty, each step assigns after its output, templates and conditions read them, the log shows each assign', async () => {
    const id = await submit({ price: 1500, blob: 'small' });
    await c.waitingAt(id, 'take');
    const before = await view(id);
    expect(before.vars).to.deep.equal({});
    expect(before.context).to.not.have.property('vars');

    expect((await c.act(id, 'take', EXECUTOR, { note: 'в 10:00' })).status).to.equal(200);
    const done = await c.until(id, (v) => v.status === 'completed');
    expect(done.vars).to.deep.equal({ executor: null, status: 'quoted', note: 'в 10:00', price: 1500, flagged: true, blob: 'small' });
    expect(done.context).to.not.have.property('vars');
    // `note` rendered the vars as they were when it ran: the executor (env#4), then cleared by its own assign.
    expect(done.context.note).to.deep.equal({ text: 'Исполнитель env#4, цена 1500' });

    const log = await steps(id);
    expect(log.map((s) => `${s.stepId}:${s.status}`)).to.deep.equal(['take:completed', 'quote:completed', 'expensive:completed', 'note:completed', 'grow:completed', 'end:completed']);
    const byStep = Object.fromEntries(log.map((s) => [s.stepId, s]));
    expect(byStep.take!.assigned).to.deep.equal({ executor: 'env#4', status: 'taken', note: 'в 10:00' });
    expect(byStep.quote!.params).to.deep.equal({ price: 1500, executor: 'env#4' });
    expect(byStep.quote!.assigned).to.deep.equal({ price: 1500 });
    expect(byStep.expensive!.assigned).to.deep.equal({ flagged: true });
    expect(byStep.note!.assigned).to.deep.equal({ status: 'quoted', executor: null });
    expect(byStep.end!.assigned).to.equal(null);
    // The stored request agrees with the view.
    expect((await t.engine.store.getRequest(id))!.vars).to.deep.equal(done.vars);
  });

  it('a cheap order skips the route that reads vars.price > 1000', async () => {
    const id = await submit({ price: 900, blob: 'b' });
    await c.waitingAt(id, 'take');
    expect((await c.act(id, 'take', EXECUTOR)).status).to.equal(200);
    const done = await c.until(id, (v) => v.status === 'completed');
    expect(done.vars).to.deep.include({ price: 900, status: 'quoted' });
    expect(done.vars).to.not.have.property('flagged');
    expect(await c.log(id)).to.deep.equal(['take:completed', 'quote:completed', 'note:completed', 'grow:completed', 'end:completed']);
  });

  it('an assign over 256 KiB fails the step for good: error_stop with CONVEYOR_ERR_VARS_TOO_LARGE, vars unchanged, the output kept', async () => {
    const blob = 'x'.repeat(300 * 1024);
    const id = await submit({ price: 100, blob });
    await c.waitingAt(id, 'take');
    expect((await c.act(id, 'take', EXECUTOR)).status).to.equal(200);
    const stopped = await c.until(id, (v) => v.status === 'error_stop');
    expect(stopped.error).to.include({ code: 'CONVEYOR_ERR_VARS_TOO_LARGE', stepId: 'grow' });
    expect(stopped.error!.message).to.equal('assign of step "grow" would make vars 307267 bytes, over the limit of 262144');
    expect(stopped.vars).to.deep.equal({ executor: null, status: 'quoted', note: '', price: 100 });
    const grow = (await steps(id)).filter((s) => s.stepId === 'grow');
    expect(grow).to.have.length(1);
    expect(grow[0]).to.deep.include({ status: 'failed', assigned: null });
    expect(grow[0]!.error).to.include({ code: 'CONVEYOR_ERR_VARS_TOO_LARGE' });
    expect((grow[0]!.output as { blob: string }).blob).to.have.length(blob.length);
  });
});
