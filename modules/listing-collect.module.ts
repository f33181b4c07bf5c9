/**
 * `listing-collect`: seed 000 §5.2 DATA_COLLECTION. Puts together the dataset the later steps
 * use: the item as the internal database describes it (it comes with the request), and the
 * marketplace's data: the category and the competitors' prices.
 *
 * Params: `item` (`{ title, game, features, ... }`), `categoryId`.
 * Output: `{ item, category: { id, title, commissionPct }, competitors: [{ id, title, price }],
 * market: { count, min, median, max } | null }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, obj, str } from './lib/http-json';
import { MARKETPLACE_URL_DEFAULT, MARKETPLACE_URL_ENV } from './lib/listing-config';
import { marketStats, type MarketStats } from './lib/pricing-rules';

interface Listing {
  id: string;
  title: string;
  price: number;
}

export interface ListingDataset {
  item: Record<string, unknown>;
  category: { id: string; title: string; commissionPct: number };
  competitors: Listing[];
  market: MarketStats | null;
}

export default defineModule<Record<string, unknown>, ListingDataset>({
  name: 'listing-collect',
  description: 'DATA_COLLECTION: the item, its marketplace category and the competitors\' prices.',
  timeout: '15s',
  retry: { attempts: 3, backoff: '500ms' },
  async handle({ params }, ctx) {
    const item = obj(params.item);
    if (!str(item.title)) throw new NonRetryableError('the item has no title');
    const categoryId = str(params.categoryId);
    if (!categoryId) throw new NonRetryableError('no categoryId');
    const base = baseUrl(MARKETPLACE_URL_ENV, MARKETPLACE_URL_DEFAULT);
    const id = encodeURIComponent(categoryId);
    const category = await callJson<ListingDataset['category']>(`${base}/api/categories/${id}`, { service: 'marketplace', signal: ctx.signal });
    const market = await callJson<{ listings: Listing[] }>(`${base}/api/market/${id}`, { service: 'marketplace', signal: ctx.signal });
    const competitors = Array.isArray(market.listings) ? market.listings : [];
    return { item, category, competitors, market: marketStats(competitors.map((l) => Number(l.price))) };
  },
});
