/**
 * `marketplace-post-sale`: seed 000 §5.9 POST_SALE_ACTIONS. Sends the buyer the templated
 * message (rendered by the pipeline), confirms the order, and works out the sale's statistics,
 * which it hands on for the Pricing Engine (`forPricing`, read by UPDATE_PRICE).
 *
 * Params: `orderId`, `message`, `soldPrice`, `publishedAt`.
 * Output: `{ messageSent, orderConfirmed, stats: { soldPrice, publishedAt, soldAt, hoursToSell },
 * forPricing: { soldPrice, hoursToSell } }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, num, str } from './lib/http-json';
import { MARKETPLACE_URL_DEFAULT, MARKETPLACE_URL_ENV } from './lib/listing-config';

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'marketplace-post-sale',
  description: 'POST_SALE_ACTIONS: message to the buyer, order confirmation, sale statistics for pricing.',
  timeout: '20s',
  retry: { attempts: 3, backoff: '1s' },
  async handle({ params }, ctx) {
    const orderId = str(params.orderId);
    const message = str(params.message);
    const soldPrice = num(params.soldPrice);
    if (!orderId || !message || soldPrice === undefined) throw new NonRetryableError('post-sale actions need orderId, message and soldPrice');
    const base = `${baseUrl(MARKETPLACE_URL_ENV, MARKETPLACE_URL_DEFAULT)}/api/orders/${encodeURIComponent(orderId)}`;
    await callJson(`${base}/messages`, { service: 'marketplace', headers: { 'idempotency-key': ctx.idempotencyKey }, body: { text: message }, signal: ctx.signal });
    await callJson(`${base}/confirm`, { service: 'marketplace', body: {}, signal: ctx.signal });
    const soldAt = new Date();
    const published = Date.parse(str(params.publishedAt) ?? '');
    const hoursToSell = Number.isFinite(published) ? Math.round(((soldAt.getTime() - published) / 3_600_000) * 100) / 100 : 0;
    return {
      messageSent: true,
      orderConfirmed: true,
      stats: { soldPrice, publishedAt: str(params.publishedAt) ?? null, soldAt: soldAt.toISOString(), hoursToSell },
      forPricing: { soldPrice, hoursToSell },
    };
  },
});
