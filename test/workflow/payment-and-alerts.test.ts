/**
 * Two safety nets of the long-running workflows, tested on their own: the `payment` module's
 * test mode never charges (seed 003), and the admin notifier tells the administrator of an
 * ERROR_STOP, retrying a failing webhook, and refuses a bad configuration (seed 000 §7).
 */
import { expect } from 'chai';
import payment from '../../modules/payment.module';
import { PAYMENT_ACCOUNTS, startPaymentStandin, type PaymentState } from '../../scripts/payment-standin';
import type { Standin } from '../../scripts/standin-kit';
import { PipelineValidationError } from '../../src/errors';
import type { Logger } from '../../src/log/logger';
import type { ModuleContext } from '../../src/module/types';
import { ModuleRegistry } from '../../src/module/registry';
import { checkAdminNotifier } from '../../src/notify/admin-notifier';
import { startTestEngine } from '../support/engine';
import { settle } from '../support/poll';
import { startIntakeEngine } from '../intake/helpers';
import { startHookServer } from './support';

const ctx = (test: boolean, idempotencyKey: string): ModuleContext => ({
  requestId: `r-${idempotencyKey}`, pipeline: 'service-order', stepId: 'state1-pay', attempt: 1, idempotencyKey, test,
  signal: new AbortController().signal, log: { info: () => {}, warn: () => {}, error: () => {} },
});

describe('the payment module: pay, confirm, void; a test request never charges', () => {
  let pay: Standin<PaymentState>;
  const saved = { ...process.env };

  before(async () => {
    pay = await startPaymentStandin({ port: 0 });
    Object.assign(process.env, { PAYMENT_BASE_URL: pay.url, PAYMENT_PUBLIC_ID: PAYMENT_ACCOUNTS.live.publicId, PAYMENT_API_SECRET: PAYMENT_ACCOUNTS.live.secret });
  });
  after(async () => {
    for (const k of ['PAYMENT_BASE_URL', 'PAYMENT_PUBLIC_ID', 'PAYMENT_API_SECRET', 'PAYMENT_TEST_PUBLIC_ID', 'PAYMENT_TEST_API_SECRET']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await pay.close();
  });

  const run = (test: boolean, key: string, params: Record<string, unknown>) =>
    payment.handle({ params, context: {} }, ctx(test, key)) as Promise<{ status: string; transactionId: number; testMode: boolean }>;

  it('captures real money only for a live request', async () => {
    const live = await run(false, 'live-1', { operation: 'pay', amount: 1500, invoiceId: 'A-1', accountId: 'cust' });
    expect(live).to.include({ status: 'Authorized', testMode: false });
    expect(pay.state.ledger).to.deep.equal([]);
    await run(false, 'live-2', { operation: 'confirm', transactionId: live.transactionId });
    expect(pay.state.ledger).to.deep.equal([{ transactionId: live.transactionId, amount: 1500, currency: 'RUB' }]);

    const test = await run(true, 'test-1', { operation: 'pay', amount: 2500, invoiceId: 'A-2', accountId: 'cust' });
    expect(test).to.include({ status: 'Authorized', testMode: true });
    expect(await run(true, 'test-2', { operation: 'confirm', transactionId: test.transactionId })).to.include({ status: 'Completed', testMode: true });
    expect(pay.state.ledger.map((l) => l.transactionId)).to.deep.equal([live.transactionId]);
  });

  it('voids a hold, and a redelivered call does not hold twice', async () => {
    const first = await run(true, 'dup-1', { operation: 'pay', amount: 100, invoiceId: 'A-3', accountId: 'cust' });
    const again = await run(true, 'dup-1', { operation: 'pay', amount: 100, invoiceId: 'A-3', accountId: 'cust' });
    expect(again.transactionId).to.equal(first.transactionId);
    expect(pay.state.transactions.filter((t) => t.invoiceId === 'A-3')).to.have.length(1);
    expect(await run(true, 'dup-2', { operation: 'void', transactionId: first.transactionId })).to.include({ status: 'Cancelled' });
  });

  it('refuses to send a test request to the live account, before any call', async () => {
    Object.assign(process.env, { PAYMENT_TEST_PUBLIC_ID: PAYMENT_ACCOUNTS.live.publicId, PAYMENT_TEST_API_SECRET: PAYMENT_ACCOUNTS.live.secret });
    const calls = pay.state.calls['/payments/auth'] ?? 0;
    try {
      await run(true, 'misconfigured', { operation: 'pay', amount: 100, invoiceId: 'A-4', accountId: 'cust' });
      expect.fail('the payment went through');
    } catch (err) {
      expect((err as Error).message).to.equal('PAYMENT_TEST_PUBLIC_ID is the live account; a test request is never sent to it');
      expect((err as { retryable?: boolean }).retryable).to.equal(false);
    } finally {
      delete process.env.PAYMENT_TEST_PUBLIC_ID;
      delete process.env.PAYMENT_TEST_API_SECRET;
    }
    expect(pay.state.calls['/payments/auth'] ?? 0).to.equal(calls);
  });
});

describe('the admin notifier', () => {
  it('refuses an unknown module or a bad webhook URL; the engine will not start on them', async () => {
    expect(checkAdminNotifier(new ModuleRegistry(), { module: 'nope', webhookUrl: 'ftp://x' }).map((i) => `${i.source}: ${i.message}`)).to.deep.equal([
      'CONVEYOR_ADMIN_MODULE: unknown module "nope"', 'CONVEYOR_ADMIN_WEBHOOK: must be an http(s) URL',
    ]);
    let caught: unknown;
    try {
      await startTestEngine({ env: { CONVEYOR_ADMIN_MODULE: 'no-such-module' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(PipelineValidationError);
    expect((caught as PipelineValidationError).issues).to.deep.include({ source: 'CONVEYOR_ADMIN_MODULE', path: 'no-such-module', message: 'unknown module "no-such-module"' });
  });

  it('alerts on error_stop only, retries a failing webhook, and gives up after its tries, saying so', async () => {
    const hook = await startHookServer(Number.MAX_SAFE_INTEGER); // always 500
    const logged: string[] = [];
    const record = (message: string): void => void logged.push(message);
    const logger = { info: record, warn: record, error: record, debug: record, child: () => logger } as unknown as Logger;
    const t = await startIntakeEngine({
      logger,
      env: { CONVEYOR_ADMIN_WEBHOOK: hook.url, CONVEYOR_ADMIN_RETRIES: '3', CONVEYOR_ADMIN_BACKOFF_MS: '10', CONVEYOR_ADMIN_SWEEP_MS: '20' },
    });
    try {
      const submit = async (payload: object): Promise<string> => (await t.api<{ id: string }>('POST', '/api/pipelines/in-plain/requests?wait=10', { body: payload })).body.id;
      await submit({ n: 1 }); // completes: no alert
      const halted1 = await submit({ fail: true });
      const end = Date.now() + 10_000;
      await settle(() => logged.includes('admin alert not delivered'), (seen) => seen, { timeoutMs: end - Date.now(), everyMs: 10 });
      expect(hook.calls).to.equal(3);
      expect(logged.filter((m) => m === 'admin alert failed; will retry')).to.have.length(2);
      expect(logged).to.include('admin alert not delivered');
      expect((await t.engine.store.alerts.listForRequest(halted1)).map((a) => [a.channel, a.status, a.attempts])).to.deep.equal([['webhook', 'failed', 3]]);
      hook.failFirst = 0;
      const halted2 = await submit({ fail: true });
      await settle(() => hook.bodies.length, (n) => n !== 0, { timeoutMs: end - Date.now(), everyMs: 10 });
      const error = (await t.engine.getRequest(halted2))!.request.error;
      expect(error).to.include({ stepId: 'work', code: 'CONVEYOR_ERR_NON_RETRYABLE' });
      const base = `${t.engine.callbacks.baseUrl}/api/requests/${halted2}`;
      expect(hook.bodies).to.deep.equal([{
        requestId: halted2, pipeline: 'in-plain', error: JSON.parse(JSON.stringify(error)) as unknown,
        links: { self: base, steps: `${base}/steps`, audit: `${base}/audit`, resume: `${base}/resume`, stop: `${base}/stop` },
      }]);
      expect((await t.engine.store.alerts.listForRequest(halted2)).map((a) => [a.status, a.attempts])).to.deep.equal([['delivered', 1]]);
    } finally {
      await t.close();
      await hook.close();
    }
  });
});
