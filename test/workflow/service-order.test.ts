/**
 * Seed 003 end to end: `pipelines/service-order.pipeline.ts` through the HTTP API, with the
 * notification and payment providers as local stand-ins. Every state, every action with its
 * roles (and the ones each role may not take), the notifications with their rendered texts
 * and recipients, the payment's pay / confirm / void, test mode that never charges, cancel and
 * reject, ERROR_STOP with the admin alert then resume, and stop. Each test asserts the
 * persisted step log.
 */
import { expect } from 'chai';
import { startNotifyStandin, type NotifyMessage, type NotifyState } from '../../scripts/notify-standin';
import { PAYMENT_ACCOUNTS, startPaymentStandin, type PaymentState } from '../../scripts/payment-standin';
import { startPlatformStandin, type PlatformState } from '../../scripts/platform-standin';
import type { Standin } from '../../scripts/standin-kit';
import { startTestEngine, type TestEngine } from '../support/engine';
import { settle } from '../support/poll';
import { freshPipeline, requestClient, type RequestView } from './support';

// Keys are named env#4 … env#8, in this order: those names are the users' ids.
const CUSTOMER = 'customer-key-00001';
const EXEC_PETR = 'executor-key-petr1';
const EXEC_IVAN = 'executor-key-ivan1';
const MODERATOR = 'moderator-key-0001';
const COURIER = 'courier-key-000001';
/** The customer whose card is declined: a named key, so its actor id is "declined-customer". */
const DECLINED = 'declined-customer-key-1';
const NOTIFY_KEY = 'notify-api-key-0001';
const PLATFORM_KEY = 'platform-api-key-0001';
const USERS = { customer: 'env#4', petr: 'env#5', ivan: 'env#6', moderator: 'env#7', courier: 'env#8' };

let seq = 0;
/** An order as the marketplace posts it. */
function order(over: { need_moderation?: boolean; need_payment?: boolean; register_executor?: boolean; sum?: number; customerId?: string } = {}): Record<string, unknown> {
  return {
    code: `A-${1000 + ++seq}`,
    service: {
      title: 'Вывоз мусора', need_moderation: over.need_moderation ?? false,
      ...(over.need_payment === undefined ? {} : { need_payment: over.need_payment }),
      ...(over.register_executor === undefined ? {} : { register_executor: over.register_executor }),
      organization: { currency: { sum: over.sum ?? 1500, short_title: '₽' } },
    },
    delivery: 'Самовывоз', payed: false, sum: over.sum ?? 1500, sum_payed: 0, sum_total: over.sum ?? 1500,
    customer: { title: 'ООО «Ромашка»' },
    customerUser: { id: over.customerId ?? USERS.customer, title: 'Анна', phone_number: '+7 900 000-00-01', email: 'anna@example.com' },
    executor: { title: 'Чистый город', communityProvider: { id: 42 } },
    executorUser: null,
    moderatorUser: { id: USERS.moderator, title: 'Ольга' },
    status: { title: 'Новый' },
    deadline: '2026-12-01',
    fieldsData: [
      { field: { title: 'Адрес' }, valueFormatted: 'Москва, Тверская 1' },
      { field: { title: 'Объём' }, valueFormatted: '2 м³' },
    ],
    fieldDeliveryAddress: 'Москва, Тверская 1',
    fieldDateTimeDelivery: '2026-11-30 10:00',
    executors: [
      { id: USERS.petr, title: 'Пётр', phone_number: '+7 900 000-00-02', email: 'petr@example.com' },
      { id: USERS.ivan, title: 'Иван', phone_number: '+7 900 000-00-03', email: 'ivan@example.com' },
    ],
    couriers: [{ id: USERS.courier, title: 'Курьер Кирилл' }],
    moderators: [{ id: USERS.moderator, title: 'Ольга', email: 'olga@example.com' }],
  };
}

describe('seed 003: the service order process end to end', function () {
  this.timeout(60_000);
  let notify: Standin<NotifyState>;
  let pay: Standin<PaymentState>;
  let platform: Standin<PlatformState>;
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;

  before(async () => {
    notify = await startNotifyStandin({ port: 0, apiKey: NOTIFY_KEY });
    pay = await startPaymentStandin({ port: 0 });
    platform = await startPlatformStandin({ port: 0, apiKey: PLATFORM_KEY });
    freshPipeline('service-order');
    t = await startTestEngine({
      env: {
        NOTIFY_BASE_URL: notify.url,
        NOTIFY_API_KEY: NOTIFY_KEY,
        PAYMENT_BASE_URL: pay.url,
        PLATFORM_BASE_URL: platform.url,
        PLATFORM_API_KEY: PLATFORM_KEY,
        PAYMENT_PUBLIC_ID: PAYMENT_ACCOUNTS.live.publicId,
        PAYMENT_API_SECRET: PAYMENT_ACCOUNTS.live.secret,
        SERVICE_ORDER_RATING_WINDOW: '1500ms',
        CONVEYOR_ADMIN_MODULE: 'admin-alert',
        CONVEYOR_ADMIN_EMAIL: 'ops@example.com',
      },
      engine: { supervisor: { sweepIntervalMs: 100 } },
      extraKeys: [CUSTOMER, EXEC_PETR, EXEC_IVAN, MODERATOR, COURIER].map((k, i) => `${k}:${['customer', 'executor', 'executor', 'moderator', 'courier'][i]}+read`).join(',') + `,declined-customer=${DECLINED}:submit`,
    });
    c = requestClient(t);
  });
  after(async () => {
    await t?.close();
    freshPipeline('service-order');
    await Promise.all([notify?.close(), pay?.close(), platform?.close()]);
  });

  const submit = async (body: Record<string, unknown>, query = ''): Promise<string> => {
    const res = await t.api<{ id: string }>('POST', `/api/pipelines/service-order/requests${query}`, { body });
    expect(res.status, res.text).to.equal(202);
    return res.body.id;
  };
  const offered = async (id: string, key: string): Promise<string[]> => (await c.get(id, key)).actions.map((a) => a.code);
  /** Takes an action and expects it to be accepted. */
  const take = async (id: string, code: string, key: string, data?: Record<string, unknown>): Promise<void> => {
    const res = await c.act(id, code, key, data);
    expect(res.status, `${code}: ${res.text}`).to.equal(200);
  };
  /** Messages sent for one order (its code is in every text). */
  const sent = (code: string, box: 'delivered' | 'sandbox' = 'delivered'): NotifyMessage[] =>
    notify.state[box].filter((m) => `${m.title ?? ''} ${m.body}`.includes(code));
  const codeOf = (v: RequestView): string => (v.context.order as { code: string }).code;
  /** The last push sent for one order (SMS go beside them at the order's end). */
  const lastPush = (code: string): NotifyMessage | undefined => sent(code).filter((m) => m.channel === 'push').at(-1);
  /** From state3: the executor takes the order, confirms the trip and finishes it. */
  const doneBy = async (id: string, key: string): Promise<void> => {
    await take(id, 'action1', key);
    await c.waitingAt(id, 'state4');
    await take(id, 'action1', key);
    await c.waitingAt(id, 'state5');
    await take(id, 'action2', key);
  };
  /** The SMS sent for one order. */
  const sms = (code: string): NotifyMessage[] => sent(code).filter((m) => m.channel === 'sms');

  it('an order without moderation: created, paid, taken, confirmed, done, rated; every notification and the payment', async () => {
    const body = order();
    const id = await submit(body);
    const s1 = await c.waitingAt(id, 'state1');
    const code = codeOf(s1);
    // state0's e-mail: the seed's template, with the loop over the order's fields.
    const email = notify.state.delivered.find((m) => m.channel === 'email' && m.body.includes(`Заказ #${code}<br/>`))!;
    expect(email.to).to.deep.equal(['zakaz@crabler.com', 'olga@example.com']);
    expect(email.title).to.equal('Новый заказ');
    expect(email.body).to.include('<strong>Адрес</strong>: Москва, Тверская 1<br/><strong>Объём</strong>: 2 м³<br/>');
    expect(email.body).to.include('<strong>Заказчик</strong>: Анна +7 900 000-00-01<br/>');
    // Status and payment from vars: a new, unpaid order (the submitted copy says nothing of now).
    expect(email.body).to.include('<strong>Оплачен</strong>: нет<br/>');
    expect(email.body).to.include('<strong>Статус</strong>: Новый<br/>');
    expect(email.body).to.include('href="https://lk.crabler.com/site/42/jump"');

    // Each role sees only its own actions; the others are refused, audited, and move nothing.
    expect(await offered(id, CUSTOMER)).to.deep.equal(['pay', 'cancel']);
    for (const key of [EXEC_PETR, MODERATOR, COURIER]) expect(await offered(id, key)).to.deep.equal([]);
    expect((await c.act(id, 'pay', EXEC_PETR)).status).to.equal(403);
    expect((await c.act(id, 'cancel', MODERATOR)).status).to.equal(403);
    expect((await c.act(id, 'pay', COURIER)).status).to.equal(403);
    expect((await c.act(id, 'action1', CUSTOMER)).status).to.equal(409);

    await take(id, 'pay', CUSTOMER);
    const s3 = await c.waitingAt(id, 'state3');
    expect(s3.context['state1-pay']).to.include({ operation: 'pay', status: 'Authorized', amount: 1500, testMode: false });
    const broadcast = sent(code).find((m) => m.title === `Новый заказ #${code}`)!;
    expect(broadcast).to.deep.include({ channel: 'push', to: [USERS.petr, USERS.ivan], body: 'Вывоз мусора, Москва, Тверская 1 2026-11-30 10:00 - 1500 ₽' });
    expect(await offered(id, EXEC_PETR)).to.deep.equal(['action1']);
    expect(await offered(id, CUSTOMER)).to.deep.equal(['action1_chat', 'cancel']);
    expect(await offered(id, MODERATOR)).to.deep.equal(['action2_chat', 'cancel_moderator']);

    await take(id, 'action1', EXEC_IVAN); // «Взять в работу»: _CURRENT_USER_
    const s4 = await c.waitingAt(id, 'state4');
    expect(s4.context['state3-action1-setData']).to.deep.include({ executor_user_id: USERS.ivan, hidden_customer_contact: false });
    expect(sent(code).at(-1)).to.deep.include({ to: [USERS.customer], body: 'Исполнитель найден, ожидайте звонка' });
    // A chat needs its message (422), then reaches the assigned executor and the moderators.
    expect((await c.act(id, 'action1_chat', CUSTOMER, {})).status).to.equal(422);
    await take(id, 'action1_chat', CUSTOMER, { field1416182395: 'Позвоните за час, пожалуйста' });
    await c.until(id, (v) => v.status === 'waiting' && (v.context['state4-action1_chat-push'] as unknown) !== undefined);
    expect(sent(code).at(-1)).to.deep.include({ title: `Сообщение от Анна к заказу #${code}`, body: 'Позвоните за час, пожалуйста', to: [USERS.ivan, USERS.moderator] });
    await take(id, 'action2_chat', EXEC_IVAN, { field1416182395: 'Буду в 10:00' });
    await c.until(id, (v) => v.status === 'waiting' && (v.context['state4-action2_chat-push'] as unknown) !== undefined);
    expect(sent(code).at(-1)).to.deep.include({ title: `Сообщение от Иван к заказу #${code}`, to: [USERS.customer] });

    await take(id, 'action1', EXEC_IVAN); // «Подтвердить выезд»
    const s5 = await c.waitingAt(id, 'state5');
    expect(s5.context['state5-setData']).to.deep.equal({ status_id: 'ACCEPTED' });
    expect(sent(code).find((m) => m.body === 'Исполнитель Чистый город подтвердил выезд')!.to).to.deep.equal([USERS.customer]);
    expect(pay.state.ledger).to.deep.equal([]); // held, not captured yet

    await take(id, 'action2', EXEC_IVAN); // «Завершить заказ»
    const done = await c.waitingAt(id, 'stateDone');
    expect(done.context['stateDone-setData']).to.deep.equal({ status_id: 'DONE' });
    expect(done.context['stateDone-confirmPay']).to.include({ operation: 'confirm', status: 'Completed' });
    const tx = (done.context['state1-pay'] as { transactionId: number }).transactionId;
    expect(pay.state.ledger).to.deep.equal([{ transactionId: tx, amount: 1500, currency: 'RUB' }]);
    expect(lastPush(code)).to.deep.include({ title: 'Чистый город', body: `Заказ #${code} выполнен, пожалуйста, оцените`, to: [USERS.customer] });
    // The customer's SMS shows the order as it is now: done and paid (vars), not as submitted.
    expect(sms(code).map((m) => [m.to, m.body])).to.deep.equal([[['+7 900 000-00-01'], `Заказ #${code}: Выполнен. Оплачен: да.`]]);
    expect(done.vars).to.deep.equal({ status: { id: 'DONE', title: 'Выполнен' }, payed: true, executor: USERS.ivan, hidden_customer_contact: false });
    await take(id, 'rate', CUSTOMER);
    await c.waitingAt(id, 'stateDone');
    await take(id, 'rate', EXEC_IVAN);
    expect((await c.act(id, 'rate', MODERATOR)).status).to.equal(403);
    // The rating window closes: the order is complete.
    const end = await c.until(id, (v) => v.status === 'completed', 6000);
    expect(end.context['stateDone-end']).to.deep.equal({ status: 'completed', reason: 'the order is done' });
    expect(await c.log(id)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:completed', 'state3-push:completed', 'state3:completed',
      'state3-action1-setData:completed', 'state4-push:completed', 'state4:completed', 'state4-action1_chat-push:completed', 'state4:completed',
      'state4-action2_chat-push:completed', 'state4:completed', 'state4-action1-push:completed', 'state5-setData:completed', 'state5:completed',
      'stateDone-setData:completed', 'stateDone-confirmPay:completed', 'stateDone-push:completed', 'stateDone-sms:completed', 'stateDone:completed', 'stateDone:completed',
      'stateDone:failed', 'stateDone-end:completed',
    ]);
    expect(await c.audit(id)).to.deep.equal([
      'env#5 action:pay:forbidden', 'env#7 action:cancel:forbidden', 'env#8 action:pay:forbidden', 'env#4 action:action1:not_offered',
      'env#4 action:pay:accepted', 'env#6 action:action1:accepted', 'env#4 action:action1_chat:invalid', 'env#4 action:action1_chat:accepted',
      'env#6 action:action2_chat:accepted', 'env#6 action:action1:accepted', 'env#6 action:action2:accepted', 'env#4 action:rate:accepted',
      'env#6 action:rate:accepted', 'env#7 action:rate:forbidden',
    ]);
  });

  it('an order with moderation: chats, an assignment, the executor drops it, another takes it, the moderator replaces him; stop', async () => {
    const id = await submit(order({ need_moderation: true }));
    await c.waitingAt(id, 'state1');
    await take(id, 'pay', CUSTOMER);
    const s2 = await c.waitingAt(id, 'state2');
    const code = codeOf(s2);
    expect(await offered(id, MODERATOR)).to.deep.equal(['action1', 'action2', 'action2_chat', 'cancel_moderator']);
    expect(await offered(id, CUSTOMER)).to.deep.equal(['action1_chat', 'cancel']);
    expect(await offered(id, EXEC_PETR)).to.deep.equal([]);

    await take(id, 'action1_chat', CUSTOMER, { field1416182395: 'Когда приедете?' });
    await c.until(id, (v) => v.status === 'waiting' && Boolean(v.context['state2-action1_chat-push']));
    expect(sent(code).at(-1)).to.deep.include({ to: [USERS.moderator], body: 'Когда приедете?', title: `Сообщение от Анна к заказу #${code}` });
    await take(id, 'action2_chat', MODERATOR, { field1416182395: 'Сегодня' });
    await c.until(id, (v) => v.status === 'waiting' && Boolean(v.context['state2-action2_chat-push']));
    expect(sent(code).at(-1)).to.deep.include({ to: [USERS.customer], title: `Сообщение от Ольга к заказу #${code}` });

    // «Назначить исполнителя» needs executor_user_id.
    expect((await c.act(id, 'action2', MODERATOR, {})).status).to.equal(422);
    await take(id, 'action2', MODERATOR, { executor_user_id: USERS.petr });
    const NEW_PAID = { status: { id: 'NEW', title: 'Новый' }, payed: true };
    expect((await c.waitingAt(id, 'state4')).vars, 'the executor lives at vars.executor').to.deep.equal({ ...NEW_PAID, executor: USERS.petr });
    expect(sent(code).find((m) => m.body.startsWith('Вас назначили исполнителем'))!.to).to.deep.equal([USERS.petr]);

    // Petr cancels the trip (executor_user_id → _NULL_): back to the search, every executor hears of it.
    await take(id, 'action2', EXEC_PETR);
    const s3 = await c.waitingAt(id, 'state3');
    expect(s3.context['state4-action2-setData']).to.deep.include({ executor_user_id: null });
    expect(s3.vars, 'dropped: vars.executor cleared').to.deep.equal({ ...NEW_PAID, executor: null });
    expect(sent(code).filter((m) => m.title === `Новый заказ #${code}`).at(-1)!.to).to.deep.equal([USERS.petr, USERS.ivan]);
    await take(id, 'action1', EXEC_IVAN);
    expect((await c.waitingAt(id, 'state4')).vars).to.deep.equal({ ...NEW_PAID, executor: USERS.ivan, hidden_customer_contact: false });
    await take(id, 'action1_chat', CUSTOMER, { field1416182395: 'Жду' });
    await c.until(id, (v) => v.status === 'waiting' && Boolean(v.context['state4-action1_chat-push']));
    expect(sent(code).at(-1)!.to).to.deep.equal([USERS.ivan, USERS.moderator]); // the current executor only

    await take(id, 'action1', EXEC_IVAN);
    await c.waitingAt(id, 'state5');
    expect(await offered(id, MODERATOR)).to.deep.equal(['action2_moderator', 'cancel']);
    expect(await offered(id, EXEC_IVAN)).to.deep.equal(['action2', 'action2_chat']);
    await take(id, 'action2_moderator', MODERATOR, { executor_user_id: USERS.petr }); // «Заменить исполнителя»
    expect((await c.waitingAt(id, 'state4')).vars).to.deep.equal({ status: { id: 'ACCEPTED', title: 'В работе' }, payed: true, executor: USERS.petr, hidden_customer_contact: false });
    expect(sent(code).filter((m) => m.body.startsWith('Вас назначили исполнителем')).at(-1)!.to).to.deep.equal([USERS.petr]);
    await take(id, 'action1', EXEC_PETR);
    await c.waitingAt(id, 'state5');
    await take(id, 'action1_chat', CUSTOMER, { field1416182395: 'Спасибо' });
    await c.until(id, (v) => v.status === 'waiting' && Boolean(v.context['state5-action1_chat-push']));
    expect(sent(code).at(-1)!.to).to.deep.equal([USERS.petr, USERS.moderator]); // the replacement, not Ivan

    const stop = await t.api<RequestView>('POST', `/api/requests/${id}/stop`, { body: { reason: 'the customer called to stop it' } });
    expect(stop.status).to.equal(200);
    expect(stop.body.status).to.equal('stopped');
    expect((await c.act(id, 'action2', EXEC_PETR)).status).to.equal(409);
    expect(await c.log(id)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:completed', 'state2:completed', 'state2-action1_chat-push:completed',
      'state2:completed', 'state2-action2_chat-push:completed', 'state2:completed', 'state2-action2-setData:completed', 'state2-action2-push:completed',
      'state4-push:completed', 'state4:completed', 'state4-action2-setData:completed', 'state4-action2-push:completed', 'state3-push:completed',
      'state3:completed', 'state3-action1-setData:completed', 'state4-push:completed', 'state4:completed', 'state4-action1_chat-push:completed',
      'state4:completed', 'state4-action1-push:completed', 'state5-setData:completed', 'state5:completed', 'state5-action2_moderator-setData:completed',
      'state5-action2_moderator-push:completed', 'state4-push:completed', 'state4:completed', 'state4-action1-push:completed', 'state5-setData:completed',
      'state5:completed', 'state5-action1_chat-push:completed', 'state5:cancelled',
    ]);
    expect((await c.audit(id)).slice(-2)).to.deep.equal(['env#1 stop:accepted', 'env#5 action:action2:not_offered']);
  });

  it('the customer cancels: unpaid in state1, nothing to release; paid in state2, the held money is released', async () => {
    const unpaid = await submit(order());
    await c.waitingAt(unpaid, 'state1');
    await take(unpaid, 'cancel', CUSTOMER);
    const a = await c.until(unpaid, (v) => v.status === 'stopped');
    expect(a.context['stateCancel-end']).to.deep.equal({ status: 'stopped', reason: 'the customer cancelled the order' });
    expect(lastPush(codeOf(a))).to.deep.include({ title: 'Чистый город', body: `Заказ #${codeOf(a)} отменен`, to: [USERS.petr, USERS.ivan] });
    expect(sms(codeOf(a)).map((m) => [m.to, m.body])).to.deep.equal([[['+7 900 000-00-01'], `Заказ #${codeOf(a)}: Отменен. Оплачен: нет.`]]);
    expect(a.vars).to.deep.equal({ status: { id: 'REJECTED', title: 'Отменен' }, payed: false });
    expect(await c.log(unpaid)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'stateCancel-setData:completed', 'stateCancel-push:completed', 'stateCancel-sms:completed', 'stateCancel-end:completed',
    ]);

    const paid = await submit(order({ need_moderation: true }));
    await c.waitingAt(paid, 'state1');
    await take(paid, 'pay', CUSTOMER);
    await c.waitingAt(paid, 'state2');
    await take(paid, 'cancel', CUSTOMER);
    const b = await c.until(paid, (v) => v.status === 'stopped');
    expect(b.context['stateCancel-setData']).to.deep.equal({ status_id: 'REJECTED' });
    expect(b.context['stateCancel-voidPay']).to.include({ operation: 'void', status: 'Cancelled' });
    const tx = pay.state.transactions.find((x) => x.id === (b.context['state1-pay'] as { transactionId: number }).transactionId)!;
    expect(tx.status).to.equal('Cancelled');
    expect(pay.state.ledger.some((l) => l.transactionId === tx.id)).to.equal(false);
    // Paid, then released: the SMS says so, from vars.
    expect(b.vars).to.deep.equal({ status: { id: 'REJECTED', title: 'Отменен' }, payed: false });
    expect(sms(codeOf(b)).map((m) => m.body)).to.deep.equal([`Заказ #${codeOf(b)}: Отменен. Оплачен: нет.`]);
    expect(await c.log(paid)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:completed', 'state2:completed',
      'stateCancel-setData:completed', 'stateCancel-voidPay:completed', 'stateCancel-push:completed', 'stateCancel-sms:completed', 'stateCancel-end:completed',
    ]);
  });

  it('the moderator rejects: in state2 (cancel_moderator) and in state4 (cancel); the money is released, the customer told', async () => {
    const early = await submit(order({ need_moderation: true }));
    await c.waitingAt(early, 'state1');
    await take(early, 'pay', CUSTOMER);
    await c.waitingAt(early, 'state2');
    expect((await c.act(early, 'cancel_moderator', CUSTOMER)).status).to.equal(403);
    await take(early, 'cancel_moderator', MODERATOR);
    const a = await c.until(early, (v) => v.status === 'stopped');
    expect(a.context['stateReject-end']).to.deep.equal({ status: 'stopped', reason: 'the order was rejected' });
    expect(lastPush(codeOf(a))).to.deep.include({ body: `Заказ #${codeOf(a)} отклонен`, to: [USERS.customer] });
    expect(sms(codeOf(a)).map((m) => m.body)).to.deep.equal([`Заказ #${codeOf(a)}: Отклонен. Оплачен: нет.`]);

    const late = await submit(order());
    await c.waitingAt(late, 'state1');
    await take(late, 'pay', CUSTOMER);
    await c.waitingAt(late, 'state3');
    await take(late, 'action1', EXEC_PETR);
    await c.waitingAt(late, 'state4');
    expect((await c.act(late, 'cancel', EXEC_PETR)).status).to.equal(403);
    await take(late, 'cancel', MODERATOR);
    const b = await c.until(late, (v) => v.status === 'stopped');
    expect(b.context['stateReject-voidPay']).to.include({ status: 'Cancelled' });
    expect(await c.log(late)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:completed', 'state3-push:completed', 'state3:completed',
      'state3-action1-setData:completed', 'state4-push:completed', 'state4:completed', 'stateReject-setData:completed', 'stateReject-voidPay:completed',
      'stateReject-push:completed', 'stateReject-sms:completed', 'stateReject-end:completed',
    ]);
  });

  it('a declined card leaves the order in state1, where the customer may pay again', async () => {
    pay.state.declineAccounts.push('declined-customer');
    const id = await submit(order({ customerId: 'declined-customer' }));
    await c.waitingAt(id, 'state1');
    // Only this order's customer may pay it: the customer is a relation to the order.
    expect((await c.act(id, 'pay', CUSTOMER)).status).to.equal(403);
    await take(id, 'pay', DECLINED);
    const v = await c.until(id, (x) => x.status === 'waiting' && Boolean(x.context['state1-pay']));
    expect(v.currentSteps.map((s) => s.stepId)).to.deep.equal(['state1']);
    expect(v.context['state1-pay']).to.include({ status: 'Declined', reason: 'Insufficient funds' });
    expect(await c.log(id)).to.deep.equal(['order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:completed', 'state1:waiting']);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('test mode: the payment goes to the test account and never charges; notifications go to the sandbox', async () => {
    const delivered = notify.state.delivered.length;
    const ledger = pay.state.ledger.length;
    const id = await submit(order(), '?test=1');
    await c.waitingAt(id, 'state1');
    await take(id, 'pay', CUSTOMER);
    await c.waitingAt(id, 'state3');
    await doneBy(id, EXEC_PETR);
    const done = await c.waitingAt(id, 'stateDone');
    const code = codeOf(done);
    const tx = pay.state.transactions.find((x) => x.id === (done.context['state1-pay'] as { transactionId: number }).transactionId)!;
    expect(tx).to.include({ testMode: true, status: 'Completed', amount: 1500 });
    expect(done.context['stateDone-confirmPay']).to.include({ status: 'Completed', testMode: true });
    // Captured in the test account: no money moved.
    expect(pay.state.ledger.length).to.equal(ledger);
    expect(pay.state.ledger.some((l) => l.transactionId === tx.id)).to.equal(false);
    expect(notify.state.delivered.length).to.equal(delivered);
    expect(sent(code, 'sandbox').length).to.be.at.least(5);
    expect((await c.runs(id)).filter((r) => r.stepId === 'state1-pay')[0]!.transport).to.equal('event');
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('error_stop: the payment provider refuses; the admin is e-mailed through the admin module; resume retries the payment', async () => {
    pay.fault({ path: '/payments/auth', status: 400 });
    const id = await submit(order());
    await c.waitingAt(id, 'state1');
    await take(id, 'pay', CUSTOMER);
    const stopped = await c.until(id, (v) => v.status === 'error_stop');
    expect(stopped.error).to.include({ stepId: 'state1-pay', code: 'CONVEYOR_ERR_NON_RETRYABLE' });
    const end = Date.now() + 5000;
    const alert = (): NotifyMessage | undefined => notify.state.delivered.find((m) => m.channel === 'email' && m.title === `ERROR_STOP: service-order ${id}`);
    await settle(alert, (a) => a !== undefined, { timeoutMs: end - Date.now(), everyMs: 20 });
    expect(alert()!.to).to.deep.equal(['ops@example.com']);
    expect(alert()!.body).to.include(`resume: ${t.url}/api/requests/${id}/resume`);
    // Nobody but an operator moves it: the customer's actions are not offered now.
    expect((await c.act(id, 'pay', CUSTOMER)).status).to.equal(409);
    const resumed = await t.api('POST', `/api/requests/${id}/resume`, { body: {} });
    expect(resumed.status, resumed.text).to.equal(200);
    const s3 = await c.waitingAt(id, 'state3');
    expect(s3.context['state1-pay']).to.include({ status: 'Authorized' });
    expect(await c.log(id)).to.deep.equal([
      'order:completed', 'state0-email:completed', 'state1:completed', 'state1-pay:failed', 'state1-pay:completed', 'state3-push:completed', 'state3:waiting',
    ]);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('a service paid to the executor directly: pay is confirmPayWithoutPayment, done is confirmPayExecutorWithoutPayment; no money moves', async () => {
    const transactions = pay.state.transactions.length;
    const ledger = pay.state.ledger.length;
    const id = await submit(order({ need_payment: false, need_moderation: true }));
    await c.waitingAt(id, 'state1');
    expect((await c.act(id, 'pay', MODERATOR)).status).to.equal(403);
    await take(id, 'pay', CUSTOMER);
    const s2 = await c.waitingAt(id, 'state2'); // moderation still applies
    const code = codeOf(s2);
    expect(s2.context['state1-confirmPayWithoutPayment']).to.deep.equal({ operation: 'confirmPayWithoutPayment', by: USERS.customer, amount: 1500 });
    expect(s2.vars).to.deep.equal({ status: { id: 'NEW', title: 'Новый' }, payed: true });
    await take(id, 'action1', MODERATOR);
    await c.waitingAt(id, 'state3');
    await doneBy(id, EXEC_PETR);
    const done = await c.waitingAt(id, 'stateDone');
    expect(done.context['stateDone-confirmPayExecutorWithoutPayment']).to.deep.equal({ operation: 'confirmPayExecutorWithoutPayment', executor: USERS.petr, amount: 1500 });
    expect(done.context['stateDone-confirmPay']).to.equal(undefined);
    expect(done.vars).to.deep.equal({ status: { id: 'DONE', title: 'Выполнен' }, payed: true, executor: USERS.petr, hidden_customer_contact: false, executor_payed: true });
    expect(sms(code).map((m) => m.body)).to.deep.equal([`Заказ #${code}: Выполнен. Оплачен: да.`]);
    // The payment provider never heard of this order.
    expect(pay.state.transactions.length).to.equal(transactions);
    expect(pay.state.ledger.length).to.equal(ledger);
    expect((await c.log(id)).filter((l) => /pay|Pay/.test(l))).to.deep.equal([
      'state1-confirmPayWithoutPayment:completed', 'stateDone-confirmPayExecutorWithoutPayment:completed',
    ]);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('register_executor: the platform registers each executor as one is set; a rating with a score becomes a platform entity', async () => {
    const id = await submit(order({ register_executor: true }));
    await c.waitingAt(id, 'state1');
    await take(id, 'pay', CUSTOMER);
    await c.waitingAt(id, 'state3');
    const code = codeOf(await c.get(id));
    await take(id, 'action1', EXEC_IVAN);
    const s4 = await c.waitingAt(id, 'state4');
    expect(s4.context['state4-registerExecutor']).to.deep.include({ operation: 'registerExecutor', order: code, userId: USERS.ivan });
    await take(id, 'action1', EXEC_IVAN);
    await c.waitingAt(id, 'state5');
    await take(id, 'action2_moderator', MODERATOR, { executor_user_id: USERS.petr }); // «Заменить исполнителя»
    await c.waitingAt(id, 'state4');
    expect(platform.state.registrations.filter((r) => r.order === code).map((r) => [r.userId, r.sandbox])).to.deep.equal([[USERS.ivan, false], [USERS.petr, false]]);
    await take(id, 'action1', EXEC_PETR);
    await c.waitingAt(id, 'state5');
    await take(id, 'action2', EXEC_PETR);
    await c.waitingAt(id, 'stateDone');
    await take(id, 'rate', CUSTOMER, { rating: 5, comment: 'Быстро и аккуратно' });
    await c.until(id, (v) => v.status === 'waiting' && Boolean(v.context['stateDone-rate-createEntity']));
    await take(id, 'rate', EXEC_PETR); // no score: nothing to create
    await c.waitingAt(id, 'stateDone');
    expect(platform.state.entities.filter((e) => e.order === code).map((e) => [e.type, e.fields])).to.deep.equal([
      ['rating', { by: USERS.customer, rating: 5, comment: 'Быстро и аккуратно', executor: USERS.petr }],
    ]);
    // A rating outside what the action takes is refused and creates nothing.
    expect((await c.act(id, 'rate', CUSTOMER, { stars: 5 })).status).to.equal(422);
    const log = await c.log(id);
    expect(log.filter((l) => l.startsWith('state4-registerExecutor') || l.startsWith('stateDone-rate'))).to.deep.equal([
      'state4-registerExecutor:completed', 'state4-registerExecutor:completed', 'stateDone-rate-createEntity:completed',
    ]);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });

  it('a courier, whom no action of the seed allows, is offered nothing in any state', async () => {
    const id = await submit(order({ need_moderation: true }));
    await c.waitingAt(id, 'state1');
    expect(await offered(id, COURIER)).to.deep.equal([]);
    await take(id, 'pay', CUSTOMER);
    await c.waitingAt(id, 'state2');
    expect(await offered(id, COURIER)).to.deep.equal([]);
    for (const code of ['action1', 'action2', 'cancel', 'cancel_moderator', 'action1_chat']) {
      expect((await c.act(id, code, COURIER, code === 'action2' ? { executor_user_id: USERS.courier } : {})).status, code).to.equal(403);
    }
    expect((await c.get(id)).currentSteps.map((s) => s.stepId)).to.deep.equal(['state2']);
    await t.api('POST', `/api/requests/${id}/stop`, { body: {} });
  });
});
