/**
 * docs/migration.md's worked example, run: marketplace listings waiting for their sale in
 * `WAIT_FOR_SALE` (version 1) move to a version 2 that renames the step `WAIT_FOR_BUYER` and
 * adds `RECORD_SALE` after it. Without the mapping the dry run refuses them with the reason;
 * with it they move, and the marketplace's sale webhook then runs version 2's route.
 */
import { expect } from 'chai';
import { startLlmStandin, type LlmState } from '../../scripts/llm-standin';
import { startMarketplaceStandin, type MarketplaceStandin } from '../../scripts/marketplace-standin';
import type { Standin } from '../../scripts/standin-kit';
import { OPS_COMMANDS } from '../../src/cli/commands/index';
import type { Io } from '../../src/cli/commands/args';
import { startTestEngine, type TestEngine } from '../support/engine';
import { freshPipeline, requestClient } from '../workflow/support';
import { registerVersion } from './support';

const ADMIN = 'listing-admin-key-0001';
const HOOK = 'marketplace-hook-key-01';
const LLM_KEY = 'sk-llm-test-secret-0001';

/** Version 2: `WAIT_FOR_SALE` renamed `WAIT_FOR_BUYER`, `RECORD_SALE` added after it. */
function fixedVersion(v1: unknown): Record<string, unknown> {
  const def = JSON.parse(JSON.stringify(v1).replaceAll('WAIT_FOR_SALE', 'WAIT_FOR_BUYER')) as { steps: Record<string, Record<string, unknown>> };
  def.steps.WAIT_FOR_BUYER!.next = ['RECORD_SALE'];
  def.steps.RECORD_SALE = { kind: 'setData', data: { orderId: '{{ WAIT_FOR_BUYER.data.orderId }}' }, prev: ['WAIT_FOR_BUYER'], next: ['POST_SALE_ACTIONS'] };
  def.steps.POST_SALE_ACTIONS!.prev = ['RECORD_SALE'];
  return def;
}

describe('docs/migration.md: the marketplace listing moved to a fixed version', function () {
  this.timeout(120_000);
  let market: MarketplaceStandin;
  let llm: Standin<LlmState>;
  let t: TestEngine;

  before(async () => {
    market = await startMarketplaceStandin({ port: 0 });
    llm = await startLlmStandin({ port: 0, apiKey: LLM_KEY });
    freshPipeline('marketplace-listing');
    t = await startTestEngine({
      env: { MARKETPLACE_BASE_URL: market.url, LLM_BASE_URL: `${llm.url}/v1`, LLM_MODEL: 'conveyor-standin-1', LLM_API_KEY: LLM_KEY, LISTING_POLL_EVERY: '1h' },
      engine: { supervisor: { sweepIntervalMs: 100 }, migrations: { pollMs: 50 } },
      extraKeys: `${ADMIN}:listing-admin+read,${HOOK}:submit`,
    });
    market.setWebhook(`${t.url}/api/events/marketplace.sale`, HOOK);
  });
  after(async () => {
    await t?.close();
    freshPipeline('marketplace-listing');
    await Promise.all([market?.close(), llm?.close()]);
  });

  const cli = async (...argv: string[]): Promise<{ code: number; out: string[] }> => {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: () => undefined, env: { CONVEYOR_URL: t.url, CONVEYOR_API_KEY: t.keys.admin } };
    return { code: await OPS_COMMANDS.requests!(argv, io), out };
  };

  it('refuses without the mapping, moves with it, and the sale runs version 2', async () => {
    const c = requestClient(t);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await t.api<{ id: string }>('POST', '/api/pipelines/marketplace-listing/requests?mode=semi', {
        body: { itemId: `moved-${i}`, categoryId: 'skins', currentPrice: 1000, item: { title: 'AWP | Asiimov', game: 'CS2', features: ['Field-Tested'] } },
      });
      expect(res.status, res.text).to.equal(202);
      await c.waitingAt(res.body.id, 'ADMIN_CONFIRMATION');
      expect((await c.act(res.body.id, 'approve', ADMIN)).status).to.equal(200);
      await c.waitingAt(res.body.id, 'WAIT_FOR_SALE');
      ids.push(res.body.id);
    }
    const v2 = await registerVersion(t, fixedVersion(t.engine.catalog.latest('marketplace-listing')!.pipeline.definition));

    const dry = await cli('migrate', 'marketplace-listing', '--from', '1', '--to', String(v2), '--status', 'waiting', '--dry-run', '--progress', 'none');
    expect(dry.code).to.equal(1);
    expect(dry.out[0]).to.match(/done \(dry run: nothing changed\): would move 0, refused 2, of 2$/);
    expect(dry.out[2]).to.include(`steps.WAIT_FOR_SALE  the request is at "WAIT_FOR_SALE", and version ${v2} has no step "WAIT_FOR_SALE": map it (WAIT_FOR_SALE=<step>)`);

    const run = await cli('migrate', 'marketplace-listing', '--from', '1', '--to', String(v2), '--map', 'WAIT_FOR_SALE=WAIT_FOR_BUYER', '--status', 'waiting', '--progress', 'none');
    expect(run.code, run.out.join('\n')).to.equal(0);
    expect(run.out[0]).to.match(/done: moved 2, refused 0, of 2$/);

    for (const id of ids) {
      const v = await c.get(id);
      const product = (v.context.PUBLISH as { productId: string }).productId;
      await market.sell(product, 'buyer-ann');
      const end = await c.until(id, (x) => x.status === 'completed');
      expect((end as unknown as { version: number }).version).to.equal(v2);
      expect((await c.log(id)).slice(-5)).to.deep.equal(['PUBLISH:completed', 'WAIT_FOR_BUYER:completed', 'RECORD_SALE:completed', 'POST_SALE_ACTIONS:completed', 'STOP:completed']);
      expect((end.context.RECORD_SALE as { orderId: string }).orderId).to.be.a('string').and.not.equal('');
      expect(await c.audit(id)).to.include('env#1 migrate:accepted');
    }
  });
});
