/**
 * `erp-order-status`: asks the ERP for an order's status (seed 001 §7.3: "1C → status update
 * on the site"). A `wait` step polls it: until `done` (the order is `completed`, `shipped`,
 * `rejected` or `cancelled`), or, with `doneField: 'changed'`, until the status differs from
 * `since` (the status the pipeline last saw; empty: any status is news).
 * Output: `{ done, changed, erpId, status, reason? }`.
 *
 * Params: `erpId`, or `orderId` (the shop's order id) when the order went to the ERP through
 * its broker queue: until the ERP has taken it, the status is `sent` (not done, not changed:
 * the ERP has reported nothing yet); `since` (optional).
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

const FINAL = new Set(['completed', 'shipped', 'rejected', 'cancelled']);

type ErpStatus = { erpId: string; status: string; reason?: string };

export default defineModule<{ erpId?: string; orderId?: string; since?: string }, { done: boolean; changed: boolean; erpId: string | null; status: string; reason?: string }>({
  name: 'erp-order-status',
  description: "Reads an ERP order's status (by ERP id or by the shop's order id); done once it is final, changed once it differs from `since`.",
  async handle({ params }, ctx) {
    const answer = (order: ErpStatus) => ({ ...order, done: FINAL.has(order.status), changed: !params.since || order.status !== params.since });
    if (params.erpId) {
      return answer(await callService<ErpStatus>('erp', 'GET', `${serviceUrl.erp()}/orders/${encodeURIComponent(params.erpId)}`, undefined, ctx));
    }
    if (!params.orderId) throw new NonRetryableError('params.erpId or params.orderId is required');
    try {
      return answer(await callService<ErpStatus>('erp', 'GET', `${serviceUrl.erp()}/orders/by-order/${encodeURIComponent(params.orderId)}`, undefined, ctx));
    } catch (err) {
      // 404: the order is still in the ERP's queue.
      if ((err as { details?: { status?: number } }).details?.status === 404) return { done: false, changed: false, erpId: null, status: 'sent' };
      throw err;
    }
  },
});
