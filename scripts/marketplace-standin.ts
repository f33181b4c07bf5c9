/**
 * A local stand-in for the marketplace of seed 000 (Playerok): categories, competitors'
 * listings, publishing a product, its sale, messages to the buyer and order confirmation. The
 * `marketplace-listing` pipeline's modules talk to it, and so do the demo and the tests.
 *
 * Endpoints (JSON):
 * - `GET /api/categories/:id` → `{ id, title, commissionPct }`, 404 when unknown
 * - `GET /api/market/:categoryId` → `{ listings: [{ id, title, price }] }` (the competitors)
 * - `POST /api/products` `{ itemId, title, description, price, images, categoryId, sandbox }`
 *   with an `Idempotency-Key` header → `{ id, url, status: 'active', price }`; the same key
 *   answers the same product
 * - `GET /api/products/:id` → the product: `{ id, status: 'active' | 'sold', order? }`
 * - `POST /api/orders/:id/messages` `{ text }` → `{ ok: true }`; a repeated `Idempotency-Key` sends nothing
 * - `POST /api/orders/:id/confirm` → `{ id, status: 'confirmed' }`
 *
 * Controls for demos and tests:
 * - `POST /_sell/:productId` `{ buyer?, price? }`: a buyer buys the product. When a webhook is
 *   set, the stand-in posts `{ key: productId, data: { orderId, productId, buyer, price } }` to
 *   it (Conveyor's `POST /api/events/marketplace.sale`) before answering, and polling sees the
 *   product sold only after that.
 * - `POST /_webhook` `{ url, key }` sets the webhook (`{ url: null }` turns it off), so a test
 *   can make a sale be noticed only by polling.
 * - `GET /_state`, `POST /_reset`, `GET|POST /_faults` (see `standin-kit.ts`).
 *
 * Run directly (`npx tsx scripts/marketplace-standin.ts`) it listens on `MARKETPLACE_PORT`
 * (default 8082); `MARKETPLACE_WEBHOOK_URL` and `MARKETPLACE_WEBHOOK_KEY` set the webhook.
 */
import { HttpError, requireAmount, requireString, runStandinMain, startStandin, type Json, type Standin } from './standin-kit';

export interface MarketCategory {
  id: string;
  title: string;
  commissionPct: number;
}

export interface MarketListing {
  id: string;
  categoryId: string;
  title: string;
  price: number;
}

export interface MarketProduct {
  id: string;
  itemId: string;
  title: string;
  description: string;
  price: number;
  images: string[];
  categoryId: string;
  status: 'active' | 'sold';
  /** Published by a test request: never shown to real buyers. */
  sandbox: boolean;
  idempotencyKey: string | null;
  createdAt: string;
  soldAt: string | null;
  orderId: string | null;
}

export interface MarketOrder {
  id: string;
  productId: string;
  buyer: string;
  price: number;
  status: 'paid' | 'confirmed';
  /** `key`: the `Idempotency-Key` it came with; a repeat is not sent twice. */
  messages: Array<{ text: string; key: string | null; at: string }>;
}

export interface MarketState {
  categories: MarketCategory[];
  listings: MarketListing[];
  products: MarketProduct[];
  orders: MarketOrder[];
  webhook: { url: string | null; key: string | null };
  /** Every webhook call made: its status, or the network error. */
  webhookCalls: Array<{ productId: string; status: number | null; error: string | null }>;
  calls: Record<string, number>;
}

/** The categories the marketplace knows at start. */
export const FIXTURE_CATEGORIES: readonly MarketCategory[] = [
  { id: 'skins', title: 'Скины', commissionPct: 10 },
  { id: 'accounts', title: 'Аккаунты', commissionPct: 12 },
  { id: 'currency', title: 'Игровая валюта', commissionPct: 8 },
];

/**
 * Competitors' listings. `skins` has a median of 1000 (well inside the default limits);
 * `currency` sits near the default MIN (median 110); `accounts` has none.
 */
export const FIXTURE_LISTINGS: readonly MarketListing[] = [
  { id: 'c-1', categoryId: 'skins', title: 'AK-47 | Redline', price: 900 },
  { id: 'c-2', categoryId: 'skins', title: 'AWP | Asiimov', price: 1000 },
  { id: 'c-3', categoryId: 'skins', title: 'M4A1-S | Hyper Beast', price: 1200 },
  { id: 'c-4', categoryId: 'currency', title: '1000 gold', price: 105 },
  { id: 'c-5', categoryId: 'currency', title: '1200 gold', price: 110 },
  { id: 'c-6', categoryId: 'currency', title: '1500 gold', price: 130 },
];

function initial(webhook: MarketState['webhook']): MarketState {
  return {
    categories: structuredClone(FIXTURE_CATEGORIES) as MarketCategory[],
    listings: structuredClone(FIXTURE_LISTINGS) as MarketListing[],
    products: [],
    orders: [],
    webhook: { ...webhook },
    webhookCalls: [],
    calls: {},
  };
}

/** The stand-in and a helper that sells a product as a buyer would. */
export interface MarketplaceStandin extends Standin<MarketState> {
  /** `POST /_sell/:productId`, without HTTP. Resolves after the webhook (if any) was called. */
  sell(productId: string, buyer?: string, price?: number): Promise<MarketOrder>;
  setWebhook(url: string | null, key?: string | null): void;
}

/** Starts the marketplace stand-in. `port: 0` picks a free port. */
export async function startMarketplaceStandin(opts: { port?: number; host?: string; webhookUrl?: string; webhookKey?: string } = {}): Promise<MarketplaceStandin> {
  let hook: MarketState['webhook'] = {
    url: opts.webhookUrl ?? process.env.MARKETPLACE_WEBHOOK_URL ?? null,
    key: opts.webhookKey ?? process.env.MARKETPLACE_WEBHOOK_KEY ?? null,
  };
  let seq = 0;
  const id = (prefix: string): string => `${prefix}-${++seq}`;
  let get: () => MarketState = () => {
    throw new Error('not started');
  };

  const product = (productId: string): MarketProduct => {
    const p = get().products.find((x) => x.id === productId);
    if (!p) throw new HttpError(404, 'NOT_FOUND', `no product ${productId}`);
    return p;
  };
  const order = (orderId: string): MarketOrder => {
    const o = get().orders.find((x) => x.id === orderId);
    if (!o) throw new HttpError(404, 'NOT_FOUND', `no order ${orderId}`);
    return o;
  };

  const sell = async (productId: string, buyer = 'buyer-1', price?: number): Promise<MarketOrder> => {
    const p = product(productId);
    if (p.status !== 'active') throw new HttpError(409, 'NOT_ACTIVE', `product ${productId} is ${p.status}`);
    const o: MarketOrder = { id: id('order'), productId, buyer, price: price ?? p.price, status: 'paid', messages: [] };
    get().orders.push(o);
    const state = get();
    const markSold = (): void => {
      p.status = 'sold';
      p.soldAt = new Date().toISOString();
      p.orderId = o.id;
    };
    // With a webhook, the product shows as sold to polling only once the webhook was
    // delivered: a test then sees the sale arrive one way or the other, never both racing.
    if (!state.webhook.url) markSold();
    else {
      try {
        const res = await fetch(state.webhook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(state.webhook.key ? { authorization: `Bearer ${state.webhook.key}` } : {}) },
          body: JSON.stringify({ key: productId, data: { orderId: o.id, productId, buyer, price: o.price } }),
          signal: AbortSignal.timeout(10_000),
        });
        state.webhookCalls.push({ productId, status: res.status, error: null });
      } catch (err) {
        state.webhookCalls.push({ productId, status: null, error: (err as Error).message });
      }
      markSold();
    }
    return structuredClone(o);
  };

  const s = await startStandin<MarketState>({
    host: opts.host ?? process.env.MARKETPLACE_HOST,
    port: opts.port ?? Number(process.env.MARKETPLACE_PORT ?? 8082),
    initial: () => initial(hook),
    onReset: () => {
      seq = 0;
    },
    routes: (state) => {
      get = state;
      return {
        'GET /api/categories/:id': (_c, p) => {
          const c = state().categories.find((x) => x.id === p.id);
          if (!c) throw new HttpError(404, 'NOT_FOUND', `no category ${p.id}`);
          return c;
        },
        'GET /api/market/:categoryId': (_c, p) => ({
          listings: state().listings.filter((l) => l.categoryId === p.categoryId).map(({ id: lid, title, price }) => ({ id: lid, title, price })),
        }),
        'POST /api/products': ({ body, headers }) => {
          const key = typeof headers['idempotency-key'] === 'string' ? headers['idempotency-key'] : null;
          const same = key ? state().products.find((x) => x.idempotencyKey === key) : undefined;
          if (same) return { id: same.id, url: `/products/${same.id}`, status: same.status, price: same.price };
          const categoryId = requireString(body, 'categoryId');
          if (!state().categories.some((c) => c.id === categoryId)) throw new HttpError(422, 'UNKNOWN_CATEGORY', `no category ${categoryId}`);
          const p: MarketProduct = {
            id: id('p'), itemId: requireString(body, 'itemId'), title: requireString(body, 'title'), description: String(body.description ?? ''),
            price: requireAmount(body, 'price'), images: Array.isArray(body.images) ? body.images.map(String) : [], categoryId,
            status: 'active', sandbox: body.sandbox === true, idempotencyKey: key, createdAt: new Date().toISOString(), soldAt: null, orderId: null,
          };
          state().products.push(p);
          return { id: p.id, url: `/products/${p.id}`, status: p.status, price: p.price };
        },
        'GET /api/products/:id': (_c, p) => {
          const found = product(p.id!);
          const o = found.orderId ? order(found.orderId) : undefined;
          return { ...found, order: o ? { id: o.id, buyer: o.buyer, price: o.price } : null };
        },
        'POST /api/orders/:id/messages': ({ body, headers }, p) => {
          const o = order(p.id!);
          const key = typeof headers['idempotency-key'] === 'string' ? headers['idempotency-key'] : null;
          if (!key || !o.messages.some((m) => m.key === key)) o.messages.push({ text: requireString(body, 'text'), key, at: new Date().toISOString() });
          return { ok: true };
        },
        'POST /api/orders/:id/confirm': (_c, p) => {
          const o = order(p.id!);
          o.status = 'confirmed';
          return { id: o.id, status: o.status };
        },
        'POST /_sell/:productId': async ({ body }, p) => sell(p.productId!, typeof body.buyer === 'string' ? body.buyer : undefined, typeof body.price === 'number' ? body.price : undefined),
        'POST /_webhook': ({ body }: { body: Json }) => {
          hook = { url: typeof body.url === 'string' ? body.url : null, key: typeof body.key === 'string' ? body.key : null };
          state().webhook = { ...hook };
          return { ok: true, webhook: hook };
        },
      };
    },
  });
  return Object.assign(s, {
    sell,
    setWebhook(url: string | null, key: string | null = hook.key) {
      hook = { url, key };
      s.state.webhook = { ...hook };
    },
  });
}

if (require.main === module) {
  runStandinMain('marketplace stand-in', () => startMarketplaceStandin(), (url) => `set MARKETPLACE_BASE_URL=${url}`);
}
