/**
 * The dashboard's overview, live updates and role-aware buttons in real Chromium (Debian's
 * package through playwright-core, as test/browser/dashboard.test.ts), with screenshots in
 * test/artifacts/. Also the stale-error race of `route()`: an error of a view the user already
 * left must not land on the next view.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../../src/cli/commands/graph';
import { REPO_ROOT, type TestEngine } from '../support/engine';
import { settle } from '../support/poll';
import { startOpsEngine, submitMix, type Mix } from '../ops/support';

const ARTIFACTS = path.join(REPO_ROOT, 'test', 'artifacts');
const OPERATE_KEY = 'overview-operate-key-0001';

describe('dashboard overview in Chromium', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let mix: Mix;
  let browser: Browser;
  let page: Page;
  let waitingId: string;
  const pageErrors: string[] = [];

  const shot = (p: Page, name: string) => p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const cell = (p: Page, pipeline: string, count: string) => p.locator(`#overview-counts tr[data-pipeline="${pipeline}"] [data-count="${count}"]`);

  async function signIn(key: string): Promise<Page> {
    const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${t.url}/`);
    await p.fill('#login-key', key);
    await p.click('#login-form button[type=submit]');
    await p.locator('#overview-counts').waitFor();
    return p;
  }

  before(async () => {
    const executablePath = chromiumPath();
    if (!executablePath) throw new Error('Chromium is required by the browser tests: bash scripts/services.sh --with-chromium (apt package "chromium"), or set CHROMIUM_PATH');
    mkdirSync(ARTIFACTS, { recursive: true });
    t = await startOpsEngine({ env: { CONVEYOR_LIVE_INTERVAL_MS: '300' }, extraKeys: `${OPERATE_KEY}:operate` });
    mix = await submitMix(t);
    waitingId = (await t.api<{ id: string }>('POST', '/api/pipelines/refund/requests?wait=1', { body: { amount: 40 } })).body.id;
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('opens on the overview after sign-in: counts per pipeline, charts of the last hour, slowest steps', async () => {
    page = await signIn(t.keys.admin);
    expect(page.url()).to.match(/#\/overview$/);
    expect(await cell(page, 'orders', 'open:error_stop').innerText()).to.equal(String(mix.failed.length));
    expect(await cell(page, 'refund', 'open:waiting').innerText()).to.equal('1');
    const ordersDone = mix.all.length - mix.greet.length - mix.failed.length;
    expect(await cell(page, 'orders', 'hour:completed').innerText()).to.equal(String(ordersDone));
    expect(await cell(page, 'greet', 'hour:completed').innerText()).to.equal(String(mix.greet.length));
    expect(await cell(page, 'orders', 'open:error_stop').getAttribute('href')).to.equal('#/requests?pipeline=orders&status=error_stop');
    // Both charts are drawn by uPlot (canvas), with the minute that had traffic.
    for (const id of ['chart-throughput', 'chart-errors']) await page.locator(`#${id} .uplot canvas`).waitFor();
    expect(Number(await page.locator('#chart-throughput').getAttribute('data-points'))).to.be.at.least(1);
    expect(await page.locator('#chart-throughput .u-legend').innerText()).to.include('error_stop');
    const slow = page.locator('#overview-slow tbody tr[data-step]');
    expect(await slow.count()).to.be.at.least(3);
    expect(await slow.first().innerText()).to.match(/\d+ ms\s+\d+ ms\s+\d+ ms/);
    await shot(page, '10-overview');
    expect(pageErrors, pageErrors.join('\n')).to.deep.equal([]);
  });

  it('updates the overview live over Server-Sent Events: no reload, no polling', async () => {
    const overviewCalls: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/overview')) overviewCalls.push(r.url());
    });
    await page.evaluate(() => {
      (window as unknown as { samePage: string }).samePage = 'yes';
    });
    await page.waitForFunction(() => document.documentElement.dataset.live === 'connected');
    const r = await t.api<{ status: string }>('POST', '/api/pipelines/orders/requests?wait=10', { body: { sku: 'live-1', fail: true } });
    expect(r.body.status).to.equal('error_stop');
    await page.waitForFunction((n) => document.querySelector('#overview-counts tr[data-pipeline="orders"] [data-count="open:error_stop"]')?.textContent === n,
      String(mix.failed.length + 1), { timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as { samePage?: string }).samePage), 'the page was not reloaded').to.equal('yes');
    expect(overviewCalls, 'the update came over the stream, not by polling').to.deep.equal([]);
    await shot(page, '11-overview-live-update');
  });

  it('shows Resume and Stop only to a key with operate', async () => {
    const reader = await signIn(t.keys.read);
    const operator = await signIn(OPERATE_KEY);
    try {
      for (const p of [reader, operator]) {
        await p.click('a[data-nav=errors]');
        await p.locator(`#error_stop-list [data-id="${mix.failed[0]}"]`).waitFor();
      }
      expect(await reader.locator('#error_stop-list button[data-op]').count(), 'read-only: no buttons').to.equal(0);
      const card = operator.locator(`#error_stop-list [data-id="${mix.failed[0]}"]`);
      expect(await card.locator('button[data-op]').allInnerTexts()).to.deep.equal(['Resume']);
      await shot(reader, '12-errors-read-only');
      await shot(operator, '13-errors-operator');
      for (const p of [reader, operator]) {
        await p.goto(`${t.url}/#/request/${waitingId}`);
        await p.locator('#facts [data-status=waiting]').waitFor();
      }
      expect(await reader.locator('#controls button[data-op=stop]').count()).to.equal(0);
      expect(await operator.locator('#controls button[data-op=stop]').count()).to.equal(1);
    } finally {
      await reader.close();
      await operator.close();
    }
  });

  it('drops the error of a superseded view: a slow failing request page does not mark the next page', async () => {
    const id = mix.standard[0]!;
    const p = await signIn(t.keys.admin);
    try {
      let answered = 0;
      await p.route(`**/api/requests/${id}`, async (route) => {
        await new Promise((r) => setTimeout(r, 1500));
        await route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'CONVEYOR_ERR_INTERNAL', message: 'slow and broken' } }) });
        answered++;
      });
      // Control: staying on the failing view shows its error.
      await p.goto(`${t.url}/#/request/${id}`);
      await p.waitForFunction(() => /Could not load: slow and broken/.test(document.getElementById('view')!.textContent ?? ''), undefined, { timeout: 10_000 });
      // The race: the failing view is left for another before its answer comes.
      await p.goto(`${t.url}/#/pipelines`);
      await p.evaluate((rid) => {
        window.location.hash = `#/request/${rid}`;
        setTimeout(() => (window.location.hash = '#/pipelines'), 100);
      }, id);
      await p.locator('#view h1', { hasText: 'Pipelines' }).waitFor();
      const before = answered;
      await settle(() => answered, (n) => n !== before, { timeoutMs: 10_000, everyMs: 50 });
      expect(answered, 'the slow answer came').to.be.greaterThan(before);
      // Let the page handle the late answer, then look.
      await p.evaluate(() => new Promise((r) => setTimeout(r, 300)));
      expect(await p.locator('#view h1').innerText()).to.equal('Pipelines');
      expect(await p.locator('#view').innerText()).to.not.include('Could not load');
      await shot(p, '14-stale-error-dropped');
    } finally {
      await p.close();
    }
  });
});
