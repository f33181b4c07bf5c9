/**
 * `order-to-erp`: seed 001 §7.3 and §10.4. The shop sends `order.created`; the order goes to
 * the ERP (1C), the pipeline follows its status there, tells the customer of each status the
 * ERP reports (by e-mail, else by SMS), and writes the final status back to the shop.
 *
 * - One request per order (`businessKey: payload.order_id`): a re-sent order gets the run
 *   already following it while it runs (`onConflict: 'return-existing'`), and the finished
 *   run for a day after it ended (`reuse: 'return-existing'`), so re-sending an order never
 *   creates a second ERP document.
 * - The order goes to the ERP as 1C takes it: `order.created` published to the ERP's RabbitMQ
 *   exchange (`ERP_EXCHANGE`, default `erp`); the step completes once the broker confirmed
 *   it, and its message id (the step's idempotency key) lets the ERP drop a redelivery. The
 *   status is then followed by the shop's order id (`sent` until the ERP has taken it).
 * - `follow-erp-status` is one step run however long the ERP takes: it polls every 10 s,
 *   slowing to every 10 min (`ERP_POLL_EVERY` / `ERP_POLL_MAX_EVERY` change that, e.g. for
 *   tests), until the status changes, for at most 7 days. Each change is told to the
 *   customer, then the wait starts again, until the status is final.
 */
import { definePipeline, type Duration } from '../src';

const env = (name: string, fallback: Duration): Duration => (process.env[name] as Duration | undefined) || fallback;
const STATUS_TEXT = 'Order {{ payload.order_id }}: {{ follow-erp-status.status }}{% if follow-erp-status.reason %} ({{ follow-erp-status.reason }}){% endif %}';

export default definePipeline({
  id: 'order-to-erp',
  description: 'Shop order → ERP (1C) document → each ERP status to the customer (e-mail / SMS) → final status back to the shop (seed 001).',
  start: 'validate-order',
  intake: { businessKey: { path: 'payload.order_id', onConflict: 'return-existing', reuse: 'return-existing', reuseWindow: '24h' } },
  defaults: { timeout: '10s', retry: { attempts: 5, backoff: '200ms', factor: 2, maxDelay: '5s' } },
  steps: {
    'validate-order': {
      subsystem: 'erp-validate-event',
      params: { expect: 'order' },
      next: ['send-to-erp'],
      condition: [{ field: 'validate-order.valid', operation: 'eq', value: false, result: ['reject-order'] }],
    },
    'reject-order': { kind: 'stop', status: 'stopped', reason: 'invalid order', prev: ['validate-order'] },
    'send-to-erp': {
      kind: 'publish',
      description: 'order.created → the ERP exchange (RabbitMQ), confirmed by the broker.',
      amqp: { url: '${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}', exchange: '${ERP_EXCHANGE:-erp}', routingKey: 'order.created' },
      body: '{{ validate-order.event }}',
      prev: ['validate-order'],
      next: ['follow-erp-status'],
    },
    'follow-erp-status': {
      kind: 'wait',
      description: 'Until the ERP reports a status the customer has not been told yet.',
      poll: {
        subsystem: 'erp-order-status',
        every: env('ERP_POLL_EVERY', '10s'),
        backoff: 2,
        maxEvery: env('ERP_POLL_MAX_EVERY', '10m'),
        params: { orderId: '{{ payload.order_id }}', since: '{{ follow-erp-status.status }}' },
        doneField: 'changed',
      },
      timeout: '7d',
      prev: ['send-to-erp', 'next-status'],
      next: ['sms-customer'],
      condition: [{ field: 'payload.customer.email', operation: '!|empty', result: ['email-customer'] }],
    },
    'email-customer': {
      subsystem: 'notify',
      params: { channel: 'email', recipients: ['{{ payload.customer.email }}'], subject: STATUS_TEXT, text: STATUS_TEXT },
      prev: ['follow-erp-status'],
      next: ['next-status'],
      condition: [{ field: 'follow-erp-status.done', operation: 'eq', value: true, result: ['shop-update-order'] }],
    },
    'sms-customer': {
      subsystem: 'notify',
      params: { channel: 'sms', recipients: ['{{ payload.customer.phone }}'], message: STATUS_TEXT },
      prev: ['follow-erp-status'],
      next: ['next-status'],
      condition: [{ field: 'follow-erp-status.done', operation: 'eq', value: true, result: ['shop-update-order'] }],
    },
    // accepted → processing → completed | rejected (| shipped | cancelled): a handful of changes.
    'next-status': { kind: 'loop', target: 'follow-erp-status', max: 20, onExhausted: ['shop-update-order'], prev: ['email-customer', 'sms-customer'] },
    'shop-update-order': {
      subsystem: 'shop-update-order',
      params: {
        orderId: '{{ payload.order_id }}',
        status: '{{ follow-erp-status.status }}',
        erpId: '{{ follow-erp-status.erpId }}',
        reason: '{{ follow-erp-status.reason }}',
      },
      prev: ['email-customer', 'sms-customer', 'next-status'],
    },
  },
});
