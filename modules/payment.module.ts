/**
 * `payment`: seed 003's `pay`, `confirmPay` and `voidPay`, two-stage, with a provider shaped
 * after CloudPayments (the stand-in `scripts/payment-standin.ts` by default; `PAYMENT_BASE_URL`).
 * `pay` holds the customer's money, `confirm` captures it, `void` gives it back.
 *
 * **Test mode never charges.** A test request (`?test=1`) uses the provider's test account
 * (`PAYMENT_TEST_PUBLIC_ID` / `PAYMENT_TEST_API_SECRET`), whose transactions move no money,
 * and the module makes sure no test request reaches the live account: it refuses a test account
 * that is the live one, and checks that the provider really answered in test mode (if not,
 * the step fails for good rather than go on with a live transaction). Live requests use
 * `PAYMENT_PUBLIC_ID` / `PAYMENT_API_SECRET`; without them a live payment is refused.
 *
 * Params: `operation` (`pay` | `confirm` | `void`); for `pay`: `amount`, `currency`,
 * `invoiceId`, `accountId`, `description`; for `confirm` / `void`: `transactionId`.
 * Output: `{ operation, status, transactionId, amount, testMode, paid, reason? }`, where `paid`
 * says whether the customer's money is now held or captured (`Authorized`, `Completed`). A
 * declined card is not an error: `pay` answers `status: 'Declined'` and the pipeline decides.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, num, str } from './lib/http-json';

interface ProviderAnswer {
  Success: boolean;
  Message: string | null;
  Model?: { TransactionId: number; Status: string; Amount?: number; TestMode?: boolean };
}

/** The stand-in's test account: the default in test mode only. */
const STANDIN_TEST_ACCOUNT = { publicId: 'pk_test_standin', secret: 'test-secret-standin' };

function credentials(test: boolean): string {
  const publicId = test ? process.env.PAYMENT_TEST_PUBLIC_ID || STANDIN_TEST_ACCOUNT.publicId : process.env.PAYMENT_PUBLIC_ID;
  const secret = test ? process.env.PAYMENT_TEST_API_SECRET || STANDIN_TEST_ACCOUNT.secret : process.env.PAYMENT_API_SECRET;
  if (!publicId || !secret) throw new NonRetryableError('live payments need PAYMENT_PUBLIC_ID and PAYMENT_API_SECRET');
  // The likeliest way to charge in a test: the live account configured as the test one.
  if (test && publicId === process.env.PAYMENT_PUBLIC_ID) throw new NonRetryableError('PAYMENT_TEST_PUBLIC_ID is the live account; a test request is never sent to it');
  return `Basic ${Buffer.from(`${publicId}:${secret}`).toString('base64')}`;
}

const PATHS = { pay: 'auth', confirm: 'confirm', void: 'void' } as const;

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'payment',
  description: 'Two-stage card payment: pay (hold), confirm (capture), void (release); a test request never charges.',
  timeout: '30s',
  retry: { attempts: 3, backoff: '2s' },
  async handle({ params }, ctx) {
    const operation = str(params.operation) as keyof typeof PATHS;
    if (!(operation in PATHS)) throw new NonRetryableError(`operation must be pay, confirm or void (got ${JSON.stringify(params.operation)})`);
    let body: Record<string, unknown>;
    if (operation === 'pay') {
      const amount = num(params.amount);
      if (amount === undefined || amount <= 0) throw new NonRetryableError('pay needs a positive amount');
      body = {
        Amount: amount, Currency: str(params.currency) ?? 'RUB', InvoiceId: str(params.invoiceId) ?? ctx.requestId,
        AccountId: str(params.accountId) ?? 'anonymous', Description: str(params.description) ?? `order ${str(params.invoiceId) ?? ''}`.trim(),
      };
    } else {
      const transactionId = num(params.transactionId);
      if (transactionId === undefined) throw new NonRetryableError(`${operation} needs the transactionId of the payment`);
      body = { TransactionId: transactionId };
    }
    // The idempotency key as X-Request-ID: a redelivered call does not hold or capture twice.
    const res = await callJson<ProviderAnswer>(`${baseUrl('PAYMENT_BASE_URL', 'http://127.0.0.1:8085')}/payments/${PATHS[operation]}`, {
      service: 'payment provider',
      headers: { authorization: credentials(ctx.test), 'x-request-id': `${ctx.idempotencyKey}:${operation}` },
      body,
      signal: ctx.signal,
    });
    const m = res.Model;
    if (!m) throw new Error(`the payment provider answered ${operation} without a transaction`);
    if (Boolean(m.TestMode) !== ctx.test) {
      throw new NonRetryableError(`the provider answered TestMode=${String(m.TestMode)} for a ${ctx.test ? 'test' : 'live'} request; refusing to go on`, { transactionId: m.TransactionId });
    }
    if (!res.Success && operation !== 'pay') throw new NonRetryableError(`${operation} refused: ${res.Message ?? 'no reason given'}`);
    return {
      operation, status: m.Status, transactionId: m.TransactionId, amount: m.Amount ?? body.Amount ?? null, testMode: Boolean(m.TestMode),
      paid: m.Status === 'Authorized' || m.Status === 'Completed',
      ...(res.Success ? {} : { reason: res.Message ?? 'declined' }),
    };
  },
});
