/**
 * OpenTelemetry traces (docs/observability.md), exported over OTLP/HTTP (`http/json`) to a
 * receiver on loopback. An API + engine in this process (distributed mode: MariaDB, Redis),
 * a module server for the HTTP step in this process too, and a `conveyor worker` child
 * process for the queue step, exporting its own spans.
 *
 * 1. A request submitted with a caller's `traceparent` crosses the event (in-process), HTTP
 *    and queue transports: every span is in the caller's trace, the request span is a child
 *    of the caller's span, there is one step span per attempt (per step log row) with its
 *    attributes, and the modules' own spans (module server, worker) are children of the
 *    attempt that called them.
 * 2. A request that waits: the request span ends at the wait, and the event that ends it,
 *    sent with another trace's `traceparent`, is a span of that trace, linked from the wait
 *    step's span.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Server } from 'node:http';
import { KeyRing } from '../../src/api/auth';
import { serve, type RunningServer } from '../../src/cli/server';
import { Engine, loadProject } from '../../src/engine';
import { createModuleServer, listenModuleServer } from '../../src/transports/module-server';
import { startTracing, stopTracing, tracingConfig } from '../../src/tracing/tracing';
import { cleanRedisPrefix, createTestDatabase, ROOT, startWorker, stopProc, uniquePrefix, waitFor, type ConveyorProc, type TestDatabase } from '../fixtures/dist/harness';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixtures/tracing/otlp-receiver';
import { createSilentLogger } from '../support/engine';
import { requireMysql, requireRedis } from '../support/services';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'tracing');
const PIPELINES = path.join(FIXTURES, 'pipelines');
const MODULES = path.join(FIXTURES, 'modules');
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

describe('tracing: OTLP/HTTP spans of requests across the event, HTTP and queue transports', function () {
  this.timeout(90_000);
  const OTEL_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_SERVICE_NAME', 'OTEL_BSP_SCHEDULE_DELAY', 'TRACE_MODULE_URL'];
  const saved = Object.fromEntries(OTEL_VARS.map((k) => [k, process.env[k]]));
  let receiver: OtlpReceiver;
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  let engine: Engine | undefined;
  let server: RunningServer | undefined;
  let moduleServer: Server | undefined;
  let worker: ConveyorProc | undefined;
  const key = `trace-${hex(8)}`;

  const api = async <T>(method: string, route: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server!.url}${route}`, {
      method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  const spansOf = (traceId: string): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === traceId);

  before(async function () {
    this.timeout(60_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    receiver = await startOtlpReceiver();
    db = await createTestDatabase(mysql, 'trace');
    prefix = uniquePrefix('trace');
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' };
    Object.assign(process.env, otel, { OTEL_SERVICE_NAME: 'conveyor-test' });
    expect(await startTracing(tracingConfig('test')), 'tracing is on once an endpoint is set').to.equal(true);

    // The HTTP step's module, served over the module protocol.
    const project = loadProject({ modulesDir: MODULES, pipelinesDir: PIPELINES, cwd: ROOT, queueModules: [] });
    const served = await listenModuleServer(createModuleServer([project.registry.get('trace-echo')!], createSilentLogger()), '127.0.0.1', 0);
    moduleServer = served.server;
    process.env.TRACE_MODULE_URL = served.url;

    engine = await Engine.create({
      databaseUrl: db.url, redisUrl, queuePrefix: prefix, queueModules: ['trace-q'], cwd: ROOT,
      pipelinesDir: PIPELINES, modulesDir: MODULES, logger: createSilentLogger(), supervisor: { sweepIntervalMs: 200 },
    });
    await engine.start({ engine: true, worker: false });
    server = await serve(engine, '127.0.0.1', 0, () => {}, { keys: new KeyRing(engine.store, `${key}:submit+read`) });

    worker = await startWorker('worker', ['trace-q'], {
      ...otel, OTEL_SERVICE_NAME: 'conveyor-test-worker', REDIS_URL: redisUrl, DATABASE_URL: db.url, CONVEYOR_QUEUE_PREFIX: prefix,
      CONVEYOR_PIPELINES_DIR: PIPELINES, CONVEYOR_MODULES_DIR: MODULES, TRACE_MODULE_URL: served.url, LOG_LEVEL: 'info',
    });
  });

  after(async function () {
    this.timeout(30_000);
    if (worker) await stopProc(worker, 'SIGTERM', 5000);
    await server?.close();
    await engine?.stop().catch(() => undefined);
    await new Promise<void>((resolve) => (moduleServer ? moduleServer.close(() => resolve()) : resolve()));
    await stopTracing();
    await receiver?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  it("puts one span per attempt in the caller's trace, under the request span, across event, HTTP and queue", async () => {
    const callerTrace = hex(16);
    const callerSpan = hex(8);
    const submitted = await api<{ id: string }>('POST', '/api/pipelines/traced/requests', { n: 1 }, { traceparent: `00-${callerTrace}-${callerSpan}-01` });
    expect(submitted.status).to.equal(202);
    const id = submitted.body.id;
    const c = await db.sql();
    await waitFor(`request ${id} to complete`, async () => {
      const [rows] = await c.query('SELECT status FROM requests WHERE id = ?', [id]);
      const status = (rows as Array<{ status: string }>)[0]?.status;
      if (status === 'error_stop') throw new Error(`request ${id} stopped on an error`);
      return status === 'completed';
    }, 45_000, 100);
    const [runRows] = await c.query('SELECT id, step_id, attempt, status, transport FROM step_runs WHERE request_id = ? ORDER BY seq', [id]);
    const runs = (runRows as Array<{ id: string; step_id: string; attempt: number; status: string; transport: string | null }>).map((r) => ({ ...r, attempt: Number(r.attempt) }));
    expect(runs.map((r) => [r.step_id, r.attempt, r.status])).to.deep.equal([
      ['local', 1, 'completed'], ['remote', 1, 'completed'], ['queued', 1, 'failed'], ['queued', 2, 'completed'], ['done', 1, 'completed'],
    ]);

    // The request span, a step span per run, the module server's span and the worker's two.
    const expected = 1 + runs.length + 1 + 2;
    await waitFor(`${expected} spans in trace ${callerTrace}`, () => spansOf(callerTrace).length >= expected, 30_000, 100)
      .catch((err: Error) => {
        throw new Error(`${err.message}; got ${JSON.stringify(spansOf(callerTrace).map((s) => s.name))}; worker said:\n${worker!.output.slice(-20).join('\n')}`);
      });
    expect(receiver.rejected).to.deep.equal([]);
    const spans = spansOf(callerTrace);
    expect(spans, 'no span is exported twice').to.have.length(expected);

    const requestSpans = spans.filter((s) => s.name === 'conveyor.request traced');
    expect(requestSpans).to.have.length(1);
    const req = requestSpans[0]!;
    expect(req.parentSpanId, "the request span is a child of the caller's span").to.equal(callerSpan);
    expect(req.attributes).to.include({ 'conveyor.request.id': id, 'conveyor.pipeline': 'traced', 'conveyor.request.status': 'completed' });
    expect(req.service).to.equal('conveyor-test');

    const stepSpans = spans.filter((s) => s.name.startsWith('conveyor.step '));
    expect(stepSpans, 'one span per attempt').to.have.length(runs.length);
    for (const run of runs) {
      const mine = stepSpans.filter((s) => s.attributes['conveyor.run.id'] === run.id);
      expect(mine, `run ${run.step_id}#${run.attempt}`).to.have.length(1);
      const s = mine[0]!;
      expect(s.name).to.equal(`conveyor.step ${run.step_id}`);
      expect(s.parentSpanId, 'a step span is a child of the request span').to.equal(req.spanId);
      expect(s.attributes).to.include({
        'conveyor.request.id': id, 'conveyor.pipeline': 'traced', 'conveyor.step.id': run.step_id, 'conveyor.attempt': run.attempt,
        'conveyor.transport': run.transport ?? 'engine', 'conveyor.step.status': run.status,
      });
      expect(s.status.code, `${run.step_id}#${run.attempt} status`).to.equal(run.status === 'completed' ? 1 : 2);
      expect(s.endMs).to.be.at.least(s.startMs);
    }
    const transports = stepSpans.map((s) => s.attributes['conveyor.transport']);
    expect(transports).to.include.members(['event', 'http', 'queue', 'engine']);
    const failed = stepSpans.find((s) => s.attributes['conveyor.step.status'] === 'failed')!;
    expect(failed.attributes['conveyor.error.message']).to.match(/first attempt fails on purpose/);
    expect(failed.status.message).to.match(/first attempt fails on purpose/);

    // The modules' own spans hang under the attempt that called them (traceparent header, bull job data).
    const spanOfRun = (stepId: string, attempt: number): ReceivedSpan => stepSpans.find((s) => s.attributes['conveyor.step.id'] === stepId && s.attributes['conveyor.attempt'] === attempt)!;
    const served = spans.filter((s) => s.name === 'conveyor.module trace-echo');
    expect(served).to.have.length(1);
    expect(served[0]!.parentSpanId, 'the HTTP module got the attempt span as traceparent').to.equal(spanOfRun('remote', 1).spanId);
    const queued = spans.filter((s) => s.name === 'conveyor.module trace-q');
    expect(queued.map((s) => s.service)).to.deep.equal(['conveyor-test-worker', 'conveyor-test-worker']);
    expect(queued.map((s) => s.parentSpanId).sort(), 'the worker got the attempt span in the job').to.deep.equal([spanOfRun('queued', 1).spanId, spanOfRun('queued', 2).spanId].sort());
    expect(queued.find((s) => s.attributes['conveyor.attempt'] === 1)!.status.code).to.equal(2);

    // The worker's log lines carry the ids of the span they were written in.
    const line = worker!.output.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
      .find((l) => l?.message === 'trace-q ran' && l.requestId === id && l.attempt === 2);
    expect(line, 'the module logged').to.not.equal(undefined);
    const workerSpan = queued.find((s) => s.attributes['conveyor.attempt'] === 2)!;
    expect(line).to.include({ trace_id: callerTrace, span_id: workerSpan.spanId });
  });

  it('ends the request span at the wait, and links the wait step to the event that ended it', async () => {
    const requestTrace = hex(16);
    const eventTrace = hex(16);
    const eventCaller = hex(8);
    const waitKey = `k-${hex(4)}`;
    const submitted = await api<{ id: string }>('POST', '/api/pipelines/traced-wait/requests', { key: waitKey }, { traceparent: `00-${requestTrace}-${hex(8)}-01` });
    expect(submitted.status).to.equal(202);
    const id = submitted.body.id;
    const req = await waitFor('the request span (ended at the wait)', () => spansOf(requestTrace).find((s) => s.name === 'conveyor.request traced-wait'), 30_000, 100);
    expect(req.attributes).to.include({ 'conveyor.request.id': id, 'conveyor.request.status': 'waiting' });

    let woken = 0;
    await waitFor('the event to wake the request', async () => {
      const res = await api<{ woken: number }>('POST', '/api/events/traced-go', { key: waitKey, data: { by: 'test' } }, { traceparent: `00-${eventTrace}-${eventCaller}-01` });
      woken = res.body.woken;
      return woken === 1;
    }, 20_000, 200);
    const c = await db.sql();
    await waitFor(`request ${id} to complete`, async () => {
      const [rows] = await c.query('SELECT status FROM requests WHERE id = ?', [id]);
      return (rows as Array<{ status: string }>)[0]?.status === 'completed';
    }, 30_000, 100);

    const eventSpan = await waitFor('the event span', () => spansOf(eventTrace).find((s) => s.name === 'conveyor.event traced-go'), 20_000, 100);
    expect(eventSpan.parentSpanId, "the event span is a child of the event caller's span").to.equal(eventCaller);
    expect(eventSpan.attributes['conveyor.event.woken']).to.equal(1);
    await waitFor('the two step spans', () => spansOf(requestTrace).filter((s) => s.name.startsWith('conveyor.step ')).length >= 2, 20_000, 100);
    const steps = spansOf(requestTrace).filter((s) => s.name.startsWith('conveyor.step '));
    expect(steps.map((s) => s.name).sort()).to.deep.equal(['conveyor.step after', 'conveyor.step wait']);
    for (const s of steps) expect(s.parentSpanId).to.equal(req.spanId);
    const wait = steps.find((s) => s.name === 'conveyor.step wait')!;
    expect(wait.links, 'the wait step links to the event').to.deep.equal([{ traceId: eventTrace, spanId: eventSpan.spanId }]);
    expect(wait.attributes['conveyor.waited_ms']).to.be.a('number');
    expect(spansOf(requestTrace).filter((s) => s.name === 'conveyor.request traced-wait'), 'the request span is recorded once').to.have.length(1);
  });

  it('ignores an invalid traceparent: the request is accepted and starts a trace of its own', async () => {
    const submitted = await api<{ id: string }>('POST', '/api/pipelines/traced/requests', { n: 2 }, { traceparent: 'not-a-trace-context' });
    expect(submitted.status).to.equal(202);
    const id = submitted.body.id;
    const req = await waitFor('its request span', () => receiver.spans.find((s) => s.name === 'conveyor.request traced' && s.attributes['conveyor.request.id'] === id), 45_000, 100);
    expect(req.parentSpanId, 'a root span').to.equal('');
    expect(req.attributes['conveyor.request.status']).to.equal('completed');
    await waitFor('its five step spans', () => spansOf(req.traceId).filter((s) => s.name.startsWith('conveyor.step ')).length === 5, 20_000, 100);
  });
});
