/**
 * A local stand-in for the shop of seed 001 (the Laravel CMS + marketplace): it owns the
 * **catalog table** (`catalog_products`, through TypeORM on its own SQLite file), the admin
 * notifications and the orders' statuses. The `erp-catalog-sync` and `order-to-erp` modules
 * call it over HTTP, as they would call the real shop.
 *
 * Endpoints:
 * - `PUT /catalog/products/:sku` `{ event, name?, price?, stock?, attributes? }` → upserts the
 *   fields the event carries; answers `{ sku, version, created, priceChanged, oldPrice, price, product }`.
 *   An `Idempotency-Key` equal to the last applied one answers the same without applying again.
 * - `GET /catalog/products/:sku` → the product; `GET /catalog/stats` → counts
 * - `POST /notifications` `{ id, kind, sku, oldPrice, price }` (deduplicated by id); `GET /notifications`
 * - `PUT /orders/:id/status` `{ status, erpId, reason }`; `GET /orders/:id`
 *
 * Run directly: `npx tsx scripts/shop-standin.ts` (port `SHOP_PORT`, default 8082; database
 * `SHOP_DATABASE`, default `./data/shop.db`).
 */
import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { HttpError, runMain, startJsonServer, type RunningJsonServer } from './lib/json-server';
import { CatalogProduct } from './shop/catalog-product.entity';
import { Catalog1763800100000 } from './shop/1763800100000-catalog.migration';

export interface ShopStandin extends RunningJsonServer {
  catalog: DataSource;
  notifications: Array<Record<string, unknown>>;
  orders: Map<string, Record<string, unknown>>;
  /** The number of products in the catalog table. */
  countProducts(): Promise<number>;
}

/** Opens (and migrates) the shop's catalog database. */
export async function openCatalog(file: string): Promise<DataSource> {
  const database = file === ':memory:' ? file : resolve(file);
  if (database !== ':memory:') mkdirSync(dirname(database), { recursive: true });
  const ds = new DataSource({
    type: 'better-sqlite3',
    database,
    entities: [CatalogProduct],
    migrations: [Catalog1763800100000],
    enableWAL: database !== ':memory:',
    prepareDatabase: (db: { pragma(s: string): unknown }) => {
      db.pragma('synchronous = NORMAL');
    },
  });
  await ds.initialize();
  await ds.runMigrations();
  return ds;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

function view(p: CatalogProduct): Record<string, unknown> {
  return {
    sku: p.sku, name: p.name, price: p.price, stock: p.stock ? JSON.parse(p.stock) : null,
    attributes: p.attributes ? JSON.parse(p.attributes) : null, version: p.version, updatedAt: new Date(Number(p.updatedAt)).toISOString(),
  };
}

export async function startShopStandin(opts: { port?: number; host?: string; database?: string } = {}): Promise<ShopStandin> {
  const catalog = await openCatalog(opts.database ?? process.env.SHOP_DATABASE ?? './data/shop.db');
  const repo = catalog.getRepository(CatalogProduct);
  const notifications: Array<Record<string, unknown>> = [];
  const seen = new Set<string>();
  const orders = new Map<string, Record<string, unknown>>();
  // Upserts are read-modify-write: one at a time, so two events never interleave.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = chain.then(work, work);
    chain = next.catch(() => undefined);
    return next;
  };

  const upsert = (sku: string, body: Record<string, unknown>, key: string | undefined) => serial(async () => {
    const cur = await repo.findOneBy({ sku });
    const price = num(body.price);
    if (cur && key && cur.lastKey === key) {
      return { sku, version: cur.version, created: false, priceChanged: false, oldPrice: cur.price, price: cur.price, replayed: true };
    }
    const p = cur ?? Object.assign(new CatalogProduct(), { sku, name: null, price: null, stock: null, attributes: null, version: 0 });
    const oldPrice = p.price;
    if (typeof body.name === 'string') p.name = body.name;
    if (price !== undefined) p.price = price;
    const stock = obj(body.stock);
    if (stock) p.stock = JSON.stringify({ ...(p.stock ? (JSON.parse(p.stock) as object) : {}), ...stock });
    const attributes = obj(body.attributes);
    if (attributes) p.attributes = JSON.stringify(attributes);
    p.version += 1;
    p.lastKey = key ?? null;
    p.updatedAt = Date.now();
    // One INSERT … ON CONFLICT DO UPDATE through TypeORM's query builder, not a save() round trip.
    await repo.createQueryBuilder().insert().into(CatalogProduct).values(p)
      .orUpdate(['name', 'price', 'stock', 'attributes', 'version', 'last_key', 'updated_at'], ['sku']).execute();
    return { sku, version: p.version, created: !cur, priceChanged: Boolean(cur) && price !== undefined && oldPrice !== price, oldPrice, price: p.price, product: view(p) };
  });

  const server = await startJsonServer([
    ['PUT', '/catalog/products/:sku', (r) => {
      const body = obj(r.body);
      if (!body) throw new HttpError(400, 'body must be an object');
      return upsert(r.params.sku!, body, typeof r.headers['idempotency-key'] === 'string' ? r.headers['idempotency-key'] : undefined);
    }],
    ['GET', '/catalog/products/:sku', async (r) => {
      const p = await repo.findOneBy({ sku: r.params.sku! });
      if (!p) throw new HttpError(404, `no product ${r.params.sku}`);
      return view(p);
    }],
    ['GET', '/catalog/stats', async () => ({ products: await repo.count(), notifications: notifications.length, orders: orders.size })],
    ['POST', '/notifications', (r) => {
      const body = obj(r.body);
      if (!body || typeof body.id !== 'string') throw new HttpError(400, 'a notification needs an id');
      if (!seen.has(body.id)) {
        seen.add(body.id);
        notifications.push({ ...body, at: new Date().toISOString() });
      }
      return { id: body.id, delivered: true };
    }],
    ['GET', '/notifications', () => ({ items: notifications.slice(-1000), total: notifications.length })],
    ['PUT', '/orders/:id/status', (r) => {
      const body = obj(r.body);
      if (!body || typeof body.status !== 'string') throw new HttpError(400, 'status is required');
      const order = { id: r.params.id, status: body.status, erpId: body.erpId ?? null, reason: body.reason ?? null, updatedAt: new Date().toISOString() };
      orders.set(r.params.id!, order);
      return order;
    }],
    ['GET', '/orders/:id', (r) => {
      const o = orders.get(r.params.id!);
      if (!o) throw new HttpError(404, `no order ${r.params.id}`);
      return o;
    }],
  ], opts.port ?? Number(process.env.SHOP_PORT ?? 8082), opts.host ?? process.env.SHOP_HOST ?? '127.0.0.1');

  return {
    ...server,
    catalog,
    notifications,
    orders,
    countProducts: () => repo.count(),
    close: async () => {
      await server.close();
      await chain;
      await catalog.destroy();
    },
  };
}

if (require.main === module) runMain('shop stand-in', () => startShopStandin());
