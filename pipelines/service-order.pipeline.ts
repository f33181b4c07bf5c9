/**
 * Seed 003: the service order process of a services marketplace, from the seed's JSON, state
 * by state. Each request is one order and runs on the copy of the process it started with
 * (Conveyor pins the pipeline version), as the seed requires.
 *
 * How the seed's JSON maps to steps:
 * - A state with `actions` is an `action` step named after the state (`state1` … `state5`,
 *   `stateDone`). `GET /api/requests/:id` lists the actions the caller's roles allow there.
 * - A state's `onStart` steps come before it: `state3-push`, `state5-setData`, … A
 *   `setState` is the route to the next state's first step.
 * - An action's `bp` steps are named `<state>-<code>-<type>`. The seed's `setData` with
 *   `required` fields is the action's `fields` (a missing one answers 422); a `setData` with
 *   values is a `setData` step (`_NULL_` → null; `_CURRENT_USER_` is the caller).
 * - `if` is the `condition` of the step before it; `push`/`sms`/`email` are `notify` steps;
 *   `pay`/`confirmPay`/`voidPay` are `payment` steps; `confirmPayWithoutPayment` and
 *   `confirmPayExecutorWithoutPayment` are `setData` steps (no money moves, so nothing to call);
 *   `registerExecutor` and `createEntity` are `platform` steps (the services platform's API).
 * - The order's status, `payed` and executor are process variables: `vars.status` (`{ id,
 *   title }`, set where the seed sets `status_id`), `vars.payed` (set by the payment steps)
 *   and `vars.executor`, so every notification shows the values of now, not the submitted ones.
 * - `clientData` is the action's collected data: `{{ state2.data['field1416182395'] }}`.
 * - The order (`{{ order.code }}`, `{% for item in order.fieldsData %}`) is the step `order`,
 *   state0's "field*" setData: every field of the submitted order.
 *
 * Where the seed gives one action code to two roles with different effects in one state
 * (`cancel` for the customer and the moderator; `action2` for the executor and the
 * moderator), the moderator's variant is `<code>_moderator`, since a code names one action.
 * No action of the seed allows `courier`.
 *
 * Its people are relations to the order (`participants`), never roles of a key or token: the
 * `customer` is `customerUser.id`, the `moderator`s are the order's `moderators`, the
 * `candidate`s are the provider's `executors` (who may take the order in state3), and the
 * `executor` is the one who took it or was assigned (`vars.executor`). So another customer
 * cannot cancel this order, and an executor who did not take it cannot confirm it. The
 * customer's phone and e-mail are hidden in every view from candidates, and, on an order sent
 * with `hidden_customer_contact: true`, from the executor too until taking the order reveals
 * them (the seed's `hidden_customer_contact: false`, kept at `vars.hidden_customer_contact`).
 *
 * Beyond the seed's example, and needed by its own rules: the money `pay` holds is captured
 * (`confirmPay`) when the order is done and released (`voidPay`) when it is cancelled or
 * rejected; an unpaid order needs neither. A declined card returns to `state1`. `stateDone`
 * waits for ratings for `SERVICE_ORDER_RATING_WINDOW` (default 14d) after the last one, then
 * the request completes. Cancelled and rejected orders end as `stopped`, and the customer gets
 * an SMS with the order's final status (as when it is done).
 *
 * A service with `need_payment: false` is paid to the executor directly: `pay` is then
 * `confirmPayWithoutPayment` (the order counts as paid, no card is charged), and when the
 * order is done `confirmPayExecutorWithoutPayment` records the executor as paid, with no
 * payout. A service with `register_executor: true` has the platform register each executor
 * of the order (`registerExecutor`) as one is set. A rating sent with `rating` (and an optional
 * `comment`) is created as a `rating` entity on the platform (`createEntity`).
 *
 * Submit: `POST /api/pipelines/service-order/requests[?test=1]` with the order: `{ code,
 * service: { title, need_moderation, organization }, sum, customerUser: { id, title,
 * phone_number, email }, executor, executors: [...], moderators: [...], fieldsData, ... }`.
 * In test mode payments go through the provider's test account and never charge.
 */
import { definePipeline, type ConditionDef, type Duration } from '../src';
import { chat, MESSAGE, notify, outcomeSms, PAYED, payment, platform, push } from './service-order.steps';

const RATING_WINDOW = (process.env.SERVICE_ORDER_RATING_WINDOW || '14d') as Duration;

/** The seed's order fields, copied from the submitted order into the step `order`. */
const ORDER_FIELDS = [
  'code', 'service', 'delivery', 'payed', 'sum', 'sum_payed', 'sum_total', 'customer', 'customerUser', 'executor',
  'executorUser', 'moderatorUser', 'status', 'deadline', 'fieldsData', 'fieldDeliveryAddress', 'fieldDateTimeDelivery',
  'executors', 'couriers', 'moderators',
] as const;

/** The customer's contact: hidden from executors as `hidden_customer_contact` says (see `redact`). */
const CONTACT = ['payload.customerUser.phone_number', 'payload.customerUser.email'];

const CHAT_FIELDS = { [MESSAGE]: { required: true, label: 'Сообщение' } };

/**
 * The order's current executor is the process variable `vars.executor`: set when an executor
 * takes the order (or a moderator assigns or replaces one), cleared (null) when dropped.
 */
const CURRENT_EXECUTOR = '{{ vars.executor }}';
/** The setData step after an assigning action records `executor_user_id` and sets `vars.executor` from it. */
const assignExecutor = (step: string) => ({ executor: `{{ ${step}.executor_user_id }}` });

/** The display name of the user who took the action at `state`. */
const authorOf = (state: string, people: string): string =>
  `{% for u in order.${people} %}{% if u.id == ${state}.by %}{{ u.title }}{% endif %}{% endfor %}`;

/** The order's statuses, as the seed's `status_id` values with their titles (`vars.status`). */
const STATUS = {
  NEW: { id: 'NEW', title: 'Новый' },
  ACCEPTED: { id: 'ACCEPTED', title: 'В работе' },
  DONE: { id: 'DONE', title: 'Выполнен' },
  CANCELLED: { id: 'REJECTED', title: 'Отменен' },
  REJECTED: { id: 'REJECTED', title: 'Отклонен' },
} as const;

/** Where a step that sets the executor goes: through `registerExecutor` when the service asks for it. */
const TO_STATE4 = { condition: [{ field: 'order.service.register_executor', operation: 'eq' as const, value: true, result: ['state4-registerExecutor' as const] }] };

/** Only a payment that holds money needs releasing. */
const IF_PAID = { field: 'state1-pay.status', operation: 'eq', value: 'Authorized' } as const;

const NEW_ORDER_EMAIL =
  'Заказ #{{ order.code }}<br/><br/><strong>Услуга</strong>: {{ order.service.title }}<br/><strong>Доставка</strong>: {{ order.delivery }}<br/>' +
  `<strong>Оплачен</strong>: ${PAYED}<br/><strong>Сумма к оплате</strong>: {{ order.sum }}<br/><strong>Выплаченная сумма</strong>: {{ order.sum_payed }}<br/>` +
  '<strong>Общая сумма</strong>: {{ order.sum_total }}<br/><strong>Организация заказчика</strong>: {{ order.customer.title }}<br/>' +
  '<strong>Заказчик</strong>: {{ order.customerUser.title }} {{ order.customerUser.phone_number }}<br/><strong>Провайдер</strong>: {{ order.executor.title }}<br/>' +
  '<strong>Исполнитель</strong>: {{ order.executorUser.title }}<br/><strong>Статус</strong>: {{ vars.status.title }}<br/>' +
  '<strong>Дата запланированного завершения</strong>: {{ order.deadline }}<br/><br/>' +
  '{% for item in order.fieldsData %}<strong>{{ item.field.title }}</strong>: {{ item.valueFormatted }}<br/>{% endfor %}<br/>' +
  'Детали заказа доступны в <a href="https://lk.crabler.com/site/{{ order.executor.communityProvider.id }}/jump">личном кабинете</a>.';

const ASSIGNED = 'Вас назначили исполнителем. Свяжитесь с клиентом и подтвердите выезд.';
const ANOTHER_EXECUTOR = 'На заказ будет назначен другой исполнитель, ожидайте';

export default definePipeline({
  id: 'service-order',
  description: 'Seed 003: a service order from creation to done, cancelled or rejected, with role actions, notifications and payment.',
  start: 'order',
  // Chats keep an order in its state as long as people talk: room for long conversations.
  maxSteps: 5000,
  participants: { customer: 'payload.customerUser.id', executor: 'vars.executor', candidate: 'payload.executors', moderator: 'payload.moderators' },
  redact: [
    ...CONTACT.map((path) => ({ path, from: ['candidate'], except: ['executor'] })),
    // An order submitted with `hidden_customer_contact: true` hides it from its executor too,
    // until an executor takes the order ("Взять в работу" sets it false).
    ...CONTACT.map((path) => ({
      path, from: ['executor'],
      when: [{ field: 'payload.hidden_customer_contact', operation: 'eq', value: true, success: [{ field: 'vars.hidden_customer_contact', operation: '!|eq', value: false }] }] satisfies ConditionDef[],
    })),
  ],
  steps: {
    // ---- state0 «Создание заказа» --------------------------------------------------------
    order: {
      description: 'state0 «Создание заказа»: the order\'s fields ("field*")',
      kind: 'setData',
      data: Object.fromEntries(ORDER_FIELDS.map((f) => [f, `{{ payload.${f} }}`])),
      // The order starts new and unpaid, whatever the submitted copy says.
      assign: { status: STATUS.NEW, payed: false },
      next: ['state0-email'],
    },
    'state0-email': notify('email', { subject: 'Новый заказ', text: NEW_ORDER_EMAIL }, ['zakaz@crabler.com', 'moderator'], ['state1']),

    // ---- state1 «Оплата заказа» ----------------------------------------------------------
    state1: {
      description: 'state1 «Оплата заказа»',
      kind: 'action',
      actions: {
        // «Оплатить»: by card, or without payment when the service is paid to the executor directly.
        pay: { label: 'Оплатить', allow: ['customer'] },
        cancel: { label: 'Отменить', allow: ['customer'], result: ['stateCancel-setData'] },
      },
      condition: [{ field: 'order.service.need_payment', operation: 'eq', value: false, result: ['state1-confirmPayWithoutPayment'] }],
      next: ['state1-pay'],
    },
    'state1-pay': {
      ...payment('pay', {
        condition: [
          { field: 'state1-pay.status', operation: 'ne', value: 'Authorized', result: ['state1'] },
          { field: 'order.service.need_moderation', operation: 'eq', value: true, result: ['state2'] },
        ],
        next: ['state3-push'],
      }),
      assign: { payed: '{{ state1-pay.paid }}' },
    },
    'state1-confirmPayWithoutPayment': {
      description: 'confirmPayWithoutPayment: the order counts as paid; no card is charged',
      kind: 'setData',
      data: { operation: 'confirmPayWithoutPayment', by: '{{ state1.by }}', amount: '{{ order.sum }}' },
      assign: { payed: true },
      condition: [{ field: 'order.service.need_moderation', operation: 'eq', value: true, result: ['state2'] }],
      next: ['state3-push'],
    },

    // ---- state2 «На модерации» -----------------------------------------------------------
    state2: {
      description: 'state2 «На модерации»',
      kind: 'action',
      actions: {
        action1: { label: 'Модерация пройдена', allow: ['moderator'], result: ['state3-push'] },
        action2: { label: 'Назначить исполнителя', allow: ['moderator'], fields: { executor_user_id: { required: true, label: 'Исполнитель' } }, result: ['state2-action2-setData'] },
        action1_chat: { label: 'Написать сообщение', allow: ['customer'], fields: CHAT_FIELDS, result: ['state2-action1_chat-push'] },
        action2_chat: { label: 'Написать сообщение', allow: ['moderator'], fields: CHAT_FIELDS, result: ['state2-action2_chat-push'] },
        cancel: { label: 'Отменить', allow: ['customer'], result: ['stateCancel-setData'] },
        cancel_moderator: { label: 'Отклонить', allow: ['moderator'], result: ['stateReject-setData'] },
      },
    },
    'state2-action2-setData': {
      kind: 'setData',
      data: { executor_user_id: '{{ state2.data.executor_user_id }}' },
      assign: assignExecutor('state2-action2-setData'),
      next: ['state2-action2-push'],
    },
    'state2-action2-push': { ...push('Заказ #{{ order.code }}', ASSIGNED, ['executor'], ['state4-push'], CURRENT_EXECUTOR), ...TO_STATE4 },
    'state2-action1_chat-push': chat('state2', '{{ order.customerUser.title }}', ['moderator']),
    'state2-action2_chat-push': chat('state2', '{{ order.moderatorUser.title }}', ['customer']),

    // ---- state3 «Поиск исполнителя» ------------------------------------------------------
    'state3-push': push(
      'Новый заказ #{{ order.code }}',
      '{{ order.service.title}}, {{ order.fieldDeliveryAddress }} {{ order.fieldDateTimeDelivery }} - {{ order.service.organization.currency.sum }} {{ order.service.organization.currency.short_title }}',
      ['executor'],
      ['state3'],
    ),
    state3: {
      description: 'state3 «Поиск исполнителя»',
      kind: 'action',
      actions: {
        action1: {
          label: 'Взять в работу',
          allow: ['candidate'],
          fields: { executor_user_id: { value: '_CURRENT_USER_' }, hidden_customer_contact: { value: false } },
          result: ['state3-action1-setData'],
        },
        action1_chat: { label: 'Написать сообщение', allow: ['customer'], fields: CHAT_FIELDS, result: ['state3-action1_chat-push'] },
        action2_chat: { label: 'Написать сообщение', allow: ['moderator'], fields: CHAT_FIELDS, result: ['state3-action2_chat-push'] },
        cancel: { label: 'Отменить', allow: ['customer'], result: ['stateCancel-setData'] },
        cancel_moderator: { label: 'Отклонить', allow: ['moderator'], result: ['stateReject-setData'] },
      },
    },
    'state3-action1-setData': {
      kind: 'setData',
      data: { executor_user_id: '{{ state3.data.executor_user_id }}', hidden_customer_contact: '{{ state3.data.hidden_customer_contact }}' },
      assign: { ...assignExecutor('state3-action1-setData'), hidden_customer_contact: '{{ state3.data.hidden_customer_contact }}' },
      ...TO_STATE4,
      next: ['state4-push'],
    },
    'state3-action1_chat-push': chat('state3', '{{ order.customerUser.title }}', ['moderator']),
    'state3-action2_chat-push': chat('state3', '{{ order.moderatorUser.title }}', ['customer']),

    // ---- state4 «Исполнитель назначен» ---------------------------------------------------
    'state4-registerExecutor': {
      description: 'registerExecutor: the platform learns who the order\'s executor is now (services with register_executor)',
      ...platform({ operation: 'registerExecutor', userId: CURRENT_EXECUTOR }, ['state4-push']),
    },
    'state4-push': push('Заказ #{{ order.code }}', 'Исполнитель найден, ожидайте звонка', ['customer'], ['state4']),
    state4: {
      description: 'state4 «Исполнитель назначен»',
      kind: 'action',
      actions: {
        action1: { label: 'Подтвердить выезд', allow: ['executor'], result: ['state4-action1-push'] },
        action2: { label: 'Отменить выезд', allow: ['executor'], result: ['state4-action2-setData'] },
        action2_moderator: { label: 'Вернуть в поиск', allow: ['moderator'], result: ['state4-action2-setData'] },
        action1_chat: { label: 'Написать сообщение', allow: ['customer'], fields: CHAT_FIELDS, result: ['state4-action1_chat-push'] },
        action2_chat: { label: 'Написать сообщение', allow: ['executor'], fields: CHAT_FIELDS, result: ['state4-action2_chat-push'] },
        action3_chat: { label: 'Написать сообщение', allow: ['moderator'], fields: CHAT_FIELDS, result: ['state4-action3_chat-push'] },
        cancel: { label: 'Отклонить', allow: ['moderator'], result: ['stateReject-setData'] },
      },
    },
    'state4-action1-push': push('Заказ #{{ order.code }}', 'Исполнитель {{ order.executor.title }} подтвердил выезд', ['customer'], ['state5-setData']),
    'state4-action2-setData': {
      kind: 'setData',
      data: { executor_user_id: '_NULL_' },
      assign: { executor: null },
      next: ['state4-action2-push'],
    },
    'state4-action2-push': push('Заказ #{{ order.code }}', ANOTHER_EXECUTOR, ['customer'], ['state3-push']),
    'state4-action1_chat-push': chat('state4', '{{ order.customerUser.title }}', ['executor', 'moderator'], CURRENT_EXECUTOR),
    'state4-action2_chat-push': chat('state4', authorOf('state4', 'executors'), ['customer']),
    'state4-action3_chat-push': chat('state4', '{{ order.moderatorUser.title }}', ['customer']),

    // ---- state5 «В работе» ---------------------------------------------------------------
    'state5-setData': { kind: 'setData', data: { status_id: 'ACCEPTED' }, assign: { status: STATUS.ACCEPTED }, next: ['state5'] },
    state5: {
      description: 'state5 «В работе»',
      kind: 'action',
      actions: {
        action2: { label: 'Завершить заказ', allow: ['executor'], result: ['stateDone-setData'] },
        action2_moderator: {
          label: 'Заменить исполнителя',
          allow: ['moderator'],
          fields: { executor_user_id: { required: true, label: 'Исполнитель' } },
          result: ['state5-action2_moderator-setData'],
        },
        action1_chat: { label: 'Написать сообщение', allow: ['customer'], fields: CHAT_FIELDS, result: ['state5-action1_chat-push'] },
        action2_chat: { label: 'Написать сообщение', allow: ['executor'], fields: CHAT_FIELDS, result: ['state5-action2_chat-push'] },
        cancel: { label: 'Отклонить', allow: ['moderator'], result: ['stateReject-setData'] },
      },
    },
    'state5-action2_moderator-setData': {
      kind: 'setData',
      data: { executor_user_id: '{{ state5.data.executor_user_id }}' },
      assign: assignExecutor('state5-action2_moderator-setData'),
      next: ['state5-action2_moderator-push'],
    },
    'state5-action2_moderator-push': { ...push('Заказ #{{ order.code }}', ASSIGNED, ['executor'], ['state4-push'], CURRENT_EXECUTOR), ...TO_STATE4 },
    'state5-action1_chat-push': chat('state5', '{{ order.customerUser.title }}', ['executor', 'moderator'], CURRENT_EXECUTOR),
    'state5-action2_chat-push': chat('state5', authorOf('state5', 'executors'), ['customer']),

    // ---- stateDone «Выполнен» ------------------------------------------------------------
    'stateDone-setData': {
      kind: 'setData',
      data: { status_id: 'DONE' },
      assign: { status: STATUS.DONE },
      // Money held by card is captured; an order paid without payment has nothing to capture.
      condition: [{ ...IF_PAID, result: ['stateDone-confirmPay'] }],
      next: ['stateDone-confirmPayExecutorWithoutPayment'],
    },
    'stateDone-confirmPay': { ...payment('confirm', { next: ['stateDone-push'] }), assign: { payed: '{{ stateDone-confirmPay.paid }}' } },
    'stateDone-confirmPayExecutorWithoutPayment': {
      description: 'confirmPayExecutorWithoutPayment: the executor was paid directly; recorded, no payout',
      kind: 'setData',
      data: { operation: 'confirmPayExecutorWithoutPayment', executor: CURRENT_EXECUTOR, amount: '{{ order.sum }}' },
      assign: { executor_payed: true },
      next: ['stateDone-push'],
    },
    'stateDone-push': push('{{ order.executor.title }}', 'Заказ #{{ order.code }} выполнен, пожалуйста, оцените', ['customer'], ['stateDone-sms']),
    'stateDone-sms': outcomeSms(['stateDone']),
    stateDone: {
      description: 'stateDone «Выполнен»: ratings, until the rating window closes',
      kind: 'action',
      actions: {
        rate: {
          label: 'Оценить выезд',
          allow: ['customer', 'executor'],
          fields: { rating: { required: false, label: 'Оценка' }, comment: { required: false, label: 'Комментарий' } },
        },
      },
      // A rating with a score becomes an entity on the platform; either way the order waits for more.
      condition: [{ field: 'stateDone.data.rating', operation: '!|empty', result: ['stateDone-rate-createEntity'] }],
      next: ['stateDone'],
      timeout: RATING_WINDOW,
      onTimeout: ['stateDone-end'],
    },
    'stateDone-rate-createEntity': platform({
      operation: 'createEntity', type: 'rating',
      fields: { by: '{{ stateDone.by }}', rating: '{{ stateDone.data.rating }}', comment: '{{ stateDone.data.comment }}', executor: CURRENT_EXECUTOR },
    }, ['stateDone']),
    'stateDone-end': { kind: 'stop', status: 'completed', reason: 'the order is done' },

    // ---- stateCancel «Отменен» -----------------------------------------------------------
    'stateCancel-setData': {
      kind: 'setData',
      data: { status_id: 'REJECTED' },
      assign: { status: STATUS.CANCELLED },
      condition: [{ ...IF_PAID, result: ['stateCancel-voidPay'] }],
      next: ['stateCancel-push'],
    },
    'stateCancel-voidPay': { ...payment('void', { next: ['stateCancel-push'] }), assign: { payed: '{{ stateCancel-voidPay.paid }}' } },
    'stateCancel-push': push('{{ order.executor.title }}', 'Заказ #{{ order.code }} отменен', ['executor'], ['stateCancel-sms']),
    'stateCancel-sms': outcomeSms(['stateCancel-end']),
    'stateCancel-end': { kind: 'stop', status: 'stopped', reason: 'the customer cancelled the order' },

    // ---- stateReject «Отклонен» ----------------------------------------------------------
    'stateReject-setData': {
      kind: 'setData',
      data: { status_id: 'REJECTED' },
      assign: { status: STATUS.REJECTED },
      condition: [{ ...IF_PAID, result: ['stateReject-voidPay'] }],
      next: ['stateReject-push'],
    },
    'stateReject-voidPay': { ...payment('void', { next: ['stateReject-push'] }), assign: { payed: '{{ stateReject-voidPay.paid }}' } },
    'stateReject-push': push('{{ order.executor.title }}', 'Заказ #{{ order.code }} отклонен', ['customer'], ['stateReject-sms']),
    'stateReject-sms': outcomeSms(['stateReject-end']),
    'stateReject-end': { kind: 'stop', status: 'stopped', reason: 'the order was rejected' },
  },
});
