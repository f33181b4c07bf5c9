/**
 * `shop-upsert-product`: writes a validated catalog event into the shop's catalog (the shop
 * stand-in keeps it in a real table through TypeORM). Only the fields the event carries are
 * changed. Output: `{ sku, version, created, priceChanged, oldPrice, price }`.
 *
 * Params: `event`, the normalised event (`{{ validate-event.event }}`).
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

export default defineModule<{ event?: Record<string, unknown> }, Record<string, unknown>>({
  name: 'shop-upsert-product',
  description: "Upserts a product into the shop's catalog.",
  timeout: '10s',
  async handle({ params }, ctx) {
    const event = params.event;
    if (!event || typeof event.sku !== 'string') throw new NonRetryableError('params.event with a sku is required');
    return callService<Record<string, unknown>>('shop', 'PUT', `${serviceUrl.shop()}/catalog/products/${encodeURIComponent(event.sku)}`, event, ctx);
  },
});
