/**
 * A local stand-in for a two-stage card payment provider, shaped after CloudPayments (the
 * provider seed 003 names): `pay` holds the customer's money, `confirm` captures it, `void`
 * releases it.
 *
 * Endpoints (HTTP Basic auth `publicId:apiSecret`; `X-Request-ID` makes a call idempotent):
 * - `POST /payments/auth` `{ Amount, Currency, InvoiceId, AccountId, Description }` →
 *   `{ Success, Message, Model: { TransactionId, Status: 'Authorized' | 'Declined', TestMode, ReasonCode } }`
 * - `POST /payments/confirm` `{ TransactionId, Amount? }` → `{ Success, Model: { TransactionId, Status: 'Completed' } }`
 * - `POST /payments/void` `{ TransactionId }` → `{ Success, Model: { TransactionId, Status: 'Cancelled' } }`
 *
 * **Test mode never charges.** Each public id is either live or test, as with CloudPayments'
 * test sites. A test account's transactions carry `TestMode: true`, and capturing one moves
 * no money: only live captures are written to `ledger`, the stand-in's record of money that
 * really moved. A payment is declined when its `AccountId` is in `declineAccounts`.
 *
 * Controls: `GET /_state`, `POST /_reset`, `GET|POST /_faults` (see `standin-kit.ts`).
 * Run directly (`npx tsx scripts/payment-standin.ts`) it listens on `PAYMENT_PORT` (default 8085).
 */
import { HttpError, requireAmount, requireString, runStandinMain, startStandin, type Standin } from './standin-kit';

/** The credentials the stand-in accepts by default: one live account, one test account. */
export const PAYMENT_ACCOUNTS = {
  live: { publicId: 'pk_live_standin', secret: 'live-secret-standin' },
  test: { publicId: 'pk_test_standin', secret: 'test-secret-standin' },
} as const;

export type PaymentStatus = 'Authorized' | 'Declined' | 'Completed' | 'Cancelled';

export interface PaymentTransaction {
  id: number;
  invoiceId: string;
  accountId: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  testMode: boolean;
  /** The `X-Request-ID` of the call that created it. */
  requestId: string | null;
}

export interface PaymentState {
  calls: Record<string, number>;
  transactions: PaymentTransaction[];
  /** Money that really moved: live captures only. A test transaction never appears here. */
  ledger: Array<{ transactionId: number; amount: number; currency: string }>;
  /** Payments of these accounts are declined (insufficient funds). */
  declineAccounts: string[];
}

/** Starts the payment stand-in. `port: 0` picks a free port. */
export async function startPaymentStandin(opts: { port?: number; host?: string } = {}): Promise<Standin<PaymentState>> {
  let nextId = 1000;
  const answered = new Map<string, unknown>();
  const accounts = [
    { ...PAYMENT_ACCOUNTS.live, test: false },
    { ...PAYMENT_ACCOUNTS.test, test: true },
  ];
  const accountOf = (headers: Record<string, unknown>): { test: boolean } => {
    const auth = typeof headers.authorization === 'string' ? headers.authorization : '';
    const [publicId, secret] = Buffer.from(auth.replace(/^Basic\s+/i, ''), 'base64').toString('utf8').split(':');
    const found = accounts.find((a) => a.publicId === publicId && a.secret === secret);
    if (!found) throw new HttpError(401, 'UNAUTHORIZED', 'unknown public id or API secret');
    return found;
  };
  /** Answers a repeated `X-Request-ID` with the first answer, as the real API does. */
  const once = (headers: Record<string, unknown>, work: () => unknown): unknown => {
    const key = typeof headers['x-request-id'] === 'string' ? headers['x-request-id'] : null;
    if (key && answered.has(key)) return answered.get(key);
    const out = work();
    if (key) answered.set(key, out);
    return out;
  };
  return startStandin<PaymentState>({
    host: opts.host ?? process.env.PAYMENT_HOST,
    port: opts.port ?? Number(process.env.PAYMENT_PORT ?? 8085),
    initial: () => ({ calls: {}, transactions: [], ledger: [], declineAccounts: [] }),
    onReset: () => {
      nextId = 1000;
      answered.clear();
    },
    errorBody: (e) => ({ Success: false, Message: e.message, Code: e.code }),
    routes: (state) => {
      const txOf = (body: Record<string, unknown>, account: { test: boolean }): PaymentTransaction => {
        const id = Number(body.TransactionId);
        const tx = state().transactions.find((t) => t.id === id);
        if (!tx || tx.testMode !== account.test) throw new HttpError(404, 'NOT_FOUND', `no transaction ${String(body.TransactionId)}`);
        return tx;
      };
      const model = (tx: PaymentTransaction) => ({ TransactionId: tx.id, Amount: tx.amount, Currency: tx.currency, Status: tx.status, TestMode: tx.testMode, InvoiceId: tx.invoiceId });
      return {
        'POST /payments/auth': ({ body, headers }) => {
          const account = accountOf(headers);
          return once(headers, () => {
            const accountId = requireString(body, 'AccountId');
            const declined = state().declineAccounts.includes(accountId);
            const tx: PaymentTransaction = {
              id: nextId++, invoiceId: requireString(body, 'InvoiceId'), accountId, amount: requireAmount(body, 'Amount'),
              currency: typeof body.Currency === 'string' ? body.Currency : 'RUB', status: declined ? 'Declined' : 'Authorized',
              testMode: account.test, requestId: typeof headers['x-request-id'] === 'string' ? headers['x-request-id'] : null,
            };
            state().transactions.push(tx);
            return declined
              ? { Success: false, Message: 'Insufficient funds', Model: { ...model(tx), ReasonCode: 5051 } }
              : { Success: true, Message: null, Model: { ...model(tx), ReasonCode: 0 } };
          });
        },
        'POST /payments/confirm': ({ body, headers }) => {
          const account = accountOf(headers);
          return once(headers, () => {
            const tx = txOf(body, account);
            if (tx.status === 'Completed') return { Success: true, Message: null, Model: model(tx) };
            if (tx.status !== 'Authorized') throw new HttpError(409, 'WRONG_STATUS', `transaction ${tx.id} is ${tx.status}`);
            if (body.Amount !== undefined && requireAmount(body, 'Amount') > tx.amount) throw new HttpError(400, 'INVALID_REQUEST', 'cannot capture more than was held');
            tx.status = 'Completed';
            if (!tx.testMode) state().ledger.push({ transactionId: tx.id, amount: tx.amount, currency: tx.currency });
            return { Success: true, Message: null, Model: model(tx) };
          });
        },
        'POST /payments/void': ({ body, headers }) => {
          const account = accountOf(headers);
          return once(headers, () => {
            const tx = txOf(body, account);
            if (tx.status === 'Cancelled') return { Success: true, Message: null, Model: model(tx) };
            if (tx.status !== 'Authorized') throw new HttpError(409, 'WRONG_STATUS', `transaction ${tx.id} is ${tx.status}`);
            tx.status = 'Cancelled';
            return { Success: true, Message: null, Model: model(tx) };
          });
        },
      };
    },
  });
}

if (require.main === module) {
  runStandinMain('payment stand-in', () => startPaymentStandin(), (url) => `set PAYMENT_BASE_URL=${url}`);
}
