/**
 * `erp-order-status`: asks the ERP for an order's status (seed 001 §7.3: "1C → status update
 * on the site"). A `wait` step polls it: until `done` (the order is `completed`, `shipped`,
 * `rejected` or `cancelled`), or, with `doneField: 'changed'`, until the status differs from
 * `since` (the status the pipeline last saw; empty: any status is news).
 * Output: `{ done, changed, erpId, status, reason? }`.
 *
 * Params: `erpId`, `since` (optional).
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

const FINAL = new Set(['completed', 'shipped', 'rejected', 'cancelled']);

export default defineModule<{ erpId?: string; since?: string }, { done: boolean; changed: boolean; erpId: string; status: string; reason?: string }>({
  name: 'erp-order-status',
  description: "Reads an ERP order's status; done once it is final, changed once it differs from `since`.",
  async handle({ params }, ctx) {
    if (!params.erpId) throw new NonRetryableError('params.erpId is required');
    const order = await callService<{ erpId: string; status: string; reason?: string }>('erp', 'GET', `${serviceUrl.erp()}/orders/${encodeURIComponent(params.erpId)}`, undefined, ctx);
    return { ...order, done: FINAL.has(order.status), changed: !params.since || order.status !== params.since };
  },
});
