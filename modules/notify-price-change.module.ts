/**
 * `notify-price-change`: tells the shop's administrators that a price changed (seed 001
 * §13.3). The shop stand-in records the notification; its id is the step's idempotency key,
 * so a redelivered step does not notify twice.
 *
 * Params: `sku`, `oldPrice`, `price`.
 */
import { defineModule } from '../src';
import { callService, serviceUrl } from './lib/service-client';

export default defineModule<{ sku?: string; oldPrice?: number | null; price?: number }, Record<string, unknown>>({
  name: 'notify-price-change',
  description: 'Notifies the shop admins of a price change.',
  async handle({ params }, ctx) {
    return callService('shop', 'POST', `${serviceUrl.shop()}/notifications`, {
      id: ctx.idempotencyKey, kind: 'price.changed', sku: params.sku, oldPrice: params.oldPrice ?? null, price: params.price,
    }, ctx);
  },
});
