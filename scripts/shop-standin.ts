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
import { DataSource, In } from 'typeorm';
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
  // Upserts are read-modify-write. They are applied in batches, one batch at a time: every
  // upsert that arrived during one event-loop turn is read with one query and written with
  // one multi-row INSERT … ON CONFLICT DO UPDATE (TypeORM's query builder), in arrival order,
  // so two events for one SKU never interleave and the table keeps up with an ERP export.
  type Upsert = { sku: string; body: Record<string, unknown>; key: string | undefined; resolve(v: unknown): void; reject(e: unknown): void };
  let pending: Upsert[] = [];
  let flushing: Promise<void> | null = null;
  const columns = ['name', 'price', 'stock', 'attributes', 'version', 'last_key', 'updated_at'];

  const apply = (cur: CatalogProduct | undefined, u: Upsert): { next: CatalogProduct; result: Record<string, unknown>; changed: boolean } => {
    const price = num(u.body.price);
    if (cur && u.key && cur.lastKey === u.key) {
      return { next: cur, changed: false, result: { sku: u.sku, version: cur.version, created: false, priceChanged: false, oldPrice: cur.price, price: cur.price, product: view(cur), replayed: true } };
    }
    const p = Object.assign(new CatalogProduct(), cur ?? { sku: u.sku, name: null, price: null, stock: null, attributes: null, version: 0 });
    const oldPrice = p.price;
    if (typeof u.body.name === 'string') p.name = u.body.name;
    if (price !== undefined) p.price = price;
    const stock = obj(u.body.stock);
    if (stock) p.stock = JSON.stringify({ ...(p.stock ? (JSON.parse(p.stock) as object) : {}), ...stock });
    const attributes = obj(u.body.attributes);
    if (attributes) p.attributes = JSON.stringify(attributes);
    p.version += 1;
    p.lastKey = u.key ?? null;
    p.updatedAt = Date.now();
    return { next: p, changed: true, result: { sku: u.sku, version: p.version, created: !cur, priceChanged: Boolean(cur) && price !== undefined && oldPrice !== price, oldPrice, price: p.price, product: view(p) } };
  };

  const flush = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    try {
      const found = await repo.findBy({ sku: In([...new Set(batch.map((u) => u.sku))]) });
      const rows = new Map(found.map((r) => [r.sku, r]));
      const changed = new Map<string, CatalogProduct>();
      const results = batch.map((u) => {
        const r = apply(rows.get(u.sku), u);
        rows.set(u.sku, r.next);
        if (r.changed) changed.set(u.sku, r.next);
        return r.result;
      });
      const list = [...changed.values()];
      for (let i = 0; i < list.length; i += 200) {
        await repo.createQueryBuilder().insert().into(CatalogProduct).values(list.slice(i, i + 200)).orUpdate(columns, ['sku']).execute();
      }
      batch.forEach((u, i) => u.resolve(results[i]));
    } catch (err) {
      for (const u of batch) u.reject(err);
    }
  };

  const schedule = (): void => {
    if (flushing || pending.length === 0) return;
    flushing = new Promise<void>((r) => setImmediate(r)).then(flush).finally(() => {
      flushing = null;
      schedule();
    });
  };

  const upsert = (sku: string, body: Record<string, unknown>, key: string | undefined): Promise<unknown> =>
    new Promise((resolve, reject) => {
      pending.push({ sku, body, key, resolve, reject });
      schedule();
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
      while (flushing) await flushing;
      await catalog.destroy();
    },
  };
}

if (require.main === module) runMain('shop stand-in', () => startShopStandin());
