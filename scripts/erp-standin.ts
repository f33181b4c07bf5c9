/**
 * A local stand-in for the ERP (1C:ERP) of seed 001, and a generator of its catalog events.
 *
 * Server (`npx tsx scripts/erp-standin.ts`, port `ERP_PORT`, default 8084):
 * - `POST /orders` (the order.created body; `Idempotency-Key` deduplicates) → `{ erpId, status: 'accepted' }`.
 *   The document then moves by itself: `processing` after `ERP_PROCESSING_MS` (default 100),
 *   then `completed`, or `rejected` (reason "not enough stock") when an item asks for more
 *   than 100, after as long again. With `statusReads` (`ERP_STATUS_READS`) a status moves on
 *   only after it has been read that many times instead, so a test sees every status, or
 *   makes a poller wait a thousand polls, whatever the machine's speed.
 * - `GET /orders/:erpId` → `{ erpId, orderId, status, reason? }`
 * - `GET /orders/by-order/:orderId` → the same, found by the shop's order id (404 until the
 *   ERP has taken the order, e.g. from its broker queue)
 * - `GET /_state` → every order
 *
 * Generator: `npx tsx scripts/erp-standin.ts generate --events 100000 [--skus 50000]
 * [--invalid 0.001] [--format ndjson|csv] [--seed 1] > events.ndjson` prints product.updated,
 * price.changed and stock.changed events (50/30/20), each with a unique `event_id`, the same
 * for the same seed.
 */
import { HttpError, runMain, startJsonServer, type RunningJsonServer } from './lib/json-server';

export interface ErpOrder {
  erpId: string;
  orderId: string;
  status: 'accepted' | 'processing' | 'completed' | 'rejected';
  reason?: string;
  items: Array<{ product_id: string; quantity: number }>;
  /** How many times its status was read. */
  reads?: number;
}

export interface ErpStandin extends RunningJsonServer {
  orders: Map<string, ErpOrder>;
  /** Status reads by order id that found no document yet (404: the order is still in the ERP's queue). */
  misses: Map<string, number>;
  /** Creates the ERP document of an order (as `POST /orders`); a repeated `key` returns the first. */
  createOrder(body: Record<string, unknown>, key?: string): { erpId: string; status: string };
}

export async function startErpStandin(opts: { port?: number; host?: string; processingMs?: number; statusReads?: number } = {}): Promise<ErpStandin> {
  const orders = new Map<string, ErpOrder>();
  const byKey = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  const step = Number(opts.processingMs ?? process.env.ERP_PROCESSING_MS ?? 100);
  const statusReads = Number(opts.statusReads ?? process.env.ERP_STATUS_READS ?? 0);
  const reads = new Map<string, number>();
  const advance = (order: ErpOrder): void => {
    if (order.status === 'accepted') order.status = 'processing';
    else if (order.status === 'processing') {
      const short = order.items.some((i) => Number(i.quantity) > 100);
      order.status = short ? 'rejected' : 'completed';
      if (short) order.reason = 'not enough stock';
    }
  };
  let seq = 0;
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const byOrder = new Map<string, string>();
  const misses = new Map<string, number>();
  const createOrder = (body: Record<string, unknown>, key?: string): { erpId: string; status: string } => {
    if (typeof body.order_id !== 'string' || !Array.isArray(body.items)) throw new HttpError(400, 'an order needs order_id and items');
    const known = key ? byKey.get(key) : undefined;
    if (known) return { erpId: known, status: orders.get(known)!.status };
    const order: ErpOrder = { erpId: `ERP-${String(++seq).padStart(6, '0')}`, orderId: body.order_id, status: 'accepted', items: body.items as ErpOrder['items'] };
    orders.set(order.erpId, order);
    byOrder.set(order.orderId, order.erpId);
    if (key) byKey.set(key, order.erpId);
    if (statusReads <= 0) later(step, () => {
      advance(order);
      later(step, () => advance(order));
    });
    return { erpId: order.erpId, status: order.status };
  };
  const view = (o: ErpOrder | undefined, what: string) => {
    if (!o) throw new HttpError(404, `no ERP order ${what}`);
    const answer = { erpId: o.erpId, orderId: o.orderId, status: o.status, ...(o.reason ? { reason: o.reason } : {}) };
    o.reads = (o.reads ?? 0) + 1;
    if (statusReads > 0) {
      const n = (reads.get(o.erpId) ?? 0) + 1;
      reads.set(o.erpId, n);
      if (n >= statusReads) {
        reads.set(o.erpId, 0);
        advance(o);
      }
    }
    return answer;
  };
  const server = await startJsonServer([
    ['POST', '/orders', (r) => createOrder((r.body ?? {}) as Record<string, unknown>, typeof r.headers['idempotency-key'] === 'string' ? r.headers['idempotency-key'] : undefined)],
    ['GET', '/orders/by-order/:orderId', (r) => {
      const o = orders.get(byOrder.get(r.params.orderId!) ?? '');
      if (!o) misses.set(r.params.orderId!, (misses.get(r.params.orderId!) ?? 0) + 1);
      return view(o, `for order ${r.params.orderId}`);
    }],
    ['GET', '/orders/:erpId', (r) => view(orders.get(r.params.erpId!), r.params.erpId!)],
    ['GET', '/_state', () => ({ orders: [...orders.values()] })],
  ], opts.port ?? Number(process.env.ERP_PORT ?? 8084), opts.host ?? process.env.ERP_HOST ?? '127.0.0.1');
  return {
    ...server,
    orders,
    misses,
    createOrder,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await server.close();
    },
  };
}

// ---- the event generator -------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so a generated export is the same for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['iPhone 15 Pro', 'Galaxy S24', 'Pixel 8', 'ThinkPad X1', 'MacBook Air', 'Kindle', 'AirPods Pro', 'Watch Series 9'];
const COLORS = ['Синий', 'Чёрный', 'Белый', 'Титан'];

/** The i-th generated event (1-based), as seed 001 §19 shapes them. */
export function* generateEvents(count: number, skus: number, invalidRate = 0, seed = 1): Generator<Record<string, unknown>> {
  const rand = prng(seed);
  for (let i = 1; i <= count; i++) {
    const n = 1 + Math.floor(rand() * skus);
    const sku = `SKU-${String(n).padStart(7, '0')}`;
    const r = rand();
    const event_id = `evt-${String(i).padStart(9, '0')}`;
    const price = Math.round(1000 + rand() * 150_000);
    const stock = { msk: Math.floor(rand() * 200), spb: Math.floor(rand() * 100) };
    let e: Record<string, unknown>;
    if (r < 0.5) {
      e = { event_id, event: 'product.updated', id: String(n), sku, name: `${NAMES[n % NAMES.length]} ${n}`, price, stock, attributes: { color: COLORS[n % COLORS.length], memory: `${128 * (1 + (n % 4))} ГБ` } };
    } else if (r < 0.8) e = { event_id, event: 'price.changed', sku, price };
    else e = { event_id, event: 'stock.changed', sku, stock };
    if (invalidRate > 0 && rand() < invalidRate) e = { event_id, event: 'price.changed', sku, price: 'free' };
    yield e;
  }
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

async function generate(args: string[]): Promise<void> {
  const count = Number(flag(args, 'events', '100000'));
  const skus = Number(flag(args, 'skus', String(Math.max(1, Math.floor(count / 2)))));
  const format = flag(args, 'format', 'ndjson');
  const csvCell = (v: unknown): string => {
    const s = v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const write = (line: string): Promise<void> | void => {
    if (!process.stdout.write(`${line}\n`)) return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
  };
  if (format === 'csv') await write('event_id,event,sku,name,price,stock.msk,stock.spb');
  for (const e of generateEvents(count, skus, Number(flag(args, 'invalid', '0')), Number(flag(args, 'seed', '1')))) {
    const stock = (e.stock ?? {}) as { msk?: number; spb?: number };
    const line = format === 'csv' ? [e.event_id, e.event, e.sku, e.name, e.price, stock.msk, stock.spb].map(csvCell).join(',') : JSON.stringify(e);
    await write(line);
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === 'generate') {
    generate(args.slice(1)).catch((err: unknown) => {
      console.error((err as Error).message);
      process.exit(1);
    });
  } else runMain('ERP stand-in', () => startErpStandin());
}
