/**
 * `/metrics` (Prometheus, role `read`) and `/readyz` (database and Redis checks, no key).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { TestEngine } from '../support/engine';
import { redisUrl, requireRedis } from '../support/services';
import { parseSamples, sample } from '../support/prom';
import { startOpsEngine, submitMix, type Mix } from './support';

describe('metrics and readiness', function () {
  this.timeout(60_000);
  let t: TestEngine;
  let mix: Mix;

  before(async () => {
    t = await startOpsEngine({ listen: false });
    mix = await submitMix(t);
  });
  after(async () => t?.close());

  const scrape = async (): Promise<string> => {
    const res = await t.api<string>('GET', '/metrics', { key: t.keys.read });
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    return res.text;
  };

  it('needs a key with the read role', async () => {
    expect((await t.api('GET', '/metrics', { key: null })).status).to.equal(401);
    expect((await t.api('GET', '/metrics', { key: t.keys.submit })).status).to.equal(403);
    expect((await t.api('GET', '/metrics', { key: t.keys.admin })).status).to.equal(200);
  });

  it('counts open requests by pipeline and status, with zeros for known pipelines', async () => {
    const text = await scrape();
    expect(sample(text, 'conveyor_requests', { pipeline: 'orders', status: 'error_stop' })).to.equal(mix.failed.length);
    expect(sample(text, 'conveyor_requests', { pipeline: 'greet', status: 'running' })).to.equal(0);
    expect(sample(text, 'conveyor_requests', { pipeline: 'greet', status: 'buffered' })).to.equal(0);
    expect(sample(text, 'conveyor_error_stop_requests')).to.equal(mix.failed.length);
    expect(sample(text, 'conveyor_buffered_requests')).to.equal(0);
    expect(sample(text, 'conveyor_waiting_requests')).to.equal(0);
    expect(sample(text, 'conveyor_steps_in_flight')).to.equal(0);
    expect(sample(text, 'conveyor_requests_in_flight')).to.equal(0);
    expect(sample(text, 'conveyor_requests_waiting_for_store')).to.equal(0);
    expect(sample(text, 'conveyor_starts_deferred_total')).to.equal(0);
  });

  it('counts finished requests by pipeline and final status', async () => {
    const text = await scrape();
    expect(sample(text, 'conveyor_requests_finished_total', { pipeline: 'greet', status: 'completed' })).to.equal(mix.greet.length);
    const orders = mix.standard.length + mix.express.length + mix.flaky.length + mix.test.length;
    expect(sample(text, 'conveyor_requests_finished_total', { pipeline: 'orders', status: 'completed' })).to.equal(orders);
    expect(sample(text, 'conveyor_requests_finished_total', { pipeline: 'orders', status: 'error_stop' })).to.equal(mix.failed.length);
  });

  it('observes step durations by pipeline, step, transport and outcome, and counts retries', async () => {
    const text = await scrape();
    const failed = { pipeline: 'orders', step: 'check-order', transport: 'event', outcome: 'failed' };
    expect(sample(text, 'conveyor_step_duration_seconds_count', failed)).to.equal(mix.failed.length + mix.flaky.length);
    expect(sample(text, 'conveyor_step_duration_seconds_bucket', { ...failed, le: '+Inf' })).to.equal(mix.failed.length + mix.flaky.length);
    const completed = { pipeline: 'orders', step: 'check-order', transport: 'event', outcome: 'completed' };
    expect(sample(text, 'conveyor_step_duration_seconds_count', completed)).to.equal(mix.standard.length + mix.express.length + mix.flaky.length + mix.test.length);
    expect(sample(text, 'conveyor_step_duration_seconds_count', { pipeline: 'orders', step: 'ship-express', transport: 'event', outcome: 'completed' })).to.equal(mix.express.length);
    expect(sample(text, 'conveyor_step_duration_seconds_sum', completed)).to.be.a('number').and.be.at.least(0);
    expect(sample(text, 'conveyor_step_retries_total', { pipeline: 'orders', step: 'check-order' })).to.equal(mix.flaky.length);
    expect(sample(text, 'conveyor_metrics_unlabelled_results_total')).to.equal(0);
  });

  it('counts committed step attempts in conveyor_steps_total, series by series as in the step log', async () => {
    const text = await scrape();
    const rows = await t.engine.store.query<{ pipeline_id: string; step_id: string; transport: string | null; status: string; n: unknown }>(
      "SELECT pipeline_id, step_id, transport, status, COUNT(*) AS n FROM step_runs WHERE status IN ('completed', 'failed') GROUP BY pipeline_id, step_id, transport, status",
    );
    expect(rows.length).to.be.greaterThan(0);
    for (const r of rows) {
      const labels = { pipeline: r.pipeline_id, step: r.step_id, transport: r.transport ?? 'engine', outcome: r.status };
      expect(sample(text, 'conveyor_steps_total', labels), JSON.stringify(labels)).to.equal(Number(r.n));
    }
    const total = parseSamples(text).filter((s) => s.name === 'conveyor_steps_total').reduce((a, s) => a + s.value, 0);
    expect(total).to.equal(rows.reduce((a, r) => a + Number(r.n), 0));
  });

  it('exports the process metrics of prom-client', async () => {
    const text = await scrape();
    expect(sample(text, 'process_cpu_user_seconds_total')).to.be.a('number');
    expect(text).to.match(/^# HELP nodejs_heap_size_used_bytes /m);
  });

  it('answers /readyz without a key when the database answers', async () => {
    const res = await t.api('GET', '/readyz', { key: null });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ready', checks: { database: 'ok', redis: 'not used' } });
  });

  it('answers /readyz 503 naming the database when it does not answer', async () => {
    const other = await startOpsEngine({ listen: false });
    try {
      await other.engine.store.close();
      const res = await other.api('GET', '/readyz', { key: null });
      expect(res.status).to.equal(503);
      expect(res.body).to.deep.equal({ status: 'unready', checks: { database: 'failed', redis: 'not used' } });
      expect((await other.api('GET', '/healthz', { key: null })).status).to.equal(200);
    } finally {
      await other.close();
    }
  });
});

describe('metrics and readiness in distributed mode', function () {
  this.timeout(60_000);
  let t: TestEngine;

  before(async () => {
    await requireRedis();
    // say-hello runs through its bull queue (a worker in this same process), so its result
    // reaches the engine through its own results queue (conveyor:results:<engine id>) rather than the bus.
    t = await startOpsEngine({ engine: { redisUrl: redisUrl(), queueModules: ['say-hello'], queuePrefix: `ops-${randomBytes(4).toString('hex')}` } });
    const res = await t.api('POST', '/api/pipelines/greet/requests?wait=10', { body: {} });
    expect(res.status).to.equal(200);
  });
  after(async () => t?.close());

  it('checks Redis in /readyz', async () => {
    const res = await t.api('GET', '/readyz', { key: null });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
  });

  it('reports the bull queue depths', async () => {
    const text = (await t.api<string>('GET', '/metrics', { key: t.keys.read })).text;
    const own = t.engine.hub!.replyQueue!;
    expect(own).to.match(/^conveyor:results:[0-9a-f]{16}$/);
    for (const queue of ['conveyor:requests', 'conveyor:results', own, 'conveyor:module:say-hello']) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(sample(text, 'conveyor_queue_jobs', { queue, state }), `${queue} ${state}`).to.be.a('number');
      }
    }
    expect(sample(text, 'conveyor_requests_finished_total', { pipeline: 'greet', status: 'completed' })).to.equal(1);
  });

  it('observes the durations of queue-transport steps, whose results come through bull', async () => {
    const text = (await t.api<string>('GET', '/metrics', { key: t.keys.read })).text;
    expect(sample(text, 'conveyor_step_duration_seconds_count', { pipeline: 'greet', step: 'say-hello', transport: 'queue', outcome: 'completed' })).to.equal(1);
  });
});
