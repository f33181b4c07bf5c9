/**
 * The dashboard's Sources view in real Chromium: a broker source with its state and counts,
 * and the message it dead-lettered, with the reason.
 */
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../../src/cli/commands/graph';
import { FIXTURE_MODULES, openAmqp, unique, writePipelines, type Amqp } from '../brokers/helpers';
import { until } from '../intake/helpers';
import { openView, signIn } from '../support/dashboard';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requireAmqp } from '../support/services';
import { cleanupTmpDirs } from '../support/tmp';

describe('dashboard: broker sources view in Chromium', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let amqp: Amqp;
  let browser: Browser;
  let page: Page;
  const queue = unique('t.dash');
  const id = unique('dash-src');

  before(async () => {
    const executablePath = chromiumPath();
    if (!executablePath) throw new Error('Chromium is required by the browser tests: bash scripts/services.sh --with-chromium (apt package "chromium"), or set CHROMIUM_PATH');
    const url = await requireAmqp();
    amqp = await openAmqp(url);
    t = await startTestEngine({
      pipelinesDir: writePipelines([{ id, start: 'work', sources: [{ kind: 'amqp', name: 'erp-catalog', queue }], steps: { work: { subsystem: 'in-work' } } }]),
      modulesDir: FIXTURE_MODULES, env: { AMQP_URL: url }, engine: { sources: { checkMs: 100 } },
    });
    await until('the queue to exist', () => amqp.depth(queue).then(() => true, () => false), 20_000, 100);
    await amqp.send(queue, [{ body: { sku: 'A' }, id: 'ok-1' }, { raw: Buffer.from('not json at all'), id: 'broken-1' }]);
    await until('both messages to be handled', async () => (await t.api<{ rejects: unknown[] }>('GET', '/api/sources')).body.rejects.length === 1, 20_000, 100);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await t?.close();
    const ch = await amqp.conn.createChannel();
    for (const q of [queue, `${queue}.dead`]) await ch.deleteQueue(q).catch(() => undefined);
    await amqp.close();
    cleanupTmpDirs();
  });

  it('lists the source and the dead-lettered message with its reason', async () => {
    await signIn(page, t.url, t.keys.read);
    await openView(page, '#/sources');
    const row = page.locator(`tr[data-source="${id}/erp-catalog"]`);
    await row.waitFor({ timeout: 20_000 });
    const cells = await row.locator('td').allInnerTexts();
    expect(cells.slice(0, 2)).to.deep.equal([id, 'erp-catalog']);
    expect(cells[3]).to.equal(`queue ${queue}`);
    expect(cells[4]).to.equal('consuming');
    expect(cells.slice(5, 8)).to.deep.equal(['1', '0', '1']);
    const reject = page.locator('tr[data-reject]', { hasText: 'broken-1' });
    expect(await reject.locator('td').nth(4).innerText()).to.equal('CONVEYOR_ERR_BAD_JSON');
    expect(await reject.locator('td').nth(5).innerText()).to.match(/message is not valid JSON/);
  });
});
