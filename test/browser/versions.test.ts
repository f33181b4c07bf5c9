/**
 * The pipeline page's versions card in real Chromium: each version with how many requests run
 * on it, the comparison of two versions through a mapping, and a migration whose dry run's
 * result is shown before it runs.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../../src/cli/commands/graph';
import { openView, signIn } from '../support/dashboard';
import { startTestEngine, type TestEngine } from '../support/engine';
import { FIXTURES, MOVE_WAIT_V2, registerVersion, scalar, untilCount } from '../migration/support';

describe('dashboard: pipeline versions, diff and migration in Chromium', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let browser: Browser;
  let page: Page;
  let v2: number;

  before(async () => {
    const executablePath = chromiumPath();
    if (!executablePath) throw new Error('Chromium is required by the browser tests: bash scripts/services.sh --with-chromium (apt package "chromium"), or set CHROMIUM_PATH');
    t = await startTestEngine({ pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), engine: { migrations: { pollMs: 50 } } });
    for (let n = 0; n < 6; n++) await t.engine.intake.submit({ pipelineId: 'move-wait', payload: { n, key: `b-${n}`, hold: n === 5 } });
    await untilCount(t, "SELECT COUNT(*) AS n FROM requests WHERE status = 'waiting'", [], 6);
    v2 = await registerVersion(t, MOVE_WAIT_V2);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('lists the versions, compares them, shows the dry run, then migrates', async () => {
    await signIn(page, t.url, t.keys.admin);
    await openView(page, '#/pipeline/move-wait');
    const v1Row = page.locator('tr[data-version="1"]');
    await v1Row.waitFor({ timeout: 20_000 });
    expect(await v1Row.locator('td').allInnerTexts()).to.deep.equal(['1', await v1Row.locator('td').nth(1).innerText(), '6', 'waiting 6']);
    expect(await page.locator(`tr[data-version="${v2}"] td`).first().innerText()).to.equal(`${v2} (current)`);

    await page.fill('input[name=map]', 'wait=await_wake');
    await page.click('[data-do=diff]');
    await page.locator('.versions-result', { hasText: 'Renamed' }).waitFor();
    const diff = await page.locator('.versions-result').innerText();
    expect(diff).to.include('Added: added').and.include('Removed: hold').and.include('Renamed: wait → await_wake');

    await page.click('[data-do=dry-run]');
    await page.locator('[data-migration-status=done]').waitFor();
    expect(await page.locator('[data-migration-status]').innerText()).to.match(/\(dry run: nothing changed\): would move 5, refused 1, left 0, of 6$/);
    expect(await page.locator('.versions-result tbody tr td').nth(1).innerText()).to.equal('steps.hold');
    expect(await scalar(t, 'SELECT COUNT(*) AS n FROM requests WHERE version = ?', [v2])).to.equal(0);

    await page.click('[data-do=migrate]');
    await page.locator('[data-migration-status=done]', { hasText: 'moved 5' }).waitFor();
    expect(await scalar(t, 'SELECT COUNT(*) AS n FROM requests WHERE version = ?', [v2])).to.equal(5);
  });
});
