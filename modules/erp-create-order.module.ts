/**
 * `erp-create-order`: sends `order.created` to the ERP (seed 001 §7.3: the shop collects the
 * order, 1C processes it). The ERP deduplicates by the step's idempotency key, so a
 * redelivery does not create a second ERP document. Output: `{ erpId, status }`.
 *
 * Params: `order`, the normalised order (`{{ validate-order.event }}`).
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

export default defineModule<{ order?: Record<string, unknown> }, { erpId: string; status: string }>({
  name: 'erp-create-order',
  description: 'Creates the order document in the ERP.',
  async handle({ params }, ctx) {
    if (!params.order) throw new NonRetryableError('params.order is required');
    return callService('erp', 'POST', `${serviceUrl.erp()}/orders`, params.order, ctx);
  },
});
