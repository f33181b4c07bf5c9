/**
 * `conveyor simulate`: a dry run with the supervisor's pure `decide()`, mocked module outputs,
 * and actions and events from flags. In memory only: the command is run as a real process
 * and must create no database and call no module.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { startMarketplaceStandin } from '../../scripts/marketplace-standin';
import { formatSimulation, simulateCommand, simulatePipeline, SimulationError, type SimulationInput } from '../../src/cli/commands/simulate';
import { loadProject } from '../../src/engine';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledPipeline } from '../../src/pipeline/types';
import { REPO_ROOT } from '../support/engine';
import { removeTmpDir, tmpDir } from '../support/tmp';

const LIMITS = { min: 100, max: 10000, maxStepPct: 20, nearLimitPct: 10, nearLow: 110, nearHigh: 9000 };
const LISTING_MOCKS = (mode: string): Record<string, unknown[]> => ({
  INIT: [{ mode, itemId: 'sku-1', categoryId: 'skins', limits: LIMITS, config: 'defaults' }],
  DATA_COLLECTION: [{ item: { title: 'AWP' }, category: { id: 'skins' }, competitors: [], market: { count: 3, min: 900, median: 1000, max: 1200 } }],
  CONTENT_GENERATION: [{ title: 'AWP — CS2', description: 'Скин', comment: 'Спасибо', model: 'm' }],
  PREVIEW_GENERATION: [{ images: ['a.png'] }],
  PRICE_CALCULATION: [{ ok: true, price: 970, source: 'market', reason: 'market' }],
  PUBLISH: [{ productId: 'p-1', price: 970, publishedAt: '2030-01-01T00:00:00Z' }],
  POST_SALE_ACTIONS: [{ messageSent: true, forPricing: { soldPrice: 970, hoursToSell: 1 } }],
  UPDATE_PRICE: [{ nextPrice: 1018.5, reason: 'fast sale' }],
});
const PAYLOAD = { itemId: 'sku-1', categoryId: 'skins', currentPrice: 1000, item: { title: 'AWP', game: 'CS2' } };

describe('conveyor simulate: a dry run in memory', () => {
  let listing: CompiledPipeline;
  let order: CompiledPipeline;
  let project: ReturnType<typeof loadProject>;

  before(() => {
    project = loadProject({ cwd: REPO_ROOT });
    listing = project.pipelines.find((p) => p.id === 'marketplace-listing')!;
    order = project.pipelines.find((p) => p.id === 'service-order')!;
  });

  const run = (p: CompiledPipeline, input: SimulationInput) => simulatePipeline(p, project.registry, input);
  const route = (r: { route: Array<{ stepId: string; status: string }> }) => r.route.map((s) => `${s.stepId}:${s.status}`);

  it('semi mode: follows the approval and the sale event to STOP, step by step with outputs', async () => {
    const r = await run(listing, {
      payload: PAYLOAD, mode: 'semi', mocks: LISTING_MOCKS('semi'),
      actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] }, events: { WAIT_FOR_SALE: [{ orderId: 'o-1', price: 970 }] },
    });
    expect(r.status).to.equal('completed');
    expect(route(r)).to.deep.equal([
      'INIT:completed', 'DATA_COLLECTION:completed', 'CONTENT_GENERATION:completed', 'PREVIEW_GENERATION:completed', 'ADMIN_CONFIRMATION:completed',
      'PRICE_CALCULATION:completed', 'PUBLISH:completed', 'WAIT_FOR_SALE:completed', 'POST_SALE_ACTIONS:completed', 'STOP:completed',
    ]);
    const sale = r.route.find((s) => s.stepId === 'WAIT_FOR_SALE')!;
    expect(sale.output).to.deep.equal({ event: 'marketplace.sale', key: 'p-1', data: { orderId: 'o-1', price: 970 } });
    // Params are rendered as the engine would send them (secrets masked).
    const publish = r.route.find((s) => s.stepId === 'PUBLISH')!;
    expect(publish.params).to.deep.include({ title: 'AWP — CS2', price: 970, images: ['a.png'] });
    expect((r.route.find((s) => s.stepId === 'CONTENT_GENERATION')!.params as Record<string, unknown>).apiKey).to.equal('[REDACTED]');
  });

  it('auto mode: loops with the same mocks, skips the confirmation after the first run, and stops at the bound', async () => {
    const r = await run(listing, {
      payload: PAYLOAD, mode: 'auto', mocks: LISTING_MOCKS('auto'), actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] },
      events: { WAIT_FOR_SALE: Array.from({ length: 20 }, (_v, i) => ({ orderId: `o-${i}` })) },
    });
    expect(r.status).to.equal('completed');
    const loops = r.route.filter((s) => s.stepId === 'LOOP');
    expect(loops.length).to.equal(listing.steps.LOOP!.kind === 'loop' ? (listing.steps.LOOP as { max: number }).max + 1 : 0);
    const confirmations = r.route.filter((s) => s.stepId === 'ADMIN_CONFIRMATION');
    expect(confirmations[0]!.status).to.equal('completed');
    expect(confirmations.slice(1).every((s) => s.status === 'skipped' && s.via === 'when')).to.equal(true);
    expect(r.route.at(-1)!.stepId).to.equal('STOP');
  });

  it('stops where the flags run out: a wait step with no event is reported as waiting, with what it needs', async () => {
    const r = await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: LISTING_MOCKS('semi'), actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] } });
    expect(r.status).to.equal('waiting');
    expect(r.waitingAt).to.deep.equal([{ stepId: 'WAIT_FOR_SALE', kind: 'wait', needs: '--event WAIT_FOR_SALE=data.json or --mock WAIT_FOR_SALE=poll.json or --timeout WAIT_FOR_SALE' }]);
  });

  it('polls: each poll mock is one poll; the sale by polling; a timeout with no onTimeout is error_stop', async () => {
    const polled = await run(listing, {
      payload: PAYLOAD, mode: 'semi', mocks: { ...LISTING_MOCKS('semi'), WAIT_FOR_SALE: [{ done: false }, { done: false }, { done: true, data: { orderId: 'o-9' } }] },
      actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] },
    });
    expect(polled.route.filter((s) => s.stepId === 'WAIT_FOR_SALE').map((s) => s.via)).to.deep.equal(['poll', 'poll', 'poll']);
    expect(polled.status).to.equal('completed');
    const timedOut = await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: LISTING_MOCKS('semi'), actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] }, timeouts: ['WAIT_FOR_SALE'] });
    expect(timedOut.status).to.equal('error_stop');
    expect(timedOut.error).to.include({ stepId: 'WAIT_FOR_SALE', code: 'CONVEYOR_ERR_WAIT_TIMEOUT' });
  });

  it('a mocked failure goes to error_stop as the engine would; a missing mock is an error naming the step', async () => {
    const failed = await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: { ...LISTING_MOCKS('semi'), CONTENT_GENERATION: [{ $error: { message: 'mentions a price' } }] } });
    expect(failed.status).to.equal('error_stop');
    expect(failed.error).to.include({ stepId: 'CONTENT_GENERATION', code: 'CONVEYOR_ERR_MODULE_FAILED', message: 'mentions a price' });
    const { PUBLISH: _p, ...withoutPublish } = LISTING_MOCKS('semi');
    let caught: unknown;
    try {
      await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: withoutPublish, actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }] } });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(SimulationError);
    expect((caught as Error).message).to.equal('step "PUBLISH" (module marketplace-publish) needs a mock: --mock PUBLISH=out.json');
  });

  it('checks actions as the API does: a hidden action and missing required data are refused', async () => {
    const refused = LISTING_MOCKS('semi');
    refused.PRICE_CALCULATION = [{ ok: false, price: 970, violations: ['970 is above MAX 900'] }, { ok: true, price: 880 }];
    const edits = [{ code: 'approve', data: {} }, { code: 'edit', data: { price: 880 } }];
    const ok = await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: refused, actions: { ADMIN_CONFIRMATION: edits }, events: { WAIT_FOR_SALE: [{}] } });
    expect(route(ok).slice(4, 9)).to.deep.equal(['ADMIN_CONFIRMATION:completed', 'PRICE_CALCULATION:completed', 'ADMIN_CONFIRMATION:completed', 'PRICE_CALCULATION:completed', 'PUBLISH:completed']);
    let caught: unknown;
    try {
      await run(listing, { payload: PAYLOAD, mode: 'semi', mocks: refused, actions: { ADMIN_CONFIRMATION: [{ code: 'approve', data: {} }, { code: 'approve', data: {} }] } });
    } catch (e) {
      caught = e;
    }
    expect((caught as Error).message).to.equal('action "approve" of step "ADMIN_CONFIRMATION" is not offered now: no "visible" entry holds');
    caught = undefined;
    try {
      await run(order, {
        payload: { code: 'A-1', sum: 100, service: { need_moderation: true } }, mocks: { notify: [{}], payment: [{ status: 'Authorized' }] },
        actions: { state1: [{ code: 'pay', data: {} }], state2: [{ code: 'action2', data: {} }] },
      });
    } catch (e) {
      caught = e;
    }
    expect((caught as Error).message).to.equal('action "action2" of step "state2": action "action2" needs "executor_user_id"');
  });

  it('seed 003: one mock per module serves every notification step; actions carry _CURRENT_USER_', async () => {
    const r = await run(order, {
      payload: { code: 'A-1', sum: 100, service: { title: 'x', need_moderation: false }, customerUser: { id: 'c' } },
      user: 'env#6',
      mocks: { notify: [{ channel: 'push', to: ['x'] }], payment: [{ status: 'Authorized', transactionId: 7 }] },
      actions: { state1: [{ code: 'pay', data: {} }], state3: [{ code: 'action1', data: {} }], state4: [{ code: 'action1', data: {} }], state5: [{ code: 'action2', data: {} }] },
      timeouts: ['stateDone'],
    });
    expect(r.status).to.equal('completed');
    expect(r.context['state3-action1-setData']).to.deep.include({ executor_user_id: 'env#6', hidden_customer_contact: false });
    expect(route(r)).to.include.members(['stateDone-confirmPay:completed', 'stateDone:failed', 'stateDone-end:completed']);
  });

  it('process variables: each route entry shows what it assigned, the result its vars; a too-large assign fails its step', async () => {
    const compiled = compilePipeline({
      id: 'sim-vars', start: 'take',
      steps: {
        take: { kind: 'action', actions: { take: { allow: ['executor'] } }, assign: { executor: '{{ take.by }}' }, next: ['ping'] },
        ping: { subsystem: 'notify', params: { to: '{{ vars.executor }}' }, assign: { sent: '{{ ping.ok }}' }, next: ['grow'] },
        grow: { kind: 'setData', data: { blob: '{{ payload.blob }}' }, assign: { blob: '{{ grow.blob }}' } },
      },
    }, { source: 'test', modules: project.registry.names() });
    expect(compiled.issues).to.deep.equal([]);
    const p = compiled.pipeline!;
    const input = (blob: string): SimulationInput => ({ payload: { blob }, user: 'u-7', mocks: { ping: [{ ok: true }] }, actions: { take: [{ code: 'take', data: {} }] } });
    const r = await run(p, input('small'));
    expect(r.status).to.equal('completed');
    expect(r.route.map((s) => [s.stepId, s.assigned])).to.deep.equal([['take', { executor: 'u-7' }], ['ping', { sent: true }], ['grow', { blob: 'small' }]]);
    expect(r.route[1]!.params).to.deep.equal({ to: 'u-7' });
    expect(r.vars).to.deep.equal({ executor: 'u-7', sent: true, blob: 'small' });
    const lines = formatSimulation(r, null);
    expect(lines).to.include('vars: {"executor":"u-7","sent":true,"blob":"small"}');
    expect(lines.find((l) => l.includes(' take '))).to.include('vars ← {"executor":"u-7"}');

    const big = await run(p, input('x'.repeat(300 * 1024)));
    expect(big.status).to.equal('error_stop');
    const grow = big.route.find((s) => s.stepId === 'grow')!;
    expect(grow).to.deep.include({ status: 'failed', assigned: null });
    expect(grow.error).to.include({ code: 'CONVEYOR_ERR_VARS_TOO_LARGE' });
    expect(big.vars).to.deep.equal({ executor: 'u-7', sent: true });
  });

  it('runs as a command: prints the route, touches no database and calls no module', async function () {
    this.timeout(90_000);
    const dir = tmpDir('simulate');
    const files: Record<string, unknown> = { 'in.json': PAYLOAD, ...Object.fromEntries(Object.entries(LISTING_MOCKS('semi')).map(([k, v]) => [`${k}.json`, v[0]])), 'sale.json': { orderId: 'o-1' } };
    for (const [name, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), JSON.stringify(v));
    const market = await startMarketplaceStandin({ port: 0 });
    try {
      const env = { ...process.env, DATABASE_URL: `sqlite:${path.join(dir, 'must-not-exist.db')}`, MARKETPLACE_BASE_URL: market.url, LOG_LEVEL: 'error' };
      const argsWithout = (skip?: string): string[] => [
        'bin/conveyor.js', 'simulate', 'marketplace-listing', '--input', path.join(dir, 'in.json'),
        ...Object.keys(LISTING_MOCKS('semi')).filter((k) => k !== skip).flatMap((k) => ['--mock', `${k}=${path.join(dir, `${k}.json`)}`]),
        '--action', 'ADMIN_CONFIRMATION=approve', '--event', `WAIT_FOR_SALE=${path.join(dir, 'sale.json')}`, '--mode', 'semi',
      ];
      const args = argsWithout();
      const text = spawnSync(process.execPath, args, { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 60_000 });
      expect(text.status, text.stderr).to.equal(0);
      expect(text.stdout).to.match(/ADMIN_CONFIRMATION\s+action\s+completed action/);
      expect(text.stdout.trim().split('\n').at(-1)).to.equal('status: completed');
      const json = spawnSync(process.execPath, [...args, '--json'], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 60_000 });
      expect(JSON.parse(json.stdout)).to.deep.include({ pipeline: 'marketplace-listing', status: 'completed', error: null });
      // Exit codes, in process: 1 when the simulation cannot go on, 2 for a wrong command line.
      const io = { out: () => {}, err: (l: string) => void errors.push(l), env: process.env };
      const errors: string[] = [];
      expect(await simulateCommand(argsWithout('PUBLISH').slice(2), io)).to.equal(1);
      expect(errors.join('\n')).to.include('step "PUBLISH" (module marketplace-publish) needs a mock: --mock PUBLISH=out.json');
      expect(await simulateCommand(['marketplace-listing'], io)).to.equal(2);
      expect(errors.at(-1)).to.include('--input in.json is required');
      expect(fs.existsSync(path.join(dir, 'must-not-exist.db'))).to.equal(false);
      expect(market.state.calls).to.deep.equal({});
    } finally {
      await market.close();
      removeTmpDir(dir);
    }
  });
});
