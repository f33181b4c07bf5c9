/**
 * `marketplace-publish`: seed 000 §5.7 PUBLISH. Creates the product on the marketplace with its
 * price and preview images, and keeps the product's id. The step's idempotency key goes with
 * the call, so a redelivery does not publish twice. A test request (`?test=1`) publishes to
 * the marketplace's sandbox.
 *
 * Params: `itemId`, `categoryId`, `title`, `description`, `price`, `images`.
 * Output: `{ productId, url, price, publishedAt, sandbox }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, num, str } from './lib/http-json';
import { MARKETPLACE_URL_DEFAULT, MARKETPLACE_URL_ENV } from './lib/listing-config';

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'marketplace-publish',
  description: 'PUBLISH: creates the product with its price and previews; keeps its id.',
  timeout: '20s',
  retry: { attempts: 3, backoff: '1s' },
  async handle({ params }, ctx) {
    const price = num(params.price);
    const title = str(params.title);
    if (price === undefined || price <= 0) throw new NonRetryableError('no calculated price to publish');
    if (!title) throw new NonRetryableError('no title to publish');
    const res = await callJson<{ id: string; url: string; price: number }>(`${baseUrl(MARKETPLACE_URL_ENV, MARKETPLACE_URL_DEFAULT)}/api/products`, {
      service: 'marketplace',
      headers: { 'idempotency-key': ctx.idempotencyKey },
      body: {
        itemId: str(params.itemId), categoryId: str(params.categoryId), title, description: str(params.description) ?? '',
        price, images: Array.isArray(params.images) ? params.images : [], sandbox: ctx.test,
      },
      signal: ctx.signal,
    });
    return { productId: res.id, url: res.url, price: res.price, publishedAt: new Date().toISOString(), sandbox: ctx.test };
  },
});
