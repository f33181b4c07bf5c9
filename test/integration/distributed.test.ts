/**
 * Distributed mode (DESIGN "Deployment modes"): api, engine and worker roles sharing one
 * MariaDB database and one Redis, each suite on a database (`conveyor_t_…`) and a bull key
 * prefix of its own, both removed after.
 *
 * 1. Seed 002's `bitrix-lead` against the CRM stand-in, as the embedded e2e runs it, but with
 *    an API-only engine serving HTTP, an engine role, and a worker process
 *    (`node bin/conveyor.js worker --modules find-deal,create-lead`): the four routes are the
 *    same, and each step is logged with the transport it really took (queue, event, http).
 * 2. Two engines with their workers, and a pipeline fanning out into three parallel queue
 *    branches joined by a `join: 'all'` step: 200 requests all complete, and each
 *    (request, step) is committed exactly once although results race between the engines.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { BRANCH_PAYLOADS, startCrmStandin, type BranchPayload, type CrmStandin, type CrmState } from '../../scripts/crm-standin';
import { KeyRing } from '../../src/api/auth';
import type { acceptedView, requestView, stepView } from '../../src/http/views';
import { serve, type RunningServer } from '../../src/cli/server';
import { Engine, type EngineOptions, type EngineRoles } from '../../src/engine';
import {
  cleanRedisPrefix, countCompleted, createTestDatabase, DIST_MODULES, DIST_PIPELINES, ROOT, sleep, startWorker, stopProc, uniquePrefix, verdict, waitFor,
  type ConveyorProc, type TestDatabase,
} from '../fixtures/dist/harness';
import { createSilentLogger } from '../support/engine';
import { requireMysql, requireRedis } from '../support/services';
import bitrixLead from '../../pipelines/bitrix-lead.pipeline';

type Accepted = ReturnType<typeof acceptedView>;
type RequestBody = ReturnType<typeof requestView>;
type StepItem = ReturnType<typeof stepView>;

const ENDED = new Set(['completed', 'stopped', 'error_stop']);
const QUEUE_MODULES = ['find-deal', 'create-lead'];
const SUBSYSTEM: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(bitrixLead.steps as Record<string, { subsystem?: string }>).map(([id, s]) => [id, s.subsystem]),
);
/** Where each step's module runs in this deployment. */
const transportOf = (stepId: string): string => {
  const m = SUBSYSTEM[stepId];
  if (m === 'remember-deal') return 'http';
  return m && QUEUE_MODULES.includes(m) ? 'queue' : 'event';
};

describe('distributed: bitrix-lead through api + engine + worker process (MariaDB, Redis, CRM stand-in)', function () {
  this.timeout(60_000);
  let crm: CrmStandin;
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  let savedCrmUrl: string | undefined;
  const engines: Engine[] = [];
  let server: RunningServer | undefined;
  let worker: ConveyorProc | undefined;
  const keys = { submit: `dist-submit-${randomBytes(8).toString('hex')}`, read: `dist-read-${randomBytes(8).toString('hex')}` };

  const api = async <T>(method: string, route: string, body?: unknown, key = keys.read): Promise<{ status: number; body: T; text: string }> => {
    const res = await fetch(`${server!.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, text };
  };

  before(async function () {
    this.timeout(60_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    crm = await startCrmStandin({ port: 0, host: '127.0.0.1' });
    // remember-deal.module.json substitutes ${CRM_BASE_URL} when an engine loads it.
    savedCrmUrl = process.env.CRM_BASE_URL;
    process.env.CRM_BASE_URL = crm.url;
    db = await createTestDatabase(mysql, 'bitrix');
    prefix = uniquePrefix('bitrix');

    const common: EngineOptions = {
      databaseUrl: db.url, redisUrl, queuePrefix: prefix, queueModules: QUEUE_MODULES, cwd: ROOT,
      pipelinesDir: path.join(ROOT, 'pipelines'), modulesDir: path.join(ROOT, 'modules'), logger: createSilentLogger(),
      supervisor: { sweepIntervalMs: 200 },
    };
    const start = async (roles: EngineRoles): Promise<Engine> => {
      const e = await Engine.create(common);
      engines.push(e);
      await e.start(roles);
      return e;
    };
    // `conveyor api`: intake and reads only.
    const apiEngine = await start({ engine: false, worker: false });
    server = await serve(apiEngine, '127.0.0.1', 0, () => {}, { keys: new KeyRing(apiEngine.store, `${keys.submit}:submit,${keys.read}:read`) });
    // `conveyor engine`: supervisor and dispatcher; in-process modules run here.
    await start({ engine: true, worker: false });
    // `conveyor worker --modules find-deal,create-lead`, as its own process.
    worker = await startWorker('worker', QUEUE_MODULES, {
      REDIS_URL: redisUrl, DATABASE_URL: db.url, CONVEYOR_QUEUE_PREFIX: prefix, CRM_BASE_URL: crm.url, LOG_LEVEL: 'info',
      CONVEYOR_PIPELINES_DIR: path.join(ROOT, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(ROOT, 'modules'),
    });
  });

  after(async function () {
    this.timeout(30_000);
    if (worker) await stopProc(worker, 'SIGTERM', 5000);
    await server?.close();
    for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
    await crm?.close();
    if (savedCrmUrl === undefined) delete process.env.CRM_BASE_URL;
    else process.env.CRM_BASE_URL = savedCrmUrl;
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  it('runs the four branches, submitted at once over HTTP, on their routes and transports', async () => {
    crm.reset();
    const branches = Object.entries(BRANCH_PAYLOADS) as Array<[string, BranchPayload]>;
    const accepted = await Promise.all(branches.map(([, b]) => api<Accepted>('POST', '/api/pipelines/bitrix-lead/requests', b.payload, keys.submit)));
    for (const a of accepted) {
      expect(a.status, a.text).to.equal(202);
      expect(a.body.status).to.be.oneOf(['buffered', 'running']);
    }

    const finals = await Promise.all(accepted.map(async (a) => {
      let last: RequestBody | undefined;
      await waitFor(`request ${a.body.id} to end`, async () => {
        const r = await api<RequestBody>('GET', `/api/requests/${a.body.id}`);
        expect(r.status, r.text).to.equal(200);
        last = r.body;
        return ENDED.has(r.body.status);
      }, 20_000, 50);
      return last!;
    }));

    const state = (await (await fetch(`${crm.url}/_state`)).json()) as CrmState;
    for (const [i, [name, branch]] of branches.entries()) {
      const request = finals[i]!;
      const label = `branch ${name} (${branch.label})`;
      expect(request.status, `${label}: ${JSON.stringify(request.error)}`).to.equal('completed');
      expect(request.currentSteps, label).to.deep.equal([]);

      // The step log through the API: route and transports.
      const steps = await api<{ items: StepItem[]; nextCursor: string | null }>('GET', `/api/requests/${request.id}/steps`);
      expect(steps.status, steps.text).to.equal(200);
      const items = steps.body.items;
      expect(items.map((s) => s.stepId), label).to.deep.equal(branch.expectedRoute);
      expect(items.map((s) => [s.stepId, s.transport]), label).to.deep.equal(branch.expectedRoute.map((s) => [s, transportOf(s)]));
      for (const item of items) {
        expect(item, `${label} ${item.stepId}`).to.include({ status: 'completed', attempt: 1, kind: 'module', module: SUBSYSTEM[item.stepId], error: null });
      }
      for (let k = 1; k < items.length; k++) {
        expect(Date.parse(items[k]!.startedAt!), `${label}: ${items[k]!.stepId} started after ${items[k - 1]!.stepId} finished`).to.be.at.least(Date.parse(items[k - 1]!.finishedAt!));
      }

      // The step log as persisted, in order.
      const rows = await engines[0]!.store.query<{ step_id: string; status: string; attempt: number; transport: string }>(
        'SELECT step_id, status, attempt, transport FROM step_runs WHERE request_id = ? ORDER BY seq', [request.id],
      );
      expect(rows.map((r) => [r.step_id, r.status, Number(r.attempt), r.transport]), label).to.deep.equal(
        branch.expectedRoute.map((s) => [s, 'completed', 1, transportOf(s)]),
      );

      // What the CRM received: the lead, linked as the branch says, and remember-deal once.
      const ctx = request.context as Record<string, { leadId?: string } | undefined>;
      const leadId = ctx['bitrix-create-lead']?.leadId ?? ctx['bitrix-update-lead']?.leadId;
      const lead = state.leads.find((l) => l.ID === leadId);
      expect(lead, `${label}: lead ${leadId}`).to.not.equal(undefined);
      expect(lead!.CONTACT_ID ?? null, label).to.equal(branch.expectedLink.contactId);
      expect(lead!.DEAL_ID ?? null, label).to.equal(branch.expectedLink.dealId);
      expect((lead!.EMAIL as Array<{ VALUE: string }>).map((e) => e.VALUE), label).to.include(branch.payload.email);
      const remembered = state.remembered.filter((r) => r.requestId === request.id);
      expect(remembered.map((r) => r.attempt), label).to.deep.equal(branch.remembers ? [1] : []);
    }
    expect(state.leads.filter((l) => l.ID !== '7001'), 'one new lead per request').to.have.length(branches.length);
    expect(state.calls['/modules/remember-deal'] ?? 0).to.equal(branches.filter(([, b]) => b.remembers).length);
  });
});

describe('distributed: two engines, parallel branches, 200 requests: no double commit', function () {
  this.timeout(60_000);
  const N = 200;
  const STEPS = ['split', 'b1', 'b2', 'b3', 'merge'];
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  const engines: Engine[] = [];

  before(async function () {
    this.timeout(30_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    db = await createTestDatabase(mysql, 'fanout');
    prefix = uniquePrefix('fanout');
    for (let i = 0; i < 2; i++) {
      const e = await Engine.create({
        databaseUrl: db.url, redisUrl, queuePrefix: prefix, queueModules: ['fan-q'],
        pipelinesDir: DIST_PIPELINES, modulesDir: DIST_MODULES, logger: createSilentLogger(),
        // A queue run's lease (10 min) outlasts the test: a result that an engine lost could
        // only come back through that lease, so a lost result fails the test.
        supervisor: { sweepIntervalMs: 250, leaseGraceMs: 3000, queueLeaseMs: 600_000, staleCheckMs: 200 },
      });
      engines.push(e);
    }
    // Both start before any request, so both take starts and results from the beginning.
    for (const e of engines) await e.start({ engine: true, worker: true });
  });

  after(async function () {
    this.timeout(30_000);
    for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  it(`commits each (request, step) exactly once and completes all ${N} requests`, async () => {
    const finishedBy = engines.map(() => 0);
    const finishes = new Map<string, number>();
    engines.forEach((e, i) => e.bus.on('RequestFinished', (ev) => {
      finishedBy[i] = finishedBy[i]! + 1;
      finishes.set(ev.requestId, (finishes.get(ev.requestId) ?? 0) + 1);
    }));
    const started = Date.now();
    // Half the requests come in through each engine's intake.
    const ids = await Promise.all(Array.from({ length: N }, (_, i) => engines[i % 2]!.intake.submit({ pipelineId: 'fanout', payload: { i } }).then((r) => r.id)));
    expect(new Set(ids).size).to.equal(N);
    const c = await db.sql();
    await waitFor(`all ${N} requests to complete`, async () => (await countCompleted(c)) >= N, 45_000, 100).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await verdict(c, ids, STEPS))}`);
    });
    const elapsed = Date.now() - started;
    await sleep(300); // let any late duplicate arrive before judging
    const v = await verdict(c, ids, STEPS);
    expect(v.missing, 'every accepted request is stored').to.equal(0);
    expect(v.notCompleted, 'every request completed').to.deep.equal([]);
    expect(v.requests).to.deep.equal({ completed: N });
    expect(v.notOnce, 'each (request, step) has exactly one completed row').to.deep.equal([]);
    expect(v.wrongSteps, 'each request completed split, b1, b2, b3 and merge').to.deep.equal([]);
    expect(v.open, 'no run is left open').to.equal(0);
    expect(v.runs.completed).to.equal(N * STEPS.length);
    // Which engine finished which request is scheduling, not a promise; that each request
    // finished exactly once, on one of them, is.
    expect([...finishes.keys()].sort(), 'every request finished').to.deep.equal([...ids].sort());
    expect([...finishes.values()].filter((n) => n !== 1), 'no request finished twice').to.deep.equal([]);
    // Nothing stays counted in flight on either engine, although each request's branch results
    // were taken by both: the state an engine kept of a request the other one carried on is
    // dropped once its row shows it (every `staleCheckMs`; before, it stayed counted for good).
    await waitFor('no request counted in flight on either engine', async () => engines.every((e) => e.supervisor.admitted.inFlight === 0), 10_000, 50)
      .catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(engines.map((e) => e.supervisor.admitted.inFlight))}`);
      });
    console.log(`      fanout: ${N} requests × ${STEPS.length} steps in ${elapsed} ms; finished by engine 1/2: ${finishedBy.join('/')}; runs ${JSON.stringify(v.runs)}`);
  });
});
