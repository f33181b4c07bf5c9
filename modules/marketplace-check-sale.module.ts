/**
 * `marketplace-check-sale`: the polling half of seed 000 §5.8 WAIT_FOR_SALE. The wait step
 * calls it every interval until it answers `done: true`. Its output has the same `data` shape
 * as the webhook event, so the next step reads `WAIT_FOR_SALE.data` whichever came first.
 *
 * Params: `productId`. Output: `{ done: false, status }` or
 * `{ done: true, data: { orderId, productId, buyer, price } }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, str } from './lib/http-json';
import { MARKETPLACE_URL_DEFAULT, MARKETPLACE_URL_ENV } from './lib/listing-config';

interface Product {
  status: string;
  order: { id: string; buyer: string; price: number } | null;
}

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'marketplace-check-sale',
  description: 'WAIT_FOR_SALE (polling): has the product been sold?',
  timeout: '10s',
  retry: { attempts: 3, backoff: '1s' },
  async handle({ params }, ctx) {
    const productId = str(params.productId);
    if (!productId) throw new NonRetryableError('no productId to check');
    const p = await callJson<Product>(`${baseUrl(MARKETPLACE_URL_ENV, MARKETPLACE_URL_DEFAULT)}/api/products/${encodeURIComponent(productId)}`, { service: 'marketplace', signal: ctx.signal });
    if (p.status !== 'sold' || !p.order) return { done: false, status: p.status };
    return { done: true, data: { orderId: p.order.id, productId, buyer: p.order.buyer, price: p.order.price } };
  },
});
