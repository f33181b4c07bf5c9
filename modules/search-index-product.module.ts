/**
 * `search-index-product`: puts the product's current catalog entry into the search engine's
 * `products` index (the search stand-in speaks a small Elasticsearch-like API).
 *
 * Params: `sku`, and `product`: the merged catalog entry the upsert answered (so the index
 * gets the whole product, not just the fields of one event). Without `product` the entry is
 * read back from the shop.
 */
import { defineModule, NonRetryableError } from '../src';
import { callService, serviceUrl } from './lib/service-client';

export default defineModule<{ sku?: string; product?: Record<string, unknown> }, { indexed: string; version: number }>({
  name: 'search-index-product',
  description: 'Indexes a catalog product in the search engine.',
  timeout: '10s',
  async handle({ params }, ctx) {
    if (!params.sku) throw new NonRetryableError('params.sku is required');
    const sku = encodeURIComponent(params.sku);
    const doc = params.product && typeof params.product === 'object'
      ? params.product
      : await callService<Record<string, unknown>>('shop', 'GET', `${serviceUrl.shop()}/catalog/products/${sku}`, undefined, ctx);
    const res = await callService<{ version: number }>('search', 'PUT', `${serviceUrl.search()}/indexes/products/docs/${sku}`, doc, ctx);
    return { indexed: params.sku, version: res.version };
  },
});
