/**
 * `order-to-erp`: seed 001 §7.3. The shop sends `order.created`; the order goes to the ERP
 * (1C), the pipeline follows its status there until the ERP decides, and writes the final
 * status back to the shop.
 *
 * - One active request per order (`businessKey: payload.order_id`, `return-existing`): the
 *   shop re-sending an order gets the run already following it.
 * - The ERP's status is polled by a `wait` step every 300 ms, for at most 10 minutes.
 */
import { definePipeline } from '../src';

export default definePipeline({
  id: 'order-to-erp',
  description: 'Shop order → ERP (1C) document → ERP status back to the shop (seed 001).',
  start: 'validate-order',
  intake: { businessKey: { path: 'payload.order_id', onConflict: 'return-existing' } },
  defaults: { timeout: '10s', retry: { attempts: 5, backoff: '200ms', factor: 2, maxDelay: '5s' } },
  steps: {
    'validate-order': {
      subsystem: 'erp-validate-event',
      params: { expect: 'order' },
      next: ['erp-create-order'],
      condition: [{ field: 'validate-order.valid', operation: 'eq', value: false, result: ['reject-order'] }],
    },
    'reject-order': { kind: 'stop', status: 'stopped', reason: 'invalid order', prev: ['validate-order'] },
    'erp-create-order': {
      subsystem: 'erp-create-order',
      params: { order: '{{ validate-order.event }}' },
      prev: ['validate-order'],
      next: ['follow-erp-status'],
    },
    'follow-erp-status': {
      kind: 'wait',
      poll: { subsystem: 'erp-order-status', every: '300ms', params: { erpId: '{{ erp-create-order.erpId }}' } },
      timeout: '10m',
      prev: ['erp-create-order'],
      next: ['shop-update-order'],
    },
    'shop-update-order': {
      subsystem: 'shop-update-order',
      params: {
        orderId: '{{ payload.order_id }}',
        status: '{{ follow-erp-status.status }}',
        erpId: '{{ follow-erp-status.erpId }}',
        reason: '{{ follow-erp-status.reason }}',
      },
      prev: ['follow-erp-status'],
    },
  },
});
