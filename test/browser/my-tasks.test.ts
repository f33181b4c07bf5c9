/**
 * "My tasks" in real Chromium (Debian's package through playwright-core): a customer, two
 * executors and a moderator of a `service-order` each sign in with their own JWT and see only
 * the actions offered to them now, take them from the page, and the next person's list
 * follows. Screenshots go to test/artifacts/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startNotifyStandin, type NotifyState } from '../../scripts/notify-standin';
import { PAYMENT_ACCOUNTS, startPaymentStandin, type PaymentState } from '../../scripts/payment-standin';
import type { Standin } from '../../scripts/standin-kit';
import { CHROMIUM_ARGS, chromiumPath } from '../../src/cli/commands/graph';
import { REPO_ROOT, startTestEngine, type TestEngine } from '../support/engine';
import { freshPipeline, requestClient } from '../workflow/support';

const ARTIFACTS = path.join(REPO_ROOT, 'test', 'artifacts');
const SECRET = 'my-tasks-browser-secret-0123456789abcd';
const MARKET = 'market-key-browser01';
const NOTIFY_KEY = 'notify-key-browser01';

describe('dashboard "My tasks" in Chromium: a customer, an executor and a moderator', function () {
  this.timeout(180_000);
  let notify: Standin<NotifyState>;
  let pay: Standin<PaymentState>;
  let t: TestEngine;
  let browser: Browser;
  let orderId: string;
  const pageErrors: string[] = [];
  const tokens: Record<string, string> = {};

  before(async () => {
    const executablePath = chromiumPath();
    if (!executablePath) throw new Error('Chromium is required by the browser tests: bash scripts/services.sh --with-chromium (apt package "chromium"), or set CHROMIUM_PATH');
    mkdirSync(ARTIFACTS, { recursive: true });
    notify = await startNotifyStandin({ port: 0, apiKey: NOTIFY_KEY });
    pay = await startPaymentStandin({ port: 0 });
    freshPipeline('service-order');
    t = await startTestEngine({
      env: {
        NOTIFY_BASE_URL: notify.url, NOTIFY_API_KEY: NOTIFY_KEY,
        PAYMENT_BASE_URL: pay.url, PAYMENT_PUBLIC_ID: PAYMENT_ACCOUNTS.live.publicId, PAYMENT_API_SECRET: PAYMENT_ACCOUNTS.live.secret,
        CONVEYOR_JWT_SECRET: SECRET,
      },
      extraKeys: `market=${MARKET}:submit`,
    });
    for (const who of ['cust-a', 'exec-a', 'exec-b', 'mod-1']) {
      tokens[who] = await new SignJWT({ name: who }).setProtectedHeader({ alg: 'HS256' }).setSubject(who).setIssuedAt().setExpirationTime('1h')
        .sign(new TextEncoder().encode(SECRET));
    }
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/service-order/requests', {
      key: MARKET,
      body: {
        code: 'T-1', service: { title: 'Ремонт', need_moderation: false, organization: { currency: { sum: 900, short_title: '₽' } } }, sum: 900,
        customerUser: { id: 'cust-a', title: 'Анна', phone_number: '+7 900 777-00-01', email: 'anna@example.com' },
        executor: { title: 'Мастер', communityProvider: { id: 1 } }, moderatorUser: { id: 'mod-1', title: 'Мария' },
        executors: [{ id: 'exec-a', title: 'Алексей' }, { id: 'exec-b', title: 'Виктор' }], moderators: [{ id: 'mod-1', title: 'Мария', email: 'm@example.com' }],
        fieldsData: [], couriers: [],
      },
    });
    expect(res.status, res.text).to.equal(202);
    orderId = res.body.id;
    await requestClient(t).waitingAt(orderId, 'state1');
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    freshPipeline('service-order');
    await Promise.all([notify?.close(), pay?.close()]);
  });

  /** A fresh page signed in with `who`'s token, on "My tasks". */
  async function signIn(who: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1300, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${t.url}/`);
    await page.fill('#login-key', tokens[who]!);
    await page.click('#login-form button[type=submit]');
    // Without `read`, the dashboard opens on "My tasks".
    await page.locator('#task-list[data-loaded]').waitFor();
    expect(new URL(page.url()).hash).to.equal('#/tasks');
    return page;
  }
  const codesOn = (page: Page): Promise<string[]> => page.locator(`#task-list [data-id="${orderId}"] .task`).evaluateAll((els) => els.map((e) => e.getAttribute('data-code')!));

  it('the customer sees "pay" and "cancel" for her order, and pays from the page', async () => {
    const page = await signIn('cust-a');
    try {
      expect(await codesOn(page)).to.deep.equal(['pay', 'cancel']);
      await page.screenshot({ path: path.join(ARTIFACTS, 'tasks-01-customer.png'), fullPage: true });
      await page.click(`#task-list [data-id="${orderId}"] .task[data-code=pay] button`);
      await requestClient(t).waitingAt(orderId, 'state3');
      // Now she may write or cancel; "pay" is gone from her list.
      await page.waitForFunction((id) => [...document.querySelectorAll(`#task-list [data-id="${id}"] .task`)].map((e) => e.getAttribute('data-code')).join() === 'action1_chat,cancel', orderId, { timeout: 15_000 });
      expect(await codesOn(page)).to.not.include('pay');
    } finally {
      await page.close();
    }
  });

  it('both executors are offered the order; one takes it, and the other then has nothing to do on it', async () => {
    const b = await signIn('exec-b');
    const a = await signIn('exec-a');
    try {
      expect(await codesOn(a)).to.deep.equal(['action1']);
      expect(await codesOn(b)).to.deep.equal(['action1']);
      await a.click(`#task-list [data-id="${orderId}"] .task[data-code=action1] button`);
      await requestClient(t).waitingAt(orderId, 'state4');
      await a.waitForFunction((id) => [...document.querySelectorAll(`#task-list [data-id="${id}"] .task`)].map((e) => e.getAttribute('data-code')).join() === 'action1,action2,action2_chat', orderId, { timeout: 30_000 })
        .catch(async (err: unknown) => {
          throw new Error(`exec-a's tasks: ${JSON.stringify(await codesOn(a))}; flash: ${await a.locator('#flash').innerText()}; ${String(err)}`);
        });
      await a.screenshot({ path: path.join(ARTIFACTS, 'tasks-02-executor.png'), fullPage: true });
      await b.reload();
      await b.locator('#task-list[data-loaded]').waitFor();
      expect(await codesOn(b)).to.deep.equal([]);
      expect(await b.locator('#no-tasks').isVisible()).to.equal(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the moderator sees his actions on the order, with the field a chat message needs', async () => {
    const page = await signIn('mod-1');
    try {
      expect(await codesOn(page)).to.deep.equal(['action2_moderator', 'action3_chat', 'cancel']);
      const chat = page.locator(`#task-list [data-id="${orderId}"] .task[data-code=action3_chat]`);
      await chat.locator('input[name=field1416182395]').fill('Проверьте адрес');
      await chat.locator('button').click();
      await requestClient(t).until(orderId, (v) => v.status === 'waiting' && Boolean(v.context['state4-action3_chat-push']));
      await page.screenshot({ path: path.join(ARTIFACTS, 'tasks-03-moderator.png'), fullPage: true });
      expect(pageErrors).to.deep.equal([]);
    } finally {
      await page.close();
    }
  });
});
