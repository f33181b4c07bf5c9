/**
 * `shop-update-order`: writes the ERP's final order status back to the shop, which shows it
 * to the customer (seed 001 §7.3). Params: `orderId`, `status`, `erpId`, `reason`.
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

export default defineModule<{ orderId?: string; status?: string; erpId?: string; reason?: string }, Record<string, unknown>>({
  name: 'shop-update-order',
  description: "Sets the order's status in the shop.",
  async handle({ params }, ctx) {
    if (!params.orderId || !params.status) throw new NonRetryableError('params.orderId and params.status are required');
    return callService('shop', 'PUT', `${serviceUrl.shop()}/orders/${encodeURIComponent(params.orderId)}/status`, {
      status: params.status, erpId: params.erpId ?? null, reason: params.reason ?? null,
    }, ctx);
  },
});
