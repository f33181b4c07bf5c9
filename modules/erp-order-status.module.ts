/**
 * `erp-order-status`: asks the ERP for an order's status (seed 001 §7.3: "1C → status update
 * on the site"). A `wait` step polls it until `done`: the order is `completed`, `shipped`,
 * `rejected` or `cancelled`. Output: `{ done, erpId, status, reason? }`.
 *
 * Params: `erpId`.
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

const FINAL = new Set(['completed', 'shipped', 'rejected', 'cancelled']);

export default defineModule<{ erpId?: string }, { done: boolean; erpId: string; status: string; reason?: string }>({
  name: 'erp-order-status',
  description: "Reads an ERP order's status; done once it is final.",
  async handle({ params }, ctx) {
    if (!params.erpId) throw new NonRetryableError('params.erpId is required');
    const order = await callService<{ erpId: string; status: string; reason?: string }>('erp', 'GET', `${serviceUrl.erp()}/orders/${encodeURIComponent(params.erpId)}`, undefined, ctx);
    return { ...order, done: FINAL.has(order.status) };
  },
});
