/**
 * Seed 000 end to end: `pipelines/marketplace-listing.pipeline.ts` through the HTTP API, with
 * the marketplace and the LLM as local stand-ins. Every path of the spec: the administrator
 * approves, rejects or edits; the sale arrives by webhook or by polling; auto mode loops to
 * its bound; a refused price; ERROR_STOP, the admin alert, resume and stop; one run per item.
 * Each test asserts the persisted step log.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { startLlmStandin, type LlmState } from '../../scripts/llm-standin';
import { startMarketplaceStandin, type MarketplaceStandin } from '../../scripts/marketplace-standin';
import type { Standin } from '../../scripts/standin-kit';
import { startTestEngine, type TestEngine } from '../support/engine';
import { settle } from '../support/poll';
import { removeTmpDir, tmpDir } from '../support/tmp';
import { freshPipeline, requestClient, startHookServer, type HookServer, type RequestView } from './support';

const ADMIN = 'listing-admin-key-0001'; // env#4
const HOOK = 'marketplace-hook-key-01'; // env#5: the marketplace's webhook submits events
const VIEWER = 'listing-viewer-key-001'; // env#6
const OPERATOR = 'listing-operator-key-1'; // env#7: operate only
const ANNA_KEY = 'listing-anna-key-0001';
const BORIS_KEY = 'listing-boris-key-001';
const LLM_KEY = 'sk-llm-test-secret-0001';

/** The states of one pass, in the spec's order (§3), up to the sale. */
const PASS = ['INIT', 'DATA_COLLECTION', 'CONTENT_GENERATION', 'PREVIEW_GENERATION', 'ADMIN_CONFIRMATION', 'PRICE_CALCULATION', 'PUBLISH', 'WAIT_FOR_SALE'];
const done = (steps: string[]): string[] => steps.map((s) => `${s}:completed`);

describe('seed 000: the marketplace listing workflow end to end', function () {
  this.timeout(60_000);
  let market: MarketplaceStandin;
  let llm: Standin<LlmState>;
  let hook: HookServer;
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;
  let n = 0;

  before(async () => {
    market = await startMarketplaceStandin({ port: 0 });
    llm = await startLlmStandin({ port: 0, apiKey: LLM_KEY });
    hook = await startHookServer();
    freshPipeline('marketplace-listing');
    t = await startTestEngine({
      env: {
        MARKETPLACE_BASE_URL: market.url,
        LLM_BASE_URL: `${llm.url}/v1`,
        LLM_MODEL: 'conveyor-standin-1',
        LLM_API_KEY: LLM_KEY,
        LISTING_POLL_EVERY: '150ms',
        LISTING_MAX_LOOPS: '1',
        CONVEYOR_ADMIN_WEBHOOK: hook.url,
        CONVEYOR_ADMIN_BACKOFF_MS: '50',
      },
      engine: { supervisor: { sweepIntervalMs: 100 } },
      extraKeys: `${ADMIN}:listing-admin+read,${HOOK}:submit,${VIEWER}:read,${OPERATOR}:operate,anna=${ANNA_KEY}:submit,boris=${BORIS_KEY}:submit`,
    });
    c = requestClient(t);
    market.setWebhook(`${t.url}/api/events/marketplace.sale`, HOOK);
  });
  after(async () => {
    await t?.close();
    freshPipeline('marketplace-listing');
    await Promise.all([market?.close(), llm?.close(), hook?.close()]);
  });

  const item = (over: Record<string, unknown> = {}) => ({
    itemId: `item-${++n}`,
    categoryId: 'skins',
    currentPrice: 1000,
    item: { title: 'AWP | Asiimov', game: 'CS2', features: ['Field-Tested', 'StatTrak'] },
    ...over,
  });
  const submit = async (payload: Record<string, unknown>, query = '', key?: string): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', `/api/pipelines/marketplace-listing/requests${query}`, { body: payload, key });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const productOf = (v: RequestView) => market.state.products.find((p) => p.id === (v.context.PUBLISH as { productId: string }).productId)!;

  it('semi mode: every state in order, the administrator approves, the sale arrives by webhook, then STOP', async () => {
    const id = await submit(item(), '?mode=semi');
    const asking = await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    expect((await c.get(id, ADMIN)).actions.map((a) => a.code)).to.deep.equal(['approve', 'reject', 'edit']);
    expect((await c.get(id, VIEWER)).actions).to.deep.equal([]);
    expect(asking.context.CONTENT_GENERATION).to.include({ title: 'AWP | Asiimov — CS2', model: 'conveyor-standin-1' });

    expect((await c.act(id, 'approve', ADMIN)).status).to.equal(200);
    const selling = await c.waitingAt(id, 'WAIT_FOR_SALE');
    const product = productOf(selling);
    expect(product).to.include({ price: 970, title: 'AWP | Asiimov — CS2', status: 'active', sandbox: false });
    expect(product.images).to.have.length(2);
    const price = selling.context.PRICE_CALCULATION as Record<string, unknown>;
    expect(price).to.include({ ok: true, price: 970, source: 'market', changePct: -3 });
    expect(price.reason).to.equal("competitors' median 1000 less 3%: 970; change -3% from 1000 (allowed ±20%); within 100–10000");

    await market.sell(product.id, 'buyer-ann');
    expect(market.state.webhookCalls.at(-1)).to.include({ productId: product.id, status: 200 });
    const end = await c.until(id, (v) => v.status === 'completed');
    expect(end.context.WAIT_FOR_SALE).to.deep.include({ event: 'marketplace.sale', key: product.id });
    expect(end.context.STOP).to.deep.equal({ status: 'completed', reason: 'the listing workflow ended' });
    expect(await c.log(id)).to.deep.equal(done([...PASS, 'POST_SALE_ACTIONS', 'STOP']));

    const order = market.state.orders.find((o) => o.productId === product.id)!;
    expect(order.status).to.equal('confirmed');
    expect(order.messages.map((m) => m.text)).to.deep.equal([`Спасибо за покупку «AWP | Asiimov — CS2»! Заказ ${order.id}. Спасибо за покупку! Напишите, если понадобится помощь.`]);
    // The LLM key was sent, and never stored: the step log shows it masked.
    expect(llm.state.requests.every((r) => r.authorized)).to.equal(true);
    const runs = await c.runs(id);
    expect((runs.find((r) => r.stepId === 'CONTENT_GENERATION')!.params as Record<string, unknown>).apiKey).to.equal('[REDACTED]');
    expect(JSON.stringify(runs)).not.to.include(LLM_KEY);
    expect(await c.audit(id)).to.deep.equal(['env#4 action:approve:accepted']);
  });

  it('semi mode: the administrator rejects, and the run stops with nothing published', async () => {
    const id = await submit(item(), '?mode=semi');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    const published = market.state.products.length;
    expect((await c.act(id, 'reject', VIEWER)).status).to.equal(403);
    expect((await c.act(id, 'reject', ADMIN)).status).to.equal(200);
    const v = await c.until(id, (x) => x.status === 'stopped');
    expect(v.context.STOP_REJECTED).to.deep.equal({ status: 'stopped', reason: 'the administrator rejected the listing' });
    expect(await c.log(id)).to.deep.equal(done([...PASS.slice(0, 5), 'STOP_REJECTED']));
    expect(market.state.products.length).to.equal(published);
    expect((await c.act(id, 'approve', ADMIN)).status).to.equal(409);
    expect(await c.audit(id)).to.deep.equal(['env#6 action:reject:forbidden', 'env#4 action:reject:accepted', 'env#4 action:approve:not_offered']);
  });

  it('semi mode: the administrator edits the price and the title, and those are published', async () => {
    const id = await submit(item(), '?mode=semi');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    const edit = await c.act(id, 'edit', ADMIN, { price: 1100, title: 'AWP Asiimov, почти новый' });
    expect(edit.status, edit.text).to.equal(200);
    const v = await c.waitingAt(id, 'WAIT_FOR_SALE');
    expect(v.context.ADMIN_CONFIRMATION).to.deep.include({ action: 'edit', by: 'env#4', data: { price: 1100, title: 'AWP Asiimov, почти новый' } });
    expect(v.context.PRICE_CALCULATION).to.include({ ok: true, price: 1100, source: 'admin', changePct: 10 });
    expect(productOf(v)).to.include({ price: 1100, title: 'AWP Asiimov, почти новый', description: (v.context.CONTENT_GENERATION as { description: string }).description });
    const runs = await c.runs(id);
    expect((runs.find((r) => r.stepId === 'PRICE_CALCULATION')!.params as Record<string, unknown>).manualPrice).to.equal(1100);
    expect((await t.api('POST', `/api/requests/${id}/stop`, { body: { reason: 'test over' } })).status).to.equal(200);
    expect(await c.log(id)).to.deep.equal([...done(PASS.slice(0, -1)), 'WAIT_FOR_SALE:cancelled']);
  });

  it('test mode: with no webhook the sale is found by polling, and the product went to the sandbox', async () => {
    market.setWebhook(null);
    try {
      const id = await submit(item(), '?mode=semi&test=1');
      await c.waitingAt(id, 'ADMIN_CONFIRMATION');
      await c.act(id, 'approve', ADMIN);
      const v = await c.waitingAt(id, 'WAIT_FOR_SALE');
      const product = productOf(v);
      expect(product.sandbox).to.equal(true);
      expect(v.context.PUBLISH).to.include({ sandbox: true });
      await market.sell(product.id, 'buyer-bob');
      const end = await c.until(id, (x) => x.status === 'completed');
      expect(end.context.WAIT_FOR_SALE).to.deep.equal({ done: true, data: { orderId: product.orderId, productId: product.id, buyer: 'buyer-bob', price: 970 } });
      // Every poll is one step run: its polls are counted on it and kept in its poll history.
      const waits = (await c.runs(id)).filter((r) => r.stepId === 'WAIT_FOR_SALE');
      expect(waits).to.have.length(1);
      expect(waits[0]).to.include({ status: 'completed', module: 'marketplace-check-sale', endedBy: 'poll' });
      expect(waits[0]!.polls).to.be.at.least(2);
      const history = await t.api<{ items: Array<{ n: number; output: { done?: boolean } }> }>('GET', `/api/requests/${id}/steps/${waits[0]!.id}/polls`);
      expect(history.body.items.map((p) => p.n)).to.deep.equal(Array.from({ length: waits[0]!.polls! }, (_v, i) => i + 1));
      expect(history.body.items.at(-1)!.output.done).to.equal(true);
      expect(await c.log(id)).to.deep.equal(done([...PASS, 'POST_SALE_ACTIONS', 'STOP']));
    } finally {
      market.setWebhook(`${t.url}/api/events/marketplace.sale`, HOOK);
    }
  });

  it('auto mode: the first run is confirmed, the next is not; UPDATE_PRICE → LOOP → INIT until the bound, then STOP', async () => {
    const id = await submit(item(), '?mode=auto');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'approve', ADMIN);
    const first = productOf(await c.waitingAt(id, 'WAIT_FOR_SALE'));
    await market.sell(first.id, 'buyer-1');
    // The second pass: sold within a day, so the price went up 5%; no confirmation needed.
    const second = await c.until(id, (v) => v.status === 'waiting' && v.currentSteps[0]?.stepId === 'WAIT_FOR_SALE' && (v.context.PUBLISH as { productId: string }).productId !== first.id);
    expect(second.context.UPDATE_PRICE).to.include({ nextPrice: 1018.5, changePct: 5 });
    expect(second.context.LOOP).to.deep.equal({ iteration: 1, max: 1 });
    expect(second.context.ADMIN_CONFIRMATION).to.deep.equal({ skipped: true, reason: 'no "when" entry held' });
    expect(second.context.PRICE_CALCULATION).to.include({ ok: true, price: 1018.5, source: 'pricing-update', reference: 970 });
    await market.sell(productOf(second).id, 'buyer-2');
    const end = await c.until(id, (v) => v.status === 'completed');
    expect(end.context.LOOP).to.deep.equal({ iteration: 2, max: 1 });
    const pass = done([...PASS, 'POST_SALE_ACTIONS', 'UPDATE_PRICE', 'LOOP']);
    expect(await c.log(id)).to.deep.equal([...pass, ...pass, 'STOP:completed']);
  });

  it('auto mode: a price near the limits needs the administrator again after the first run', async () => {
    // MAX 1050: the market median (1000) is within 10% of it.
    const id = await submit(item({ limits: { max: 1050 } }), '?mode=auto');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'approve', ADMIN);
    const first = productOf(await c.waitingAt(id, 'WAIT_FOR_SALE'));
    await market.sell(first.id);
    const again = await c.until(id, (v) => v.status === 'waiting' && v.currentSteps[0]?.stepId === 'ADMIN_CONFIRMATION' && Boolean(v.context.LOOP));
    expect((again.context.INIT as { limits: { nearHigh: number } }).limits.nearHigh).to.equal(945);
    await c.act(id, 'reject', ADMIN);
    await c.until(id, (v) => v.status === 'stopped');
    const pass = done([...PASS, 'POST_SALE_ACTIONS', 'UPDATE_PRICE', 'LOOP']);
    expect(await c.log(id)).to.deep.equal([...pass, ...done(PASS.slice(0, 5)), 'STOP_REJECTED:completed']);
  });

  it('a price outside the limits goes back to the administrator, who cannot approve it, only fix it', async () => {
    // MAX 900: the market price (970) is above it.
    const id = await submit(item({ limits: { max: 900 } }), '?mode=semi');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'approve', ADMIN);
    const back = await c.until(id, (v) => v.status === 'waiting' && v.currentSteps[0]?.stepId === 'ADMIN_CONFIRMATION' && Boolean(v.context.PRICE_CALCULATION));
    expect(back.context.PRICE_CALCULATION).to.include({ ok: false, price: 970 });
    expect((back.context.PRICE_CALCULATION as { violations: string[] }).violations).to.deep.equal(['970 is above MAX 900']);
    expect((await c.get(id, ADMIN)).actions.map((a) => a.code)).to.deep.equal(['reject', 'edit']);
    const approve = await c.act(id, 'approve', ADMIN);
    expect(approve.status).to.equal(409);
    expect((await c.act(id, 'edit', ADMIN, { price: 880 })).status).to.equal(200);
    const v = await c.waitingAt(id, 'WAIT_FOR_SALE');
    expect(productOf(v).price).to.equal(880);
    expect((await t.api('POST', `/api/requests/${id}/stop`, { body: {} })).status).to.equal(200);
    expect(await c.log(id)).to.deep.equal([
      ...done([...PASS.slice(0, 6), 'ADMIN_CONFIRMATION', 'PRICE_CALCULATION', 'PUBLISH']), 'WAIT_FOR_SALE:cancelled',
    ]);
  });

  it("an administrator's price outside the limits is ERROR_STOP: the admin is alerted; resume with edited params goes on; stop ends it", async () => {
    hook.failFirst = hook.calls + 1; // the webhook fails once, then takes the alert
    const id = await submit(item(), '?mode=semi');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'edit', ADMIN, { price: 5000 });
    const stopped = await c.until(id, (v) => v.status === 'error_stop');
    expect(stopped.error).to.include({ stepId: 'PRICE_CALCULATION', code: 'CONVEYOR_ERR_NON_RETRYABLE' });
    expect(stopped.error!.message).to.equal("the administrator's price is refused: a change of 400% from 1000 exceeds the allowed step of 20%");
    // Nothing continues by itself (§7): still halted a moment later.
    await new Promise((r) => setTimeout(r, 300));
    expect((await c.get(id)).status).to.equal('error_stop');

    await settle(() => hook.bodies.some((b) => (b as { requestId: string }).requestId === id), (seen) => seen, { timeoutMs: 5000, everyMs: 20 });
    const alert = hook.bodies.find((b) => (b as { requestId: string }).requestId === id) as Record<string, Record<string, unknown>>;
    expect(alert).to.deep.include({ requestId: id, pipeline: 'marketplace-listing' });
    expect(alert.error).to.include({ stepId: 'PRICE_CALCULATION', code: 'CONVEYOR_ERR_NON_RETRYABLE' });
    expect(alert.links!.resume).to.equal(`${t.url}/api/requests/${id}/resume`);
    expect(hook.calls).to.be.at.least(hook.failFirst + 1);

    expect((await t.api('POST', `/api/requests/${id}/resume`, { key: VIEWER, body: {} })).status).to.equal(403);
    const resumed = await t.api('POST', `/api/requests/${id}/resume`, { body: { params: { manualPrice: 1100 } } });
    expect(resumed.status, resumed.text).to.equal(200);
    const v = await c.waitingAt(id, 'WAIT_FOR_SALE');
    expect(productOf(v).price).to.equal(1100);
    const prices = (await c.runs(id)).filter((r) => r.stepId === 'PRICE_CALCULATION');
    expect(prices.map((r) => r.status)).to.deep.equal(['failed', 'completed']);
    expect((prices[1]!.params as Record<string, unknown>).manualPrice).to.equal(1100);

    const stop = await t.api<RequestView>('POST', `/api/requests/${id}/stop`, { body: { reason: 'withdrawn' } });
    expect(stop.status).to.equal(200);
    expect(stop.body.status).to.equal('stopped');
    expect(await c.log(id)).to.deep.equal([
      ...done(PASS.slice(0, 5)), 'PRICE_CALCULATION:failed', 'PRICE_CALCULATION:completed', 'PUBLISH:completed', 'WAIT_FOR_SALE:cancelled',
    ]);
    expect(await c.audit(id)).to.deep.equal(['env#4 action:edit:accepted', 'env#1 resume:accepted', 'env#1 stop:accepted']);
  });

  it('§8: a resume may fix the price, never the limits: other params get 422 and change nothing; a +400% price never goes live', async () => {
    const id = await submit(item(), '?mode=semi');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'edit', ADMIN, { price: 5000 });
    await c.until(id, (v) => v.status === 'error_stop');
    const published = market.state.products.length;
    // What an operator once did: widen the step to 1000% and resume with the +400% price.
    const widen = await t.api<{ error: { code: string; message: string; details: unknown } }>('POST', `/api/requests/${id}/resume`, {
      key: OPERATOR, body: { params: { manualPrice: 5000, limits: { min: 100, max: 10000, maxStepPct: 1000, nearLimitPct: 10, nearLow: 110, nearHigh: 9000 } } },
    });
    expect(widen.status, widen.text).to.equal(422);
    expect(widen.body.error).to.deep.equal({
      code: 'CONVEYOR_ERR_PARAM_NOT_RESUMABLE',
      message: 'step "PRICE_CALCULATION" does not let resume replace "limits" (it may replace only "manualPrice")',
      details: { stepId: 'PRICE_CALCULATION', refused: ['limits'], resumable: ['manualPrice'] },
    });
    for (const params of [{ reference: 5000 }, { current: 5000, manualPrice: 5000 }]) {
      expect((await t.api('POST', `/api/requests/${id}/resume`, { key: OPERATOR, body: { params } })).status, JSON.stringify(params)).to.equal(422);
    }
    const still = await c.get(id);
    expect(still.status).to.equal('error_stop');
    expect((await c.runs(id)).filter((r) => r.stepId === 'PRICE_CALCULATION').map((r) => r.status)).to.deep.equal(['failed']);
    // The price itself may be fixed; the same +400% is refused again by the limits.
    expect((await t.api('POST', `/api/requests/${id}/resume`, { key: OPERATOR, body: { params: { manualPrice: 5000 } } })).status).to.equal(200);
    const again = await c.until(id, (v) => v.status === 'error_stop' && (v.error?.message ?? '').includes('400%'));
    expect(again.error).to.include({ stepId: 'PRICE_CALCULATION', message: "the administrator's price is refused: a change of 400% from 1000 exceeds the allowed step of 20%" });
    expect(market.state.products.length).to.equal(published);
    // A price within the limits goes on.
    expect((await t.api('POST', `/api/requests/${id}/resume`, { key: OPERATOR, body: { params: { manualPrice: 1150 } } })).status).to.equal(200);
    expect(productOf(await c.waitingAt(id, 'WAIT_FOR_SALE')).price).to.equal(1150);
    expect((await t.api('POST', `/api/requests/${id}/stop`, { body: {} })).status).to.equal(200);
    expect(await c.log(id)).to.deep.equal([
      ...done(PASS.slice(0, 5)), 'PRICE_CALCULATION:failed', 'PRICE_CALCULATION:failed', 'PRICE_CALCULATION:completed', 'PUBLISH:completed', 'WAIT_FOR_SALE:cancelled',
    ]);
    expect(await c.audit(id)).to.deep.equal([
      'env#4 action:edit:accepted', 'env#7 resume:invalid', 'env#7 resume:invalid', 'env#7 resume:invalid', 'env#7 resume:accepted', 'env#7 resume:accepted',
      'env#1 stop:accepted',
    ]);
  });

  it('the price limits come only from LISTING_CONFIG: a payload may make them stricter, never looser; pricing refuses looser limits it is sent', async () => {
    const loose = await submit(item({ limits: { max: 50_000, maxStepPct: 1000 } }), '?mode=semi');
    const v = await c.until(loose, (x) => x.status === 'error_stop');
    expect(v.error).to.include({
      stepId: 'INIT',
      message: "the price limits are unusable: an item's limits may only be stricter than the configuration: MAX 50000 is above the configured 10000; maxStepPct 1000 is above the configured 20",
    });
    expect(await c.log(loose)).to.deep.equal(['INIT:failed']);
    await t.api('POST', `/api/requests/${loose}/stop`, { body: {} });

    const dir = tmpDir('listing-limits');
    const file = path.join(dir, 'listing.json');
    try {
      // A run started under the defaults (MAX 10000) waits for the administrator, and the
      // configuration is tightened meanwhile: its old limits are now looser than allowed.
      const id = await submit(item(), '?mode=semi');
      await c.waitingAt(id, 'ADMIN_CONFIRMATION');
      writeFileSync(file, JSON.stringify({ limits: { max: 5000 }, categoryLimits: { skins: { maxStepPct: 10 } } }));
      process.env.LISTING_CONFIG = file;
      await c.act(id, 'approve', ADMIN);
      const refused = await c.until(id, (x) => x.status === 'error_stop');
      expect(refused.error).to.include({
        stepId: 'PRICE_CALCULATION',
        message: 'the price limits are looser than the configuration allows: MAX 10000 is above the configured 5000; maxStepPct 20 is above the configured 10',
      });
      await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
      // A new run takes the category's limits from the configuration.
      const fresh = await submit(item(), '?mode=semi');
      const w = await c.waitingAt(fresh, 'ADMIN_CONFIRMATION');
      expect((w.context.INIT as { limits: unknown }).limits).to.deep.equal({ min: 100, max: 5000, maxStepPct: 10, nearLimitPct: 10, nearLow: 110, nearHigh: 4500 });
      await c.act(fresh, 'reject', ADMIN);
    } finally {
      delete process.env.LISTING_CONFIG;
      removeTmpDir(dir);
    }
  });

  it('one run per item: an X-Business-Key that disagrees with payload.itemId gets 422 and starts nothing', async () => {
    const payload = item();
    const id = await submit(payload, '?mode=semi');
    const before = (await t.api<{ items: unknown[] }>('GET', '/api/requests?pipeline=marketplace-listing&limit=200')).body.items.length;
    const other = await t.api<{ error: { code: string } }>('POST', '/api/pipelines/marketplace-listing/requests?mode=semi', { body: payload, headers: { 'x-business-key': `${payload.itemId}-second` } });
    expect(other.status, other.text).to.equal(422);
    expect(other.body.error.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_MISMATCH');
    // The agreeing header meets the active run of the item.
    const same = await t.api<{ error: { code: string } }>('POST', '/api/pipelines/marketplace-listing/requests?mode=semi', { body: payload, headers: { 'x-business-key': payload.itemId } });
    expect(same.status).to.equal(409);
    expect((await t.api<{ items: unknown[] }>('GET', '/api/requests?pipeline=marketplace-listing&limit=200')).body.items.length).to.equal(before);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('one active run per item: a second submit for the item is refused while the first is active', async () => {
    const payload = item();
    const id = await submit(payload, '?mode=semi');
    const second = await t.api<{ error: { code: string } }>('POST', '/api/pipelines/marketplace-listing/requests?mode=semi', { body: payload });
    expect(second.status, second.text).to.equal(409);
    expect(second.body.error.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_ACTIVE');
    await c.waitingAt(id, 'ADMIN_CONFIRMATION');
    await c.act(id, 'reject', ADMIN);
    await c.until(id, (v) => v.status === 'stopped');
    // Once the run ended, the item may run again.
    const again = await t.api<{ id: string }>('POST', '/api/pipelines/marketplace-listing/requests?mode=semi', { body: payload });
    expect(again.status, again.text).to.equal(202);
    await t.api('POST', `/api/requests/${again.body.id}/stop`, { body: {} });
  });

  it('content that mentions a price is refused (§5.3): ERROR_STOP before anything is published', async () => {
    await fetch(`${llm.url}/_mode`, { method: 'POST', body: JSON.stringify({ mentionPrice: true }) });
    try {
      const id = await submit(item(), '?mode=semi');
      const v = await c.until(id, (x) => x.status === 'error_stop');
      expect(v.error).to.include({ stepId: 'CONTENT_GENERATION', code: 'CONVEYOR_ERR_NON_RETRYABLE' });
      expect(v.error!.message).to.match(/mentions a price \("Цена/);
      expect(await c.log(id)).to.deep.equal(['INIT:completed', 'DATA_COLLECTION:completed', 'CONTENT_GENERATION:failed']);
    } finally {
      await fetch(`${llm.url}/_mode`, { method: 'POST', body: JSON.stringify({ mentionPrice: false }) });
    }
  });

  it('INIT checks who started the run (the actor, never a name in the payload) and the category against LISTING_CONFIG (§5.1)', async () => {
    const dir = tmpDir('listing-config');
    const file = path.join(dir, 'listing.json');
    writeFileSync(file, JSON.stringify({ limits: { min: 200, max: 5000 }, categories: ['skins'], admins: ['anna'] }));
    process.env.LISTING_CONFIG = file;
    try {
      const stranger = await submit(item(), '?mode=semi', BORIS_KEY);
      expect((await c.until(stranger, (v) => v.status === 'error_stop')).error!.message).to.equal('"boris" is not an administrator of this workflow');
      // Typing an administrator's name into the payload changes nothing: the actor is boris.
      const pretender = await submit(item({ requestedBy: 'anna' }), '?mode=semi', BORIS_KEY);
      expect((await c.until(pretender, (v) => v.status === 'error_stop')).error!.message).to.equal('"boris" is not an administrator of this workflow');
      const elsewhere = await submit(item({ categoryId: 'accounts' }), '?mode=semi', ANNA_KEY);
      expect((await c.until(elsewhere, (v) => v.status === 'error_stop')).error!.message).to.equal('category "accounts" is not enabled (enabled: skins)');
      const fine = await submit(item({ limits: { maxStepPct: 15 } }), '?mode=semi', ANNA_KEY);
      const v = await c.waitingAt(fine, 'ADMIN_CONFIRMATION');
      expect(v.context.INIT).to.deep.include({ mode: 'semi', config: file, limits: { min: 200, max: 5000, maxStepPct: 15, nearLimitPct: 10, nearLow: 220, nearHigh: 4500 } });
      await c.act(fine, 'reject', ADMIN);
    } finally {
      delete process.env.LISTING_CONFIG;
      removeTmpDir(dir);
    }
  });

  it('INIT refuses an unknown mode (§5.1: error → ERROR_STOP)', async () => {
    const id = await submit(item(), '?mode=turbo');
    const v = await c.until(id, (x) => x.status === 'error_stop');
    expect(v.error).to.include({ stepId: 'INIT', code: 'CONVEYOR_ERR_NON_RETRYABLE', message: 'mode must be "semi" or "auto" (got "turbo")' });
    expect(await c.log(id)).to.deep.equal(['INIT:failed']);
  });
});
