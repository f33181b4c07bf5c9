/**
 * The `bitrix-lead` pipeline end to end: requests go in through the HTTP API, run on a real
 * engine (SQLite in a temp dir) against the CRM stand-in, and the tests check what the API
 * answers, what the store holds row by row, and what the CRM received.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import axios from 'axios';
import { expect } from 'chai';
import bitrixLead from '../../pipelines/bitrix-lead.pipeline';
import { BRANCH_PAYLOADS, startCrmStandin, type BranchPayload, type CrmStandin, type CrmState } from '../../scripts/crm-standin';
import type { acceptedView, requestView, stepView } from '../../src/http/views';
import { ErrorCodes } from '../../src/errors';
import { REPO_ROOT, startTestEngine, type TestEngine } from '../support/engine';
import { pollUntil, sleep } from '../support/poll';
import { removeTmpDir, tmpDir } from '../support/tmp';

type Accepted = ReturnType<typeof acceptedView>;
type RequestBody = ReturnType<typeof requestView>;
type StepItem = ReturnType<typeof stepView>;
type StepsBody = { items: StepItem[]; nextCursor: string | null };
type StepRow = { step_id: string; status: string; attempt: number | string; seq: number | string };

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ENDED = new Set(['completed', 'stopped', 'error_stop']);
const SUBSYSTEM: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(bitrixLead.steps as Record<string, { subsystem?: string }>).map(([id, s]) => [id, s.subsystem]),
);
/** Where each module runs in this repository: `remember-deal` is a remote HTTP module, the rest are in-process. */
const transportOf = (stepId: string): string => (SUBSYSTEM[stepId] === 'remember-deal' ? 'http' : 'event');


/** Polls `GET /api/requests/:id` until the request has ended. */
async function waitUntilEnded(t: TestEngine, id: string, timeoutMs = 10_000): Promise<RequestBody> {
  const read = async (): Promise<RequestBody> => {
    const r = await t.api<RequestBody>('GET', `/api/requests/${id}`, { key: t.keys.read });
    expect(r.status, r.text).to.equal(200);
    return r.body;
  };
  return pollUntil(read, (body) => ENDED.has(body.status), { timeoutMs, everyMs: 25, failure: (body) => `request ${id} still "${body.status}" after ${timeoutMs} ms` });
}

async function submit(t: TestEngine, payload: unknown, query = ''): Promise<{ status: number; body: Accepted & RequestBody; headers: Record<string, string>; text: string }> {
  return t.api<Accepted & RequestBody>('POST', `/api/pipelines/bitrix-lead/requests${query}`, { body: payload, key: t.keys.submit });
}

async function stepsOf(t: TestEngine, id: string): Promise<StepItem[]> {
  const r = await t.api<StepsBody>('GET', `/api/requests/${id}/steps`, { key: t.keys.read });
  expect(r.status, r.text).to.equal(200);
  expect(r.body.nextCursor).to.equal(null);
  return r.body.items;
}

async function stepRows(t: TestEngine, id: string): Promise<Array<{ stepId: string; status: string; attempt: number; seq: number }>> {
  const rows = await t.engine.store.query<StepRow>('SELECT step_id, status, attempt, seq FROM step_runs WHERE request_id = ? ORDER BY seq', [id]);
  return rows.map((r) => ({ stepId: String(r.step_id), status: String(r.status), attempt: Number(r.attempt), seq: Number(r.seq) }));
}

async function crmState(crm: CrmStandin): Promise<CrmState> {
  const r = await axios.get<CrmState>(`${crm.url}/_state`);
  return r.data;
}

async function injectFault(crm: CrmStandin, fault: { path: string; status?: number; times?: number; delayMs?: number }): Promise<void> {
  const r = await axios.post(`${crm.url}/_faults`, fault, { validateStatus: () => true });
  expect(r.status, JSON.stringify(r.data)).to.equal(200);
}

/** The id of the lead the last step of a request created or updated. */
function leadIdOf(request: RequestBody): string {
  const ctx = request.context as Record<string, { leadId?: string } | undefined>;
  const id = ctx['bitrix-create-lead']?.leadId ?? ctx['bitrix-update-lead']?.leadId;
  expect(id, 'the request ended without a lead id').to.be.a('string');
  return id!;
}

function expectStepItemShape(item: StepItem, requestId: string): void {
  expect(item.requestId).to.equal(requestId);
  expect(item.status, `${item.stepId}: ${JSON.stringify(item.error)}`).to.equal('completed');
  expect(item.attempt).to.equal(1);
  expect(item.kind).to.equal('module');
  expect(item.module).to.equal(SUBSYSTEM[item.stepId]);
  expect(item.transport).to.equal(transportOf(item.stepId));
  expect(item.error).to.equal(null);
  expect(item.startedAt).to.match(ISO_UTC);
  expect(item.finishedAt).to.match(ISO_UTC);
  expect(Date.parse(item.finishedAt!)).to.be.at.least(Date.parse(item.startedAt!));
  expect(item.durationMs).to.be.a('number').and.at.least(0);
}

describe('bitrix-lead end to end (HTTP API, engine, SQLite, CRM stand-in)', function () {
  this.timeout(30_000);
  let crm: CrmStandin;
  let t: TestEngine;

  before(async () => {
    crm = await startCrmStandin({ port: 0, host: '127.0.0.1' });
    // remember-deal.module.json substitutes ${CRM_BASE_URL} when the engine loads it.
    t = await startTestEngine({ env: { CRM_BASE_URL: crm.url } });
  });

  after(async () => {
    await t?.close();
    await crm?.close();
  });

  beforeEach(() => crm.reset());

  for (const [name, branch] of Object.entries(BRANCH_PAYLOADS) as Array<[string, BranchPayload]>) {
    it(`branch ${name} (${branch.label}) takes the route ${branch.expectedRoute.join(' → ')}`, async () => {
      const accepted = await submit(t, branch.payload);
      expect(accepted.status, accepted.text).to.equal(202);
      const { id } = accepted.body;
      expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(accepted.body.status).to.be.oneOf(['buffered', 'running']);
      expect(accepted.body.links).to.deep.equal({ self: `/api/requests/${id}`, steps: `/api/requests/${id}/steps` });
      expect(accepted.headers.location).to.equal(`/api/requests/${id}`);

      const request = await waitUntilEnded(t, id);
      expect(request.status, JSON.stringify(request.error)).to.equal('completed');
      expect(request.pipeline).to.equal('bitrix-lead');
      expect(request.error).to.equal(null);
      expect(request.currentSteps).to.deep.equal([]);

      // The step log, through the API.
      const items = await stepsOf(t, id);
      expect(items.map((s) => s.stepId)).to.deep.equal(branch.expectedRoute);
      for (const item of items) expectStepItemShape(item, id);
      for (let i = 1; i < items.length; i++) {
        expect(Date.parse(items[i]!.startedAt!), `${items[i]!.stepId} started before ${items[i - 1]!.stepId} finished`).to.be.at.least(Date.parse(items[i - 1]!.finishedAt!));
      }

      // The step log, as persisted.
      const rows = await stepRows(t, id);
      expect(rows.map((r) => r.stepId)).to.deep.equal(branch.expectedRoute);
      for (const r of rows) {
        expect(r.status, r.stepId).to.equal('completed');
        expect(r.attempt, r.stepId).to.equal(1);
      }
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.seq).to.be.greaterThan(rows[i - 1]!.seq);
      const [req] = await t.engine.store.query<{ status: string; version: number | string }>('SELECT status, version FROM requests WHERE id = ?', [id]);
      expect(req?.status).to.equal('completed');
      expect(Number(req?.version)).to.equal(request.version);

      // What the CRM received.
      const state = await crmState(crm);
      const leadId = leadIdOf(request);
      const newLeads = state.leads.filter((l) => l.ID !== '7001');
      expect(newLeads.map((l) => l.ID), 'exactly one new lead').to.deep.equal([leadId]);
      const lead = newLeads[0]!;
      expect(lead.CONTACT_ID ?? null).to.equal(branch.expectedLink.contactId);
      expect(lead.DEAL_ID ?? null).to.equal(branch.expectedLink.dealId);
      expect((lead.EMAIL as Array<{ VALUE: string }>).map((e) => e.VALUE)).to.include(branch.payload.email);
      const remembered = state.remembered.filter((r) => r.requestId === id);
      if (branch.remembers) {
        expect(remembered).to.have.length(1);
        expect(remembered[0]).to.include({ pipeline: 'bitrix-lead', stepId: 'remember-deal', attempt: 1, test: false });
        expect({ contactId: remembered[0]!.contactId, dealId: remembered[0]!.dealId }).to.deep.equal(branch.expectedLink);
      } else {
        expect(remembered).to.deep.equal([]);
      }
      expect(state.calls['/modules/remember-deal'] ?? 0).to.equal(branch.remembers ? 1 : 0);
    });
  }

  it('updates the lead named by payload.leadId instead of adding one', async () => {
    const r = await submit(t, { ...BRANCH_PAYLOADS.C.payload, leadId: '7001' }, '?wait=10');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status).to.equal('completed');
    expect(r.body.context['bitrix-update-lead']).to.deep.equal({ leadId: '7001', linkedDealId: '5001' });
    const state = await crmState(crm);
    expect(state.leads.map((l) => l.ID)).to.deep.equal(['7001']);
    expect(state.leads[0]).to.include({ CONTACT_ID: '102', DEAL_ID: '5001' });
    expect(state.leads[0]!.DATE_MODIFY).to.not.equal('2024-01-15T08:00:00+00:00');
  });

  it('answers ?wait=10 with 200 and the final request, its context holding payload, request and one key per step', async () => {
    const branch = BRANCH_PAYLOADS.C;
    const r = await submit(t, branch.payload, '?wait=10');
    expect(r.status, r.text).to.equal(200);
    const body = r.body;
    expect(body).to.include.keys('id', 'pipeline', 'version', 'status', 'businessKey', 'context', 'currentSteps', 'error', 'createdAt', 'updatedAt');
    expect(body.status).to.equal('completed');
    expect(body.pipeline).to.equal('bitrix-lead');
    expect(body.currentSteps).to.deep.equal([]);
    expect(body.createdAt).to.match(ISO_UTC);
    expect(body.updatedAt).to.match(ISO_UTC);
    expect(Object.keys(body.context).sort()).to.deep.equal(['payload', 'request', ...branch.expectedRoute].sort());
    expect(body.context.payload).to.deep.equal(branch.payload);
    expect(body.context.request).to.deep.include({ id: body.id, pipeline: 'bitrix-lead', version: body.version, test: false });
    expect(body.context['get-bitrix-deal']).to.deep.equal({ value: { ID: '5001' } });
    expect(body.context['remember-deal']).to.deep.equal({ remembered: true, contactId: '102', dealId: '5001' });

    // The same request read back later is the same request.
    const again = await t.api<RequestBody>('GET', `/api/requests/${body.id}`, { key: t.keys.read });
    expect(again.body).to.deep.equal(body);
  });

  it('answers 202 when ?wait runs out before the request ends, and the request still completes', async () => {
    await injectFault(crm, { path: '/rest/crm.contact.list', delayMs: 1000 });
    const started = Date.now();
    const r = await submit(t, BRANCH_PAYLOADS.A.payload, '?wait=0.3');
    expect(r.status, r.text).to.equal(202);
    expect(Date.now() - started).to.be.at.least(250);
    expect(r.body.status).to.be.oneOf(['buffered', 'running']);
    expect(r.body.links.self).to.equal(`/api/requests/${r.body.id}`);
    const done = await waitUntilEnded(t, r.body.id);
    expect(done.status).to.equal('completed');
    expect((await stepsOf(t, r.body.id)).map((s) => s.stepId)).to.deep.equal(BRANCH_PAYLOADS.A.expectedRoute);
  });

  it('stops in error_stop when a module fails non-retryably (CRM 400), and runs nothing after it', async () => {
    await injectFault(crm, { path: '/rest/crm.contact.list', status: 400 });
    const r = await submit(t, BRANCH_PAYLOADS.B.payload, '?wait=10');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status).to.equal('error_stop');
    expect(r.body.error).to.include({ stepId: 'bitrix-find-contact', attempt: 1, code: ErrorCodes.NON_RETRYABLE });
    expect(r.body.error!.message).to.contain('400');
    expect(r.body.error!.runId).to.be.a('string');

    const items = await stepsOf(t, r.body.id);
    expect(items.map((s) => [s.stepId, s.attempt, s.status])).to.deep.equal([['bitrix-find-contact', 1, 'failed']]);
    expect(items[0]!.error).to.include({ code: ErrorCodes.NON_RETRYABLE, retryable: false });
    expect(items[0]!.id).to.equal(r.body.error!.runId);
    const rows = await stepRows(t, r.body.id);
    expect(rows.map((x) => [x.stepId, x.attempt, x.status])).to.deep.equal([['bitrix-find-contact', 1, 'failed']]);

    // No retry, and nothing continues by itself.
    await sleep(400);
    expect((await stepRows(t, r.body.id)).length).to.equal(1);
    const state = await crmState(crm);
    expect(state.calls['/rest/crm.contact.list']).to.equal(1);
    expect(state.calls['/rest/crm.deal.list'] ?? 0).to.equal(0);
    expect(state.leads.map((l) => l.ID)).to.deep.equal(['7001']);
    expect((await waitUntilEnded(t, r.body.id)).status).to.equal('error_stop');
  });

  it('retries a step whose CRM call failed once with 500, then carries on (two rows, attempts 1 and 2)', async () => {
    const branch = BRANCH_PAYLOADS.C;
    await injectFault(crm, { path: '/rest/crm.deal.list', status: 500, times: 1 });
    const r = await submit(t, branch.payload, '?wait=10');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status, JSON.stringify(r.body.error)).to.equal('completed');

    const items = await stepsOf(t, r.body.id);
    const [first, ...rest] = branch.expectedRoute;
    const expected = [
      [first, 1, 'completed'],
      [rest[0], 1, 'failed'],
      [rest[0], 2, 'completed'],
      ...rest.slice(1).map((s) => [s, 1, 'completed']),
    ];
    expect(items.map((s) => [s.stepId, s.attempt, s.status])).to.deep.equal(expected);
    const failed = items[1]!;
    expect(failed.error).to.include({ retryable: true });
    expect((failed.error as { message: string }).message).to.contain('500');
    // The pipeline's retry policy: backoff 200 ms (jitter 20 %) before attempt 2.
    expect(Date.parse(items[2]!.startedAt!) - Date.parse(failed.finishedAt!)).to.be.at.least(150);

    const rows = await stepRows(t, r.body.id);
    expect(rows.map((x) => [x.stepId, x.attempt, x.status])).to.deep.equal(expected);
    const state = await crmState(crm);
    expect(state.calls['/rest/crm.deal.list']).to.equal(2);
  });

  it('retries the remote remember-deal module after a 503, and the CRM remembers the deal once', async () => {
    const branch = BRANCH_PAYLOADS.B;
    await injectFault(crm, { path: '/modules/remember-deal', status: 503, times: 1 });
    const r = await submit(t, branch.payload, '?wait=10');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status, JSON.stringify(r.body.error)).to.equal('completed');
    const items = await stepsOf(t, r.body.id);
    const remember = items.filter((s) => s.stepId === 'remember-deal');
    expect(remember.map((s) => [s.attempt, s.status, s.transport])).to.deep.equal([
      [1, 'failed', 'http'],
      [2, 'completed', 'http'],
    ]);
    expect(items.filter((s) => s.stepId !== 'remember-deal').every((s) => s.attempt === 1 && s.status === 'completed')).to.equal(true);
    const state = await crmState(crm);
    expect(state.calls['/modules/remember-deal']).to.equal(2);
    expect(state.remembered.filter((x) => x.requestId === r.body.id).map((x) => x.attempt)).to.deep.equal([2]);
  });

  it('lists both pipelines and describes one with its version and hash', async () => {
    const list = await t.api<{ items: Array<{ id: string; version: number; hash: string }>; nextCursor: null }>('GET', '/api/pipelines', { key: t.keys.read });
    expect(list.status, list.text).to.equal(200);
    // Every pipeline in pipelines/ is listed (more examples join the repository over time).
    const { readdirSync } = await import('node:fs');
    const files = readdirSync(REPO_ROOT + '/pipelines').filter((f) => /\.pipeline\.(ts|json)$/.test(f)).map((f) => f.replace(/\.pipeline\.(ts|json)$/, ''));
    expect(list.body.items.map((p) => p.id).sort()).to.deep.equal(files.sort());
    expect(files).to.include.members(['bitrix-lead', 'hello']);
    const one = await t.api<{ id: string; version: number; hash: string; versions: Array<{ version: number; hash: string; createdAt: string }> }>('GET', '/api/pipelines/bitrix-lead', {
      key: t.keys.read,
    });
    expect(one.status, one.text).to.equal(200);
    expect(one.body.id).to.equal('bitrix-lead');
    expect(one.body.version).to.equal(1);
    expect(one.body.hash).to.match(/^[0-9a-f]{64}$/);
    expect(one.body.versions.map((v) => [v.version, v.hash])).to.deep.equal([[1, one.body.hash]]);
    expect(one.body.versions[0]!.createdAt).to.match(ISO_UTC);
    expect(list.body.items.find((p) => p.id === 'bitrix-lead')).to.include({ version: one.body.version, hash: one.body.hash });

    const r = await submit(t, BRANCH_PAYLOADS.A.payload, '?wait=10');
    expect(r.body.version).to.equal(one.body.version);
    expect(r.body.context.request).to.include({ version: one.body.version });
  });

  it('answers GET /healthz with 200 without a key', async () => {
    const r = await t.api<{ status: string }>('GET', '/healthz', { key: null });
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ status: 'ok' });
  });
});

describe('bitrix-lead: a request keeps the pipeline version it started on', function () {
  this.timeout(30_000);
  let crm: CrmStandin;
  let dir: string;
  let t: TestEngine | undefined;

  /** `bitrix-lead` as JSON, so a test can edit the file between two engine starts. */
  const v1 = JSON.parse(JSON.stringify(bitrixLead)) as { description: string; steps: Record<string, Record<string, unknown>> };
  /** v2 drops `bitrix-lead-set-default-values`: a new person goes straight to `bitrix-create-lead`. */
  const v2 = structuredClone(v1);
  v2.description = `${v1.description} (v2: no default values step)`;
  delete v2.steps['bitrix-lead-set-default-values'];
  const deal = v2.steps['get-bitrix-deal']!;
  (deal.condition as Array<{ success: Array<{ result: string[] }> }>)[0]!.success[0]!.result = ['bitrix-create-lead'];
  v2.steps['bitrix-create-lead']!.prev = ['get-bitrix-deal', 'get-bitrix-deal-by-id'];
  const V2_ROUTE_A = ['bitrix-find-contact', 'get-bitrix-deal', 'bitrix-create-lead'];

  const writePipeline = (def: unknown): void => {
    fs.writeFileSync(path.join(dir, 'pipelines', 'bitrix-lead.pipeline.json'), JSON.stringify(def, null, 2));
  };
  const start = (): Promise<TestEngine> =>
    startTestEngine({
      databaseUrl: `sqlite:${path.join(dir, 'conveyor.db')}`,
      pipelinesDir: path.join(dir, 'pipelines'),
      modulesDir: path.join(REPO_ROOT, 'modules'),
      env: { CRM_BASE_URL: crm.url },
    });

  before(async () => {
    crm = await startCrmStandin({ port: 0, host: '127.0.0.1' });
    dir = tmpDir('pinning');
    fs.mkdirSync(path.join(dir, 'pipelines'));
  });

  after(async () => {
    await t?.close();
    await crm?.close();
    removeTmpDir(dir);
  });

  it('finishes on v1 after a restart onto an edited pipeline, while new requests start on v2', async () => {
    writePipeline(v1);
    t = await start();
    const p1 = await t.api<{ version: number; hash: string }>('GET', '/api/pipelines/bitrix-lead');
    expect(p1.body.version).to.equal(1);

    // Hold the request in its first step (a slow CRM), then restart onto v2.
    await injectFault(crm, { path: '/rest/crm.contact.list', delayMs: 2000 });
    const accepted = await submit(t, BRANCH_PAYLOADS.A.payload);
    expect(accepted.status, accepted.text).to.equal(202);
    const id = accepted.body.id;
    await pollUntil(() => crm.state.calls['/rest/crm.contact.list'] ?? 0, (n) => n !== 0, { timeoutMs: 5000, everyMs: 10, failure: () => 'bitrix-find-contact never called the CRM' });
    const before = await t.api<RequestBody>('GET', `/api/requests/${id}`);
    expect(before.body.status).to.equal('running');
    expect(before.body.currentSteps.map((s) => s.stepId)).to.deep.equal(['bitrix-find-contact']);
    await t.close();
    t = undefined;

    writePipeline(v2);
    t = await start();
    const p2 = await t.api<{ version: number; hash: string; versions: Array<{ version: number; hash: string }> }>('GET', '/api/pipelines/bitrix-lead');
    expect(p2.body.version).to.equal(2);
    expect(p2.body.hash).to.not.equal(p1.body.hash);
    expect(p2.body.versions.map((v) => [v.version, v.hash])).to.deep.equal([
      [1, p1.body.hash],
      [2, p2.body.hash],
    ]);

    // The old request resumes and ends on v1's route, through the step v2 no longer has.
    const old = await waitUntilEnded(t, id);
    expect(old.status, JSON.stringify(old.error)).to.equal('completed');
    expect(old.version).to.equal(1);
    expect((old.context.request as { version: number }).version).to.equal(1);
    const items = await stepsOf(t, id);
    expect(items.map((s) => s.stepId)).to.deep.equal(BRANCH_PAYLOADS.A.expectedRoute);
    for (const item of items) expectStepItemShape(item, id);
    const rows = await stepRows(t, id);
    expect(rows.map((r) => [r.stepId, r.status])).to.deep.equal(BRANCH_PAYLOADS.A.expectedRoute.map((s) => [s, 'completed']));
    // Shutdown is graceful: the slow call in flight (2 s, within the drain deadline) was let
    // finish and commit, so the restart did not send it again.
    expect((await crmState(crm)).calls['/rest/crm.contact.list']).to.equal(1);

    // A new request takes v2.
    const fresh = await submit(t, BRANCH_PAYLOADS.A.payload, '?wait=10');
    expect(fresh.status, fresh.text).to.equal(200);
    expect(fresh.body.status).to.equal('completed');
    expect(fresh.body.version).to.equal(2);
    expect((await stepsOf(t, fresh.body.id)).map((s) => s.stepId)).to.deep.equal(V2_ROUTE_A);
  });
});
