/**
 * `npm run bench:broker`: how fast catalog events reach `erp-catalog-sync` from RabbitMQ,
 * beside the HTTP bulk intake (NDJSON) of the same events.
 *
 * For each size (`--sizes 10000,100000`), on a fresh SQLite file each time, with the real
 * `erp-catalog-sync` (its rate policy releases 400 events/s to the shop, search and
 * notification stand-ins meanwhile) and its AMQP source on a queue of its own:
 *
 * - broker: the ERP stand-in publishes N events (confirmed) to its exchange; timed from the
 *   first publish until N requests are stored (the source acknowledges each after storing);
 * - HTTP bulk: the same N events as `POST …/requests/bulk` of 10,000 lines each, one after
 *   another, with an `Idempotency-Key` prefix; timed until the last line's answer (each line
 *   is answered once stored). `--paths broker` or `--paths http-bulk` runs one side only.
 *   `--curve` prints the time and memory after each bulk request (where a run slows down or
 *   grows; under `node --expose-gc` also the live heap after a full GC).
 *
 * Stored events/s and the process's peak RSS are printed. The source's `maxBuffered` is
 * raised above N for the bench (the pipeline's own 20,000 would pause the source and hold
 * intake to the release rate: that is backpressure working, not intake speed). The engine
 * runs in this process, so the RSS includes the publisher (small: events are generated as
 * they are sent).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyRing } from '../src/api/auth';
import { serve } from '../src/cli/server';
import { Engine } from '../src/engine';
import { createLogger } from '../src/log/logger';
import type { PipelineDef } from '../src/pipeline/types';
import catalogSync from '../pipelines/erp-catalog-sync.pipeline';
import { connectErpBroker } from './erp-broker';
import { generateEvents, startErpStandin } from './erp-standin';
import { startSearchStandin } from './search-standin';
import { startShopStandin } from './shop-standin';

const ROOT = path.resolve(__dirname, '..');
const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};
const BULK_LINES = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Figure {
  path: 'broker' | 'http-bulk';
  n: number;
  ms: number;
  perSec: number;
  peakRssMb: number;
}

/** Samples RSS every 100 ms until stopped; returns the peak in MB. */
function rssSampler(): () => number {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  return () => {
    clearInterval(timer);
    return Math.round(Math.max(peak, process.memoryUsage().rss) / 1_048_576);
  };
}

async function runOnce(kind: Figure['path'], n: number, amqpUrl: string): Promise<Figure> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-broker-bench-'));
  const tag = `bench-${randomBytes(4).toString('hex')}`;
  const names = { exchange: `${tag}.erp`, catalogQueue: `${tag}.erp.catalog`, ordersQueue: `${tag}.erp.orders` };
  const shop = await startShopStandin({ port: 0, host: '127.0.0.1', database: path.join(dir, 'shop.db') });
  const search = await startSearchStandin({ port: 0, host: '127.0.0.1' });
  const erp = await startErpStandin({ port: 0, host: '127.0.0.1' });
  const broker = await connectErpBroker(erp, amqpUrl, names);
  // The real pipeline, with the source's maxBuffered raised above N (see the header).
  const def: PipelineDef = structuredClone(catalogSync as PipelineDef);
  def.sources = (def.sources ?? []).map((s) => ({ ...s, maxBuffered: n + 1 }));
  fs.mkdirSync(path.join(dir, 'pipelines'));
  fs.writeFileSync(path.join(dir, 'pipelines', 'erp-catalog-sync.pipeline.json'), JSON.stringify(def));
  Object.assign(process.env, {
    SHOP_BASE_URL: shop.url, SEARCH_BASE_URL: search.url, ERP_BASE_URL: erp.url, AMQP_URL: amqpUrl,
    ERP_EXCHANGE: names.exchange, ERP_CATALOG_QUEUE: names.catalogQueue,
  });
  const engine = await Engine.create({ databaseUrl: `sqlite:${path.join(dir, 'bench.db')}`, pipelinesDir: path.join(dir, 'pipelines'), modulesDir: path.join(ROOT, 'modules'), cwd: ROOT, logger: createLogger('error') });
  await engine.start();
  const key = `bench-${randomBytes(12).toString('hex')}`;
  const server = await serve(engine, '127.0.0.1', 0, () => undefined, { keys: new KeyRing(engine.store, `${key}:submit+read`) });
  const stored = async (): Promise<number> => Number((await engine.store.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'erp-catalog-sync'"))[0]?.n ?? 0);
  global.gc?.();
  const peak = rssSampler();
  const t0 = Date.now();
  try {
    if (kind === 'broker') {
      await broker.publishCatalog(generateEvents(n, Math.max(1, Math.floor(n / 2)), 0, 3));
      while ((await stored()) < n) await sleep(100);
    } else {
      // Bulk requests of 10,000 lines, one after another (an importer's batches; one request
      // of 100,000 would outlive Node's 5-minute request timeout on a loaded machine).
      const events = generateEvents(n, Math.max(1, Math.floor(n / 2)), 0, 3);
      for (let sent = 0, part = 0; sent < n; part++) {
        const size = Math.min(BULK_LINES, n - sent);
        let lines = '';
        for (let i = 0; i < size; i++) lines += `${JSON.stringify(events.next().value)}\n`;
        const res = await fetch(`${server.url}/api/pipelines/erp-catalog-sync/requests/bulk`, {
          method: 'POST', body: lines,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson', 'idempotency-key': `${tag}-${part}` },
        });
        await res.text();
        sent += size;
        if (process.argv.includes('--curve')) {
          const m = process.memoryUsage();
          const mb = (b: number): number => Math.round(b / 1_048_576);
          global.gc?.(); // with node --expose-gc: the live heap after this request
          const live = global.gc ? `, live after GC ${mb(process.memoryUsage().heapUsed)}` : '';
          out(`    ${String(sent).padStart(8)} lines  ${String(Date.now() - t0).padStart(7)} ms  RSS ${mb(m.rss)} MB (V8 heap ${mb(m.heapUsed)} used of ${mb(m.heapTotal)}${live}, external ${mb(m.external)})`);
        }
      }
      if ((await stored()) < n) throw new Error(`HTTP bulk stored ${await stored()} of ${n}`);
    }
    const ms = Date.now() - t0;
    return { path: kind, n, ms, perSec: Math.round((n * 1000) / ms), peakRssMb: peak() };
  } finally {
    peak();
    await server.close().catch(() => undefined);
    await engine.stop({ deadlineMs: 2000 }).catch(() => undefined);
    await broker.deleteAll().catch(() => undefined);
    await broker.close();
    await Promise.all([shop.close(), search.close(), erp.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = arg('sizes', '10000,100000').split(',').map(Number);
  const paths = arg('paths', 'broker,http-bulk').split(',') as Array<Figure['path']>;
  const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
  out(`broker bench: erp-catalog-sync, events stored per second (Node ${process.version}, ${os.cpus().length} CPUs, SQLite)`);
  const figures: Figure[] = [];
  for (const n of sizes) {
    for (const kind of paths) {
      const f = await runOnce(kind, n, amqpUrl);
      figures.push(f);
      out(`  ${kind.padEnd(9)} ${String(n).padStart(8)} events  ${String(f.ms).padStart(7)} ms  ${String(f.perSec).padStart(6)} events/s  peak RSS ${f.peakRssMb} MB`);
    }
  }
  for (const kind of ['broker', 'http-bulk'] as const) {
    const list = figures.filter((f) => f.path === kind);
    if (list.length < 2) continue;
    const first = list[0]!;
    const last = list.at(-1)!;
    out(`  ${kind}: ${first.n} → ${last.n} events: ${first.perSec} → ${last.perSec} events/s (${Math.round(((last.perSec - first.perSec) / first.perSec) * 100)}%)`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:broker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
