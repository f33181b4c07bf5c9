/**
 * The CRM stand-in and the bitrix example modules, without the engine: each module's
 * `handle()` is called directly with a fake ModuleContext against a stand-in on a free port.
 */
import { expect } from 'chai';
import axios from 'axios';
import { BRANCH_PAYLOADS, startCrmStandin } from '../../scripts/crm-standin';
import type { CrmStandin } from '../../scripts/crm-standin';
import { NonRetryableError } from '../../src';
import type { ModuleContext, ModuleDef } from '../../src';
import findContact from '../../modules/find-contact.module';
import findDeal from '../../modules/find-deal.module';
import getDeal from '../../modules/get-deal.module';
import setDefaultValues from '../../modules/set-default-values.module';
import createLead from '../../modules/create-lead.module';
import updateLead from '../../modules/update-lead.module';
import hello from '../../modules/hello.module';

type Ctx = Record<string, unknown>;

function fakeCtx(stepId: string, over: Partial<ModuleContext> = {}): ModuleContext {
  const silent = (): void => {};
  return {
    requestId: 'req-test-1',
    pipeline: 'bitrix-lead',
    stepId,
    attempt: 1,
    idempotencyKey: `req-test-1:${stepId}:1`,
    test: false,
    signal: new AbortController().signal,
    log: { info: silent, warn: silent, error: silent },
    ...over,
  };
}

/** Runs a module the way the engine would, with `context` as the request context. */
function run<P, O>(mod: ModuleDef<P, O>, stepId: string, context: Ctx, params: P = {} as P): Promise<O> {
  return mod.handle({ params, context }, fakeCtx(stepId));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

describe('CRM stand-in and the bitrix modules', function () {
  this.timeout(10_000);
  let crm: CrmStandin;
  const savedBaseUrl = process.env.CRM_BASE_URL;
  const http = axios.create({ validateStatus: () => true });

  before(async () => {
    crm = await startCrmStandin({ port: 0, host: '127.0.0.1' });
    process.env.CRM_BASE_URL = crm.url;
  });

  after(async () => {
    await crm?.close();
    if (savedBaseUrl === undefined) delete process.env.CRM_BASE_URL;
    else process.env.CRM_BASE_URL = savedBaseUrl;
  });

  beforeEach(() => crm.reset());

  describe('Bitrix-shaped REST endpoints', () => {
    it('crm.contact.list filters by e-mail, case-insensitively', async () => {
      const r = await http.post(`${crm.url}/rest/crm.contact.list`, { filter: { EMAIL: 'OLGA@example.com' } });
      expect(r.status).to.equal(200);
      expect(r.data.result).to.have.length(1);
      expect(r.data.result[0].ID).to.equal('102');
      const none = await http.post(`${crm.url}/rest/crm.contact.list`, { filter: { EMAIL: 'new@example.com' } });
      expect(none.data.result).to.deep.equal([]);
    });

    it('crm.deal.list returns open and closed deals, filtered by CLOSED when asked', async () => {
      const all = await http.post(`${crm.url}/rest/crm.deal.list`, { filter: { CONTACT_ID: '102' } });
      expect(all.data.result.map((d: { ID: string }) => d.ID)).to.deep.equal(['4001', '5001']);
      const open = await http.post(`${crm.url}/rest/crm.deal.list`, { filter: { CONTACT_ID: '102', CLOSED: 'N' } });
      expect(open.data.result.map((d: { ID: string }) => d.ID)).to.deep.equal(['5001']);
      const latest = await http.post(`${crm.url}/rest/crm.deal.list`, { filter: { CONTACT_ID: 102 }, order: { DATE_CREATE: 'DESC' } });
      expect(latest.data.result[0].ID).to.equal('5001');
    });

    it('crm.deal.get answers the deal, and 400 for an unknown id', async () => {
      const r = await http.post(`${crm.url}/rest/crm.deal.get`, { id: '5002' });
      expect(r.status).to.equal(200);
      expect(r.data.result).to.include({ ID: '5002', STAGE_ID: 'WON', CONTACT_ID: '103', CLOSED: 'Y' });
      const missing = await http.post(`${crm.url}/rest/crm.deal.get`, { id: '999' });
      expect(missing.status).to.equal(400);
      expect(missing.data.error_description).to.equal('Not found');
    });

    it('crm.lead.add and crm.lead.update change the state', async () => {
      const add = await http.post(`${crm.url}/rest/crm.lead.add`, { fields: { TITLE: 'x', NAME: 'X' } });
      expect(add.status).to.equal(200);
      const id = String(add.data.result);
      const upd = await http.post(`${crm.url}/rest/crm.lead.update`, { id, fields: { STATUS_ID: 'IN_PROCESS' } });
      expect(upd.data).to.deep.equal({ result: true });
      const lead = crm.state.leads.find((l) => l.ID === id);
      expect(lead).to.include({ TITLE: 'x', NAME: 'X', STATUS_ID: 'IN_PROCESS' });
      const bad = await http.post(`${crm.url}/rest/crm.lead.update`, { id: '1', fields: {} });
      expect(bad.status).to.equal(400);
    });

    it('GET /_state answers every collection; reset() restores the fixtures', async () => {
      await http.post(`${crm.url}/rest/crm.lead.add`, { fields: { TITLE: 'x' } });
      const s = await http.get(`${crm.url}/_state`);
      expect(s.status).to.equal(200);
      expect(s.data).to.have.all.keys('contacts', 'deals', 'leads', 'remembered', 'calls');
      expect(s.data.leads).to.have.length(2);
      crm.reset();
      expect(crm.state.leads).to.have.length(1);
      expect(crm.state.calls).to.deep.equal({});
    });

    it('answers 400 to malformed JSON, 404 to an unknown path, 405 to a wrong method', async () => {
      const bad = await http.post(`${crm.url}/rest/crm.contact.list`, '{"filter": {', {
        headers: { 'content-type': 'application/json' },
        transformRequest: [(d: unknown) => d],
      });
      expect(bad.status).to.equal(400);
      expect(bad.data.error).to.equal('INVALID_JSON');
      const badModule = await http.post(`${crm.url}/modules/remember-deal`, 'not json', {
        headers: { 'content-type': 'application/json' },
        transformRequest: [(d: unknown) => d],
      });
      expect(badModule.status).to.equal(400);
      expect((await http.post(`${crm.url}/rest/crm.nothing`, {})).status).to.equal(404);
      expect((await http.get(`${crm.url}/rest/crm.deal.get`)).status).to.equal(405);
    });
  });

  describe('in-process modules', () => {
    it('find-contact finds a known contact by params.email, or by payload.email as a fallback', async () => {
      const byParam = await run(findContact, 'bitrix-find-contact', { payload: {} }, { email: 'ivan@example.com' });
      expect(byParam).to.deep.equal({ ID: '101', NAME: 'Ivan Petrov', EMAIL: 'ivan@example.com' });
      // A template over a missing field renders '': fall back to the payload.
      const byPayload = await run(findContact, 'bitrix-find-contact', { payload: { email: 'petr@example.com' } }, { email: '' });
      expect(byPayload).to.include({ ID: '103' });
    });

    it('find-contact returns {} for an unknown e-mail and refuses a missing one', async () => {
      expect(await run(findContact, 'bitrix-find-contact', { payload: { email: 'new@example.com' } })).to.deep.equal({});
      const err = await rejection(run(findContact, 'bitrix-find-contact', { payload: {} }));
      expect(err).to.be.instanceOf(NonRetryableError);
    });

    it('find-deal returns the most recent deal of the contact, open or closed', async () => {
      // Olga has an older closed deal 4001 and a newer open one 5001.
      expect(await run(findDeal, 'get-bitrix-deal', { payload: {}, 'bitrix-find-contact': { ID: '102' } })).to.deep.equal({
        value: { ID: '5001' },
      });
      // Petr's only deal is closed; it is still found.
      expect(await run(findDeal, 'get-bitrix-deal', { payload: {}, 'bitrix-find-contact': { ID: '103' } })).to.deep.equal({
        value: { ID: '5002' },
      });
    });

    it('find-deal returns { value: null } with no deal or no contact, and honours payload.dealId', async () => {
      expect(await run(findDeal, 'get-bitrix-deal', { payload: {}, 'bitrix-find-contact': { ID: '101' } })).to.deep.equal({ value: null });
      const before = crm.state.calls['/rest/crm.deal.list'] ?? 0;
      expect(await run(findDeal, 'get-bitrix-deal', { payload: {}, 'bitrix-find-contact': {} })).to.deep.equal({ value: null });
      expect(crm.state.calls['/rest/crm.deal.list'] ?? 0).to.equal(before); // no CRM call without a contact
      expect(await run(findDeal, 'get-bitrix-deal', { payload: { dealId: 5002 }, 'bitrix-find-contact': {} })).to.deep.equal({
        value: { ID: '5002' },
      });
    });

    it('get-deal loads the deal with a boolean CLOSED', async () => {
      expect(await run(getDeal, 'get-bitrix-deal-by-id', { payload: {}, 'get-bitrix-deal': { value: { ID: '5001' } } })).to.deep.equal({
        ID: '5001',
        STAGE_ID: 'NEW',
        TITLE: 'Olga: consulting',
        CONTACT_ID: '102',
        CLOSED: false,
      });
      expect(await run(getDeal, 'get-bitrix-deal-by-id', { payload: {}, 'get-bitrix-deal': { value: { ID: '5002' } } })).to.include({
        ID: '5002',
        CLOSED: true,
      });
    });

    it('get-deal turns a CRM 4xx (unknown deal) into a NonRetryableError', async () => {
      const err = await rejection(run(getDeal, 'get-bitrix-deal-by-id', { payload: {}, 'get-bitrix-deal': { value: { ID: '999' } } }));
      expect(err).to.be.instanceOf(NonRetryableError);
      expect((err as Error).message).to.match(/crm\.deal\.get answered 400/);
    });

    it('set-default-values computes the defaults without calling the CRM', async () => {
      const calls = { ...crm.state.calls };
      expect(await run(setDefaultValues, 'bitrix-lead-set-default-values', { payload: { email: 'new@example.com' } })).to.deep.equal({
        TITLE: 'Lead from new@example.com',
        SOURCE_ID: 'WEB',
        ASSIGNED_BY_ID: '1',
        STATUS_ID: 'NEW',
      });
      expect(await run(setDefaultValues, 'bitrix-lead-set-default-values', { payload: { email: 'a@b.c' } }, { assignedTo: '7' })).to.include({
        ASSIGNED_BY_ID: '7',
      });
      expect(crm.state.calls).to.deep.equal(calls);
    });

    it('create-lead adds a lead from the payload and the defaults', async () => {
      const context: Ctx = {
        payload: BRANCH_PAYLOADS.A.payload,
        'bitrix-find-contact': {},
        'get-bitrix-deal': { value: null },
        'bitrix-lead-set-default-values': { TITLE: 'Lead from new@example.com', SOURCE_ID: 'WEB', ASSIGNED_BY_ID: '5', STATUS_ID: 'NEW' },
      };
      const out = await run(createLead, 'bitrix-create-lead', context);
      expect(out).to.have.keys('leadId');
      const lead = crm.state.leads.find((l) => l.ID === out.leadId);
      expect(lead).to.include({ TITLE: 'Lead from new@example.com', NAME: 'New Person', ASSIGNED_BY_ID: '5', STATUS_ID: 'NEW' });
      expect(lead).to.not.have.property('CONTACT_ID');
      expect(lead?.EMAIL).to.deep.equal([{ VALUE: 'new@example.com', VALUE_TYPE: 'WORK' }]);
    });

    it('create-lead links a known contact whose deal is closed (route D)', async () => {
      const out = await run(createLead, 'bitrix-create-lead', {
        payload: BRANCH_PAYLOADS.D.payload,
        'bitrix-find-contact': { ID: '103', NAME: 'Petr Ivanov', EMAIL: 'petr@example.com' },
        'get-bitrix-deal': { value: { ID: '5002' } },
        'get-bitrix-deal-by-id': { ID: '5002', STAGE_ID: 'WON', TITLE: 'Petr: hardware', CONTACT_ID: '103', CLOSED: true },
      });
      const lead = crm.state.leads.find((l) => l.ID === out.leadId);
      expect(lead).to.include({ CONTACT_ID: '103', TITLE: 'Lead from petr@example.com', SOURCE_ID: 'WEB' });
      expect(lead).to.not.have.property('DEAL_ID');
    });

    it('update-lead adds a lead linked to the contact and the open deal', async () => {
      const out = await run(updateLead, 'bitrix-update-lead', {
        payload: BRANCH_PAYLOADS.C.payload,
        'bitrix-find-contact': { ID: '102', NAME: 'Olga Smirnova', EMAIL: 'olga@example.com' },
        'get-bitrix-deal': { value: { ID: '5001' } },
        'get-bitrix-deal-by-id': { ID: '5001', STAGE_ID: 'NEW', TITLE: 'Olga: consulting', CONTACT_ID: '102', CLOSED: false },
        'remember-deal': { remembered: true, contactId: '102', dealId: '5001' },
      });
      expect(out.linkedDealId).to.equal('5001');
      expect(crm.state.leads.find((l) => l.ID === out.leadId)).to.include({ CONTACT_ID: '102', DEAL_ID: '5001' });
    });

    it('update-lead without a deal links the contact only (route B), and updates payload.leadId', async () => {
      const out = await run(updateLead, 'bitrix-update-lead', {
        payload: BRANCH_PAYLOADS.B.payload,
        'bitrix-find-contact': { ID: '101', NAME: 'Ivan Petrov', EMAIL: 'ivan@example.com' },
        'get-bitrix-deal': { value: null },
        'remember-deal': { remembered: true, contactId: '101', dealId: null },
      });
      expect(out.linkedDealId).to.equal(null);
      const lead = crm.state.leads.find((l) => l.ID === out.leadId);
      expect(lead).to.include({ CONTACT_ID: '101' });
      expect(lead).to.not.have.property('DEAL_ID');

      const count = crm.state.leads.length;
      const upd = await run(updateLead, 'bitrix-update-lead', {
        payload: { email: 'ivan@example.com', leadId: '7001' },
        'remember-deal': { remembered: true, contactId: '101', dealId: null },
      });
      expect(upd).to.deep.equal({ leadId: '7001', linkedDealId: null });
      expect(crm.state.leads).to.have.length(count);
    });

    it('hello greets params.name, or the world', async () => {
      expect(await run(hello, 'greet', { payload: {} }, { name: 'Ada' })).to.deep.equal({ greeting: 'Hello, Ada' });
      expect(await run(hello, 'greet', { payload: {} }, {})).to.deep.equal({ greeting: 'Hello, world' });
    });
  });

  describe('remember-deal over the HTTP module protocol', () => {
    const body = (idempotencyKey: string): Record<string, unknown> => ({
      requestId: 'req-42',
      pipeline: 'bitrix-lead',
      stepId: 'remember-deal',
      attempt: 1,
      idempotencyKey,
      test: false,
      params: {},
      context: {
        payload: { email: 'olga@example.com' },
        request: { id: 'req-42', pipeline: 'bitrix-lead' },
        'bitrix-find-contact': { ID: '102' },
        'get-bitrix-deal': { value: { ID: '5001' } },
        'get-bitrix-deal-by-id': { ID: '5001', CONTACT_ID: '102', CLOSED: false },
      },
      callbackUrl: 'http://127.0.0.1:1/callback',
    });

    it('answers 200 { data } and stores the association once per idempotencyKey', async () => {
      const first = await http.post(`${crm.url}/modules/remember-deal`, body('req-42:remember-deal'));
      expect(first.status).to.equal(200);
      expect(first.data).to.deep.equal({ data: { remembered: true, contactId: '102', dealId: '5001' } });
      const again = await http.post(`${crm.url}/modules/remember-deal`, { ...body('req-42:remember-deal'), attempt: 2 });
      expect(again.status).to.equal(200);
      expect(again.data).to.deep.equal(first.data);
      expect(crm.state.remembered).to.have.length(1);
      expect(crm.state.remembered[0]).to.include({ requestId: 'req-42', contactId: '102', dealId: '5001', idempotencyKey: 'req-42:remember-deal' });

      await http.post(`${crm.url}/modules/remember-deal`, body('req-43:remember-deal'));
      expect(crm.state.remembered).to.have.length(2);
    });

    it('remembers a contact without a deal (route B)', async () => {
      const r = await http.post(`${crm.url}/modules/remember-deal`, {
        ...body('req-b'),
        context: { payload: BRANCH_PAYLOADS.B.payload, 'bitrix-find-contact': { ID: '101' }, 'get-bitrix-deal': { value: null } },
      });
      expect(r.data).to.deep.equal({ data: { remembered: true, contactId: '101', dealId: null } });
    });

    it('answers 4xx to a call without an idempotencyKey', async () => {
      const r = await http.post(`${crm.url}/modules/remember-deal`, { ...body(''), idempotencyKey: undefined });
      expect(r.status).to.equal(400);
      expect(crm.state.remembered).to.have.length(0);
    });
  });

  describe('fault injection', () => {
    it('answers the injected status the next `times` calls, then recovers', async () => {
      const set = await http.post(`${crm.url}/_faults`, { path: '/rest/crm.contact.list', status: 500, times: 1 });
      expect(set.status).to.equal(200);
      const err = await rejection(run(findContact, 'bitrix-find-contact', { payload: { email: 'ivan@example.com' } }));
      expect(err).to.be.instanceOf(Error);
      expect(err).to.not.be.instanceOf(NonRetryableError); // a 5xx is retryable
      expect((err as Error).message).to.match(/answered 500/);
      // The retry succeeds.
      expect(await run(findContact, 'bitrix-find-contact', { payload: { email: 'ivan@example.com' } })).to.include({ ID: '101' });
      expect(crm.state.calls['/rest/crm.contact.list']).to.equal(2);
    });

    it('a 4xx fault becomes a NonRetryableError from the module', async () => {
      await http.post(`${crm.url}/_faults`, { path: 'rest/crm.deal.list', status: 403 });
      const err = await rejection(run(findDeal, 'get-bitrix-deal', { payload: {}, 'bitrix-find-contact': { ID: '102' } }));
      expect(err).to.be.instanceOf(NonRetryableError);
    });

    it('delays a call, and the module call can be aborted through ctx.signal', async () => {
      await http.post(`${crm.url}/_faults`, { path: '/rest/crm.deal.get', delayMs: 2_000 });
      const ac = new AbortController();
      const started = Date.now();
      const pending = getDeal.handle(
        { params: {}, context: { 'get-bitrix-deal': { value: { ID: '5001' } } } },
        fakeCtx('get-bitrix-deal-by-id', { signal: ac.signal }),
      );
      setTimeout(() => ac.abort(), 100);
      const err = await rejection(pending);
      expect(err).to.not.be.instanceOf(NonRetryableError);
      expect(Date.now() - started).to.be.lessThan(1_500);
    });

    it('a delay without a status still answers normally', async () => {
      await http.post(`${crm.url}/_faults`, { path: '/rest/crm.deal.get', delayMs: 150 });
      const started = Date.now();
      const out = await run(getDeal, 'get-bitrix-deal-by-id', { 'get-bitrix-deal': { value: { ID: '5001' } } });
      expect(out.ID).to.equal('5001');
      expect(Date.now() - started).to.be.at.least(140);
    });

    it('rejects a malformed fault', async () => {
      expect((await http.post(`${crm.url}/_faults`, { status: 500 })).status).to.equal(400);
      expect((await http.post(`${crm.url}/_faults`, { path: '/rest/crm.deal.get' })).status).to.equal(400);
      expect((await http.post(`${crm.url}/_faults`, { path: '/rest/crm.deal.get', status: 99 })).status).to.equal(400);
    });
  });

  describe('BRANCH_PAYLOADS', () => {
    it('walks each route module by module, as the pipeline would route it', async () => {
      for (const [name, branch] of Object.entries(BRANCH_PAYLOADS)) {
        const context: Ctx = { payload: branch.payload, request: { id: `req-${name}` } };
        const route: string[] = [];
        const step = async <P, O>(id: string, mod: ModuleDef<P, O>, params?: P): Promise<O> => {
          route.push(id);
          const out = await run(mod, id, context, params);
          context[id] = out;
          return out;
        };
        const contact = await step('bitrix-find-contact', findContact, { email: branch.payload.email });
        const found = await step('get-bitrix-deal', findDeal);
        let leadId: string;
        if (found.value === null && !contact.ID) {
          await step('bitrix-lead-set-default-values', setDefaultValues);
          leadId = (await step('bitrix-create-lead', createLead)).leadId;
        } else {
          let closed = false;
          if (found.value !== null) closed = (await step('get-bitrix-deal-by-id', getDeal)).CLOSED;
          if (closed) {
            leadId = (await step('bitrix-create-lead', createLead)).leadId;
          } else {
            route.push('remember-deal');
            const r = await http.post(`${crm.url}/modules/remember-deal`, {
              requestId: `req-${name}`,
              idempotencyKey: `req-${name}:remember-deal`,
              attempt: 1,
              test: false,
              params: {},
              context,
            });
            context['remember-deal'] = r.data.data;
            leadId = (await step('bitrix-update-lead', updateLead)).leadId;
          }
        }
        expect(route, `route ${name}`).to.deep.equal(branch.expectedRoute);
        const lead = crm.state.leads.find((l) => l.ID === leadId);
        expect(lead?.CONTACT_ID ?? null, `route ${name} CONTACT_ID`).to.equal(branch.expectedLink.contactId);
        expect(lead?.DEAL_ID ?? null, `route ${name} DEAL_ID`).to.equal(branch.expectedLink.dealId);
        expect(crm.state.remembered.some((r) => r.requestId === `req-${name}`), `route ${name} remembers`).to.equal(branch.remembers);
      }
    });
  });
});
