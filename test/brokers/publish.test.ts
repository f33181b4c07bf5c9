/**
 * Publish steps against the real RabbitMQ and NATS JetStream (README "Publish steps"): the
 * step completes once the broker confirmed the message, whose id is the step's idempotency
 * key; one message per step activation; JetStream drops a repeated id; an unknown exchange or
 * an unroutable message fails the step.
 */
import { expect } from 'chai';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requireAmqp, requireNats } from '../support/services';
import { cleanupTmpDirs } from '../support/tmp';
import { until } from '../intake/helpers';
import { FIXTURE_MODULES, openAmqp, openNats, unique, writePipelines, type Amqp, type Nats } from './helpers';

describe('publish steps (real RabbitMQ and NATS JetStream)', function () {
  this.timeout(90_000);
  let amqp: Amqp;
  let nats: Nats;
  let t: TestEngine;
  const exchange = unique('t.orders');
  const queue = unique('t.erp-orders');
  const stream = unique('TPUB').replace(/-/g, '_');
  const subject = `${stream.toLowerCase()}.orders.created`;
  const ids = { amqp: unique('pub-amqp'), nats: unique('pub-nats'), missing: unique('pub-missing'), unroutable: unique('pub-unroutable') };
  const N = 40;

  before(async () => {
    const amqpUrl = await requireAmqp();
    const natsUrl = await requireNats();
    amqp = await openAmqp(amqpUrl);
    nats = await openNats(natsUrl);
    await amqp.ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await amqp.ch.assertQueue(queue, { durable: false });
    await amqp.ch.bindQueue(queue, exchange, 'order.created');
    await nats.jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.orders.>`], duplicate_window: 60_000_000_000 });
    const body = { event: 'order.created', order_id: '{{ payload.order_id }}', items: '{{ payload.items }}', at: '{{ request.id }}' };
    const steps = (publish: Record<string, unknown>) => ({ send: { kind: 'publish', ...publish, body, headers: { 'x-order': '{{ payload.order_id }}' }, retry: { attempts: 1 } } });
    t = await startTestEngine({
      pipelinesDir: writePipelines([
        { id: ids.amqp, start: 'send', steps: steps({ amqp: { exchange, routingKey: 'order.created' } }) },
        { id: ids.nats, start: 'send', steps: steps({ nats: { subject } }) },
        { id: ids.missing, start: 'send', steps: steps({ amqp: { exchange: unique('t.nowhere'), routingKey: 'x' } }) },
        { id: ids.unroutable, start: 'send', steps: steps({ amqp: { exchange, routingKey: 'nobody.listens' } }) },
      ]),
      modulesDir: FIXTURE_MODULES,
      env: { AMQP_URL: amqpUrl, NATS_URL: natsUrl },
    });
  });

  after(async () => {
    await t?.close();
    await amqp.ch.deleteQueue(queue).catch(() => undefined);
    await amqp.ch.deleteExchange(exchange).catch(() => undefined);
    await amqp.close();
    await nats.jsm.streams.delete(stream).catch(() => undefined);
    await nats.close();
    cleanupTmpDirs();
  });

  const submit = async (pipeline: string, i: number): Promise<string> => {
    const r = await t.api<{ id: string }>('POST', `/api/pipelines/${pipeline}/requests`, { body: { order_id: `ORD-${i}`, items: [{ product_id: '1001', quantity: i }] } });
    expect(r.status).to.equal(202);
    return r.body.id;
  };
  const statusOf = async (id: string): Promise<string> => (await t.api<{ status: string }>('GET', `/api/requests/${id}`)).body.status;
  const runsOf = (pipeline: string) => t.engine.store.query<{ id: string; request_id: string; output: string }>(
    "SELECT id, request_id, output FROM step_runs WHERE pipeline_id = ? AND status = 'completed'", [pipeline],
  );

  it('AMQP: one confirmed message per step activation, its id the step idempotency key, body rendered', async () => {
    const requests = await Promise.all(Array.from({ length: N }, (_, i) => submit(ids.amqp, i)));
    await until('all requests to complete', async () => (await Promise.all(requests.map(statusOf))).every((s) => s === 'completed'), 60_000, 200);
    const got = await until('the messages to arrive', async () => {
      const m = await amqp.drain(queue);
      return m.length > 0 ? m : undefined;
    });
    const more = await amqp.drain(queue);
    const all = [...got, ...more];
    const runs = await runsOf(ids.amqp);
    expect(runs).to.have.length(N);
    expect(all.map((m) => m.messageId).sort()).to.deep.equal(runs.map((r) => r.id).sort());
    const bodies = all.map((m) => JSON.parse(m.body) as { order_id: string; items: unknown[]; event: string });
    expect(bodies.map((b) => b.order_id).sort()).to.deep.equal(Array.from({ length: N }, (_, i) => `ORD-${i}`).sort());
    expect(bodies[0]!.items).to.be.an('array').with.length(1);
    expect(JSON.parse(runs[0]!.output)).to.include({ published: true, exchange, routingKey: 'order.created' });
  });

  it('JetStream: one message per activation; a repeated message id is dropped by the duplicate window', async () => {
    const requests = await Promise.all(Array.from({ length: N }, (_, i) => submit(ids.nats, i)));
    await until('all requests to complete', async () => (await Promise.all(requests.map(statusOf))).every((s) => s === 'completed'), 60_000, 200);
    expect((await nats.jsm.streams.info(stream)).state.messages).to.equal(N);
    const runs = await runsOf(ids.nats);
    expect(runs.map((r) => (JSON.parse(r.output) as { duplicate: boolean }).duplicate)).to.deep.equal(new Array(N).fill(false));
    // A redelivered step publishes again with the same id: the stream keeps one.
    const again = await t.engine.brokers.publishNats('${NATS_URL}', subject, { body: { again: true }, messageId: runs[0]!.id, headers: {}, timeoutMs: 5000 });
    expect(again.duplicate).to.equal(true);
    expect((await nats.jsm.streams.info(stream)).state.messages).to.equal(N);
  });

  it('an unknown exchange or an unroutable message fails the step (CONVEYOR_ERR_PUBLISH_FAILED)', async () => {
    for (const [pipeline, says] of [[ids.missing, /NOT_FOUND|no exchange/i], [ids.unroutable, /no queue is bound/]] as const) {
      const id = await submit(pipeline, 1);
      await until('the request to stop', async () => (await statusOf(id)) === 'error_stop', 30_000, 100);
      const r = await t.api<{ error: { code: string; message: string } }>('GET', `/api/requests/${id}`);
      expect(r.body.error.code).to.equal('CONVEYOR_ERR_PUBLISH_FAILED');
      expect(r.body.error.message, r.body.error.message).to.match(says);
    }
    // The pool opens a new channel after the failure: publishing still works.
    const ok = await submit(ids.amqp, 99);
    await until('a later publish to complete', async () => (await statusOf(ok)) === 'completed', 30_000, 100);
  });
});
