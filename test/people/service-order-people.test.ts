/**
 * Seed 003 made safe (issue 12 "Done when"): `service-order` end to end through the HTTP API
 * with two customers, two executors and a moderator, each signed in with a real HS256 token
 * (no global roles). The marketplace submits orders with its own key. Every cross-order
 * attempt is refused, audited and changes nothing (the request, its step log, and the
 * payment stand-in's transactions and ledger); the rightful actor then succeeds.
 */
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { startNotifyStandin, type NotifyState } from '../../scripts/notify-standin';
import { PAYMENT_ACCOUNTS, startPaymentStandin, type PaymentState } from '../../scripts/payment-standin';
import type { Standin } from '../../scripts/standin-kit';
import { startTestEngine, type ErrorBody, type TestEngine } from '../support/engine';
import { freshPipeline, requestClient, type RequestView } from '../workflow/support';

const SECRET = 'service-order-people-secret-0123456789';
const ISSUER = 'https://market.example.test';
const MARKET = 'market-key-000000001';
const NOTIFY_KEY = 'notify-api-key-people';
const PEOPLE = ['cust-a', 'cust-b', 'exec-a', 'exec-b', 'mod-1'] as const;
type Person = (typeof PEOPLE)[number];
const PHONE_A = '+7 900 555-01-01';
const EMAIL_A = 'anna.customer@example.com';

let seq = 0;
function order(customer: Person, phone: string, email: string): Record<string, unknown> {
  return {
    code: `P-${2000 + ++seq}`,
    service: { title: 'Уборка', need_moderation: false, organization: { currency: { sum: 2500, short_title: '₽' } } },
    delivery: 'Выезд', payed: false, sum: 2500, sum_payed: 0, sum_total: 2500,
    customer: { title: 'ИП Иванова' },
    customerUser: { id: customer, title: customer === 'cust-a' ? 'Анна' : 'Борис', phone_number: phone, email },
    executor: { title: 'Чисто', communityProvider: { id: 7 } },
    executorUser: null,
    moderatorUser: { id: 'mod-1', title: 'Мария' },
    status: { title: 'Новый' },
    deadline: '2026-12-20',
    fieldsData: [{ field: { title: 'Адрес' }, valueFormatted: 'Казань, Баумана 5' }],
    fieldDeliveryAddress: 'Казань, Баумана 5',
    fieldDateTimeDelivery: '2026-12-19 09:00',
    executors: [{ id: 'exec-a', title: 'Алексей' }, { id: 'exec-b', title: 'Виктор' }],
    couriers: [],
    moderators: [{ id: 'mod-1', title: 'Мария', email: 'maria@example.com' }],
    hidden_customer_contact: true,
  };
}

describe('people: service-order with two customers, two executors and a moderator', function () {
  this.timeout(90_000);
  let notify: Standin<NotifyState>;
  let pay: Standin<PaymentState>;
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;
  const token: Record<string, string> = {};

  before(async () => {
    notify = await startNotifyStandin({ port: 0, apiKey: NOTIFY_KEY });
    pay = await startPaymentStandin({ port: 0 });
    freshPipeline('service-order');
    t = await startTestEngine({
      env: {
        NOTIFY_BASE_URL: notify.url, NOTIFY_API_KEY: NOTIFY_KEY,
        PAYMENT_BASE_URL: pay.url, PAYMENT_PUBLIC_ID: PAYMENT_ACCOUNTS.live.publicId, PAYMENT_API_SECRET: PAYMENT_ACCOUNTS.live.secret,
        SERVICE_ORDER_RATING_WINDOW: '60s',
        CONVEYOR_JWT_SECRET: SECRET, CONVEYOR_JWT_ISSUER: ISSUER,
      },
      engine: { supervisor: { sweepIntervalMs: 100 } },
      extraKeys: `market=${MARKET}:submit`,
    });
    c = requestClient(t);
    for (const who of PEOPLE) {
      token[who] = await new SignJWT({ name: who, roles: [] }).setProtectedHeader({ alg: 'HS256' }).setSubject(who).setIssuer(ISSUER)
        .setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    }
  });
  after(async () => {
    await t?.close();
    freshPipeline('service-order');
    await Promise.all([notify?.close(), pay?.close()]);
  });

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/service-order/requests', { key: MARKET, body });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const act = (id: string, code: string, who: Person, data?: Record<string, unknown>) => c.act(id, code, token[who]!, data);
  const take = async (id: string, code: string, who: Person, data?: Record<string, unknown>): Promise<void> => {
    const res = await act(id, code, who, data);
    expect(res.status, `${who} ${code}: ${res.text}`).to.equal(200);
  };
  const view = (id: string, who: Person) => t.api<RequestView & ErrorBody>('GET', `/api/requests/${id}`, { key: token[who]! });
  const paymentsOf = (code: string) => ({
    transactions: pay.state.transactions.filter((x) => x.invoiceId === code).map((x) => `${x.id}:${x.status}`),
    ledger: pay.state.ledger.length,
  });
  /** The request, its step log and the money: what a refused attempt must leave as it was. */
  const snapshot = async (id: string, code: string) => ({ status: (await c.get(id)).status, log: await c.log(id), money: paymentsOf(code) });
  /** Expects a refusal with `status`, then the same snapshot, and the refusal in the audit under the actor's id. */
  const refused = async (id: string, code: string, action: string, who: Person, status: number): Promise<void> => {
    const before = await snapshot(id, code);
    const res = await act(id, action, who);
    expect(res.status, `${who} ${action}: ${res.text}`).to.equal(status);
    expect(await snapshot(id, code), `${who} ${action} changed something`).to.deep.equal(before);
    const audit = await t.api<{ items: Array<{ actor: string; via: string; action: string; outcome: string }> }>('GET', `/api/requests/${id}/audit`);
    expect(audit.body.items.at(-1)).to.deep.include({ actor: who, via: `jwt:${ISSUER}`, action: `action:${action}`, outcome: 'forbidden' });
  };

  it('refuses every cross-order attempt (audited, nothing changes, no money moves); the rightful actors succeed', async () => {
    const orderA = order('cust-a', PHONE_A, EMAIL_A);
    const orderB = order('cust-b', '+7 900 555-02-02', 'boris@example.com');
    const a = await submit(orderA);
    const b = await submit(orderB);
    const codeA = orderA.code as string;
    await c.waitingAt(a, 'state1');
    await c.waitingAt(b, 'state1');

    // Each customer sees only its own order; the other's is 404 everywhere.
    expect((await view(a, 'cust-a')).status).to.equal(200);
    expect((await view(a, 'cust-b')).status).to.equal(404);
    expect((await t.api('GET', `/api/requests/${a}/steps`, { key: token['cust-b'] })).status).to.equal(404);
    const listB = await t.api<{ items: Array<{ id: string }> }>('GET', '/api/requests', { key: token['cust-b'] });
    expect(listB.body.items.map((r) => r.id)).to.deep.equal([b]);

    await take(a, 'pay', 'cust-a');
    await c.waitingAt(a, 'state3');
    const held = paymentsOf(codeA);
    expect(held.transactions).to.have.length(1);
    expect(held.transactions[0]).to.match(/:Authorized$/);

    // Customer B cancels A's paid order: 404 (B may not even see it), audited, no void.
    await refused(a, codeA, 'cancel', 'cust-b', 404);

    // Both executors are candidates in state3 and are offered the order; the phone is hidden from them.
    type Items = { items: Array<{ requestId: string; code: string }> };
    for (const who of ['exec-a', 'exec-b'] as const) {
      const mine = await t.api<Items>('GET', '/api/actions', { key: token[who]! });
      expect(mine.body.items.filter((i) => i.requestId === a).map((i) => i.code), who).to.deep.equal(['action1']);
      const seen = await view(a, who);
      expect(seen.status).to.equal(200);
      expect(seen.text).to.not.include(PHONE_A).and.to.not.include(EMAIL_A);
      expect((seen.body.context.payload as { customerUser: { phone_number: string } }).customerUser.phone_number).to.equal('[REDACTED]');
      const steps = await t.api('GET', `/api/requests/${a}/steps`, { key: token[who]! });
      expect(steps.text, `${who}: the state0 e-mail quotes the phone`).to.not.include(PHONE_A);
      expect(steps.text).to.include('[REDACTED]');
    }
    // The customer and the moderator see the contact.
    expect((await view(a, 'cust-a')).text).to.include(PHONE_A);
    expect((await view(a, 'mod-1')).text).to.include(PHONE_A);

    // Executor A takes the order; from now on only A is its executor.
    await take(a, 'action1', 'exec-a');
    const s4 = await c.waitingAt(a, 'state4');
    expect(s4.vars).to.deep.include({ executor: 'exec-a', hidden_customer_contact: false });
    expect((await view(a, 'exec-a')).text, 'taking the order revealed the contact').to.include(PHONE_A);
    expect((await view(a, 'exec-b')).text, 'still hidden from the other executor').to.not.include(PHONE_A);

    // Executor B confirms the trip A took: refused (403: a candidate, not the executor).
    await refused(a, codeA, 'action1', 'exec-b', 403);
    await take(a, 'action1', 'exec-a');
    await c.waitingAt(a, 'state5');
    // Executor B completes the order (which would capture the money): refused; nothing captured.
    const ledgerBefore = pay.state.ledger.length;
    await refused(a, codeA, 'action2', 'exec-b', 403);
    expect(pay.state.ledger.length).to.equal(ledgerBefore);
    // Customer B tries the moderator's rejection too: 404.
    await refused(a, codeA, 'cancel', 'cust-b', 404);

    // The moderator's tasks list the order; executor A completes it and the money is captured once.
    const modTasks = await t.api<Items>('GET', '/api/actions', { key: token['mod-1']! });
    expect(modTasks.body.items.filter((i) => i.requestId === a).map((i) => i.code)).to.include.members(['action2_moderator', 'cancel']);
    await take(a, 'action2', 'exec-a');
    await c.waitingAt(a, 'stateDone');
    expect(paymentsOf(codeA).transactions[0]).to.match(/:Completed$/);
    expect(pay.state.ledger.length).to.equal(ledgerBefore + 1);
    const done = (await c.runs(a)).find((r) => r.stepId === 'state5' && r.status === 'completed')!;
    expect((done.output as { by: string }).by).to.equal('exec-a');

    // Order B: customer A may not cancel it; customer B may, and the held money is released.
    await take(b, 'pay', 'cust-b');
    await c.waitingAt(b, 'state3');
    const codeB = orderB.code as string;
    await refused(b, codeB, 'cancel', 'cust-a', 404);
    await take(b, 'cancel', 'cust-b');
    await c.until(b, (v) => v.status === 'stopped');
    expect(paymentsOf(codeB).transactions[0]).to.match(/:Cancelled$/);

    // Every refusal is in the audit, under the actor's id and the token's issuer.
    const refusals = async (id: string) => (await t.api<{ items: Array<{ actor: string; action: string; outcome: string }> }>('GET', `/api/requests/${id}/audit`))
      .body.items.filter((x) => x.outcome !== 'accepted').map((x) => `${x.actor} ${x.action}`);
    expect(await refusals(a)).to.deep.equal(['cust-b action:cancel', 'exec-b action:action1', 'exec-b action:action2', 'cust-b action:cancel']);
    expect(await refusals(b)).to.deep.equal(['cust-a action:cancel']);
  });
});
