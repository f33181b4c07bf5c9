/**
 * `npm run demo:erp`: seed 001's exchange over RabbitMQ, end to end.
 *
 * It starts the shop, search and ERP stand-ins, connects the ERP to RabbitMQ (`AMQP_URL`,
 * default amqp://guest:guest@127.0.0.1:5672) on an exchange and queues of its own
 * (`demo-…`, deleted at the end), and an engine with the real `pipelines/` and `modules/` on
 * a fresh SQLite file with the HTTP API. Then, as the systems of the seed would:
 *
 * 1. the ERP publishes `--events` catalog events (default 1000; `product.updated`,
 *    `price.changed`, `stock.changed` over `--skus` SKUs, one of them broken) to its exchange;
 *    `erp-catalog-sync` consumes the catalog queue (a source) and applies them to the shop's
 *    catalog and the search index;
 * 2. the shop sends three orders over HTTP to `order-to-erp`, which publishes each to the ERP's
 *    exchange; the ERP takes them from its orders queue, and the pipeline follows each ERP
 *    document to its final status and writes it back to the shop.
 *
 * It prints what arrived where. Exit code 0 when every count matches, 1 otherwise.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyRing } from '../src/api/auth';
import { serve, type RunningServer } from '../src/cli/server';
import { Engine } from '../src/engine';
import { createLogger } from '../src/log/logger';
import { connectErpBroker, type ErpBroker } from './erp-broker';
import { generateEvents, startErpStandin, type ErpStandin } from './erp-standin';
import { startNotifyStandin, type NotifyState } from './notify-standin';
import { startSearchStandin, type SearchStandin } from './search-standin';
import { startShopStandin, type ShopStandin } from './shop-standin';
import type { Standin } from './standin-kit';

const ROOT = path.resolve(__dirname, '..');
const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const flag = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function main(): Promise<number> {
  const events = flag('events', 1000);
  const skus = flag('skus', Math.max(1, Math.floor(events / 4)));
  const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
  const tag = `demo-${randomBytes(4).toString('hex')}`;
  const names = { exchange: `${tag}.erp`, catalogQueue: `${tag}.erp.catalog`, ordersQueue: `${tag}.erp.orders` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-demo-erp-'));
  const databaseUrl = `sqlite:${path.join(dir, 'demo.db')}`;
  let shop: ShopStandin | undefined;
  let search: SearchStandin | undefined;
  let erp: ErpStandin | undefined;
  let notify: Standin<NotifyState> | undefined;
  let broker: ErpBroker | undefined;
  let engine: Engine | undefined;
  let server: RunningServer | undefined;
  try {
    shop = await startShopStandin({ port: 0, host: '127.0.0.1', database: path.join(dir, 'shop.db') });
    search = await startSearchStandin({ port: 0, host: '127.0.0.1' });
    erp = await startErpStandin({ port: 0, host: '127.0.0.1', processingMs: 200 });
    broker = await connectErpBroker(erp, amqpUrl, names);
    notify = await startNotifyStandin({ port: 0, host: '127.0.0.1' });
    Object.assign(process.env, {
      SHOP_BASE_URL: shop.url, SEARCH_BASE_URL: search.url, ERP_BASE_URL: erp.url, NOTIFY_BASE_URL: notify.url,
      // The ERP stand-in moves on every 200 ms: poll it faster than production's 10 s.
      ERP_POLL_EVERY: '100ms', ERP_POLL_MAX_EVERY: '1s',
      AMQP_URL: amqpUrl, ERP_EXCHANGE: names.exchange, ERP_CATALOG_QUEUE: names.catalogQueue,
    });
    engine = await Engine.create({ databaseUrl, pipelinesDir: path.join(ROOT, 'pipelines'), modulesDir: path.join(ROOT, 'modules'), cwd: ROOT, logger: createLogger(process.env.LOG_LEVEL ?? 'error') });
    await engine.start();
    const key = `demo-${randomBytes(12).toString('hex')}`;
    server = await serve(engine, '127.0.0.1', 0, () => undefined, { keys: new KeyRing(engine.store, `${key}:submit+read`) });
    const api = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
      const r = await fetch(`${server!.url}${route}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return (await r.json()) as T;
    };

    out('Conveyor demo: seed 001 over RabbitMQ (ERP ⇄ broker ⇄ Conveyor ⇄ shop)');
    out(`  RabbitMQ      ${amqpUrl.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@')}, exchange "${names.exchange}"`);
    out(`  API           ${server.url}   (dashboard: ${server.url}/#/sources)`);
    out();

    // 1. The ERP publishes its catalog export; one event is broken on purpose.
    const list = [...generateEvents(events - 1, skus, 0, 7)];
    const t0 = Date.now();
    await broker.publishCatalog(list);
    await broker.publishRaw('price.changed', 'evt-broken', '{"sku": "SKU-1", "price": ');
    const published = Date.now() - t0;
    out(`ERP → RabbitMQ: ${list.length + 1} catalog events published to "${names.exchange}" in ${published} ms (1 broken)`);
    type Counts = { n: number | string };
    const count = async (sql: string): Promise<number> => Number((await engine!.store.query<Counts>(sql))[0]?.n ?? 0);
    await waitFor('every event to be stored', async () => (await count("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'erp-catalog-sync'")) >= list.length, 120_000);
    await waitFor('every event to be applied', async () => (await count("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'erp-catalog-sync' AND status IN ('completed','stopped')")) >= list.length, 600_000);
    const applied = Date.now() - t0;

    // 2. The shop sends orders; Conveyor publishes them to the ERP and follows them.
    const orders = [
      { event: 'order.created', order_id: `ORD-${tag}-1`, user_id: 'USR-789', items: [{ product_id: '1001', quantity: 1 }], total: 98000, status: 'created', customer: { email: 'anna@example.com' } },
      { event: 'order.created', order_id: `ORD-${tag}-2`, user_id: 'USR-790', items: [{ product_id: '2002', quantity: 2 }], total: 4000, status: 'created', customer: { phone: '+7 900 000-00-02' } },
      { event: 'order.created', order_id: `ORD-${tag}-3`, user_id: 'USR-791', items: [{ product_id: '3003', quantity: 500 }], total: 1, status: 'created', customer: { email: 'boris@example.com' } },
    ];
    const ids = await Promise.all(orders.map((o) => api<{ id: string }>('POST', '/api/pipelines/order-to-erp/requests', o).then((r) => r.id)));
    await waitFor('the orders to reach their final status', async () => orders.every((o) => shop!.orders.get(o.order_id)), 60_000);
    const sources = await api<{ sources: Array<{ pipeline: string; name: string; stored: number; duplicates: number; rejected: number; state: string }>; rejects: Array<{ messageId: string; code: string; reason: string }> }>('GET', '/api/sources');
    const src = sources.sources.find((s) => s.pipeline === 'erp-catalog-sync')!;

    const catalogRows = await shop.catalog.query('SELECT COUNT(*) AS n FROM catalog_products') as Array<{ n: number }>;
    const bySku = new Set(list.map((e) => e.sku));
    const stopped = await count("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'erp-catalog-sync' AND status = 'stopped'");
    const indexed = search.indexes.get('products')?.size ?? 0;
    out();
    out('What arrived where');
    out(`  RabbitMQ → Conveyor   source "${src.name}" (${src.state}): ${src.stored} requests stored, ${src.duplicates} duplicates, ${src.rejected} rejected (dead-lettered to ${names.catalogQueue}.dead)`);
    for (const r of sources.rejects) out(`                        rejected ${r.messageId}: ${r.code}: ${r.reason}`);
    out(`  Conveyor → shop       ${catalogRows[0]!.n} products in the catalog table (${bySku.size} SKUs in the export; ${stopped} events stopped as invalid)`);
    out(`  Conveyor → search     ${indexed} products indexed`);
    out(`  Conveyor → admins     ${shop.notifications.length} price-change notices`);
    out(`  Conveyor → customers  ${notify.state.delivered.length} status messages by e-mail or SMS (each ERP status of each order)`);
    out(`  catalog throughput    ${Math.round((list.length * 1000) / applied)} events/s end to end (rate policy: 400/s; ${applied} ms)`);
    out(`  shop → Conveyor → RabbitMQ → ERP   ${broker.ordersTaken()} of ${orders.length} orders taken from "${names.ordersQueue}"`);
    for (const [i, o] of orders.entries()) {
      const s = shop.orders.get(o.order_id) as { status?: string; erpId?: string; reason?: string } | undefined;
      out(`    ${o.order_id}  request ${ids[i]}  → ERP ${s?.erpId ?? '?'}  → shop status ${s?.status ?? '?'}${s?.reason ? ` (${s.reason})` : ''}`);
    }
    const ok = src.stored === list.length && src.rejected === 1 && broker.ordersTaken() === orders.length && orders.every((o) => shop!.orders.get(o.order_id));
    out();
    out(ok ? 'Every event and order arrived where it should.' : 'Some counts differ (see above).');
    return ok ? 0 : 1;
  } finally {
    await server?.close().catch(() => {});
    await engine?.stop().catch(() => {});
    await broker?.deleteAll().catch(() => {});
    await broker?.close().catch(() => {});
    await Promise.all([shop?.close(), search?.close(), erp?.close(), notify?.close()].map((p) => p?.catch(() => {})));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo:erp failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
