/**
 * The ERP-scale import measurement (docs/performance.md "At ERP scale"): N generated
 * `product.updated` / `price.changed` / `stock.changed` events go through `erp-catalog-sync`
 * on the embedded default (one `conveyor start` process, SQLite), imported with
 * `conveyor import` as a separate process, against the shop, search and ERP stand-ins (a
 * fourth process).
 *
 *   npx tsx scripts/import-bench.ts --events 100000 [--skus 50000] [--keep]
 *
 * Prints the importer's own summary line (its rate and peak RSS), the engine's peak RSS
 * (VmHWM), how long until every request had ended, and the end states. Everything runs in a
 * temporary directory, removed at the end unless `--keep`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { LAUNCH_FLAGS } from '../src/node-flags';
import { generateEvents } from './erp-standin';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'conveyor.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Peak resident set size of a live process, in MB (Linux `VmHWM`). */
function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

function start(cmd: string[], env: Record<string, string>, label: string): { child: ChildProcess; output: string[] } {
  const child = spawn(process.execPath, cmd, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (c: Buffer): void => {
    output.push(c.toString('utf8'));
    if (output.length > 200) output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`${label} exited with ${code}:\n${output.join('').slice(-3000)}\n`);
  });
  return { child, output };
}

async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const events = Number(arg('events', '100000'));
  const skus = Number(arg('skus', String(Math.floor(events / 2))));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-import-bench-'));
  const file = path.join(dir, `erp-events-${events}.ndjson`);
  const out = fs.createWriteStream(file);
  for (const e of generateEvents(events, skus, 0.001, 1)) {
    if (!out.write(`${JSON.stringify(e)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
  const key = `bench-${randomBytes(8).toString('hex')}`;
  const ports = { api: 39100 + Math.floor(Math.random() * 500), shop: 0, search: 0, erp: 0 };
  ports.shop = ports.api + 1;
  ports.search = ports.api + 2;
  ports.erp = ports.api + 3;
  const env = {
    SHOP_PORT: String(ports.shop), SEARCH_PORT: String(ports.search), ERP_PORT: String(ports.erp),
    SHOP_DATABASE: path.join(dir, 'shop.db'),
    SHOP_BASE_URL: `http://127.0.0.1:${ports.shop}`, SEARCH_BASE_URL: `http://127.0.0.1:${ports.search}`, ERP_BASE_URL: `http://127.0.0.1:${ports.erp}`,
    DATABASE_URL: `sqlite:${path.join(dir, 'conveyor.db')}`, PORT: String(ports.api), HOST: '127.0.0.1',
    CONVEYOR_API_KEYS: `${key}:admin`, LOG_LEVEL: 'warn', REDIS_URL: '',
  };
  const standins = start(['-e', `require('tsx/cjs'); Promise.all([require('./scripts/shop-standin.ts').startShopStandin(), require('./scripts/search-standin.ts').startSearchStandin(), require('./scripts/erp-standin.ts').startErpStandin()]).then(() => console.log('stand-ins up'))`], env, 'stand-ins');
  // `--profile <dir>` writes the engine's CPU profile there (node --cpu-prof).
  const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${arg('profile', dir)}`] : [];
  // With the node flags `npm start` gives it.
  const engine = start([...LAUNCH_FLAGS, ...profile, BIN, 'start'], env, 'engine');
  const children = [standins.child, engine.child];
  const abort = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    await waitFor('the stand-ins', () => standins.output.join('').includes('stand-ins up'), 30_000);
    await waitFor('the engine', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${ports.api}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 60_000);
    const t0 = Date.now();
    let enginePeak = 0;
    const sampler = setInterval(() => (enginePeak = Math.max(enginePeak, peakRssMb(engine.child.pid!))), 500);
    const importer = start([BIN, 'import', file, '--pipeline', 'erp-catalog-sync', '--key', key, '--url', `http://127.0.0.1:${ports.api}`, '--progress', 'lines'], env, 'importer');
    children.push(importer.child);
    const code = await new Promise<number | null>((r) => importer.child.once('exit', (c) => r(c)));
    const imported = Date.now();
    const summaryLine = importer.output.join('').split('\n').find((l) => l.startsWith('imported '));
    // Exit 1 with a summary: some lines were rejected (counted below); without one: the import failed.
    if (code !== 0 && !summaryLine) throw new Error(`the import failed:\n${importer.output.join('').slice(-2000)}\nengine:\n${engine.output.join('').slice(-4000)}`);
    const summary = summaryLine ?? '(no summary)';
    const db = new Database(path.join(dir, 'conveyor.db'), { readonly: true });
    const count = (sql: string): number => Number((db.prepare(sql).get() as { n: number }).n);
    await waitFor('every request to end', () => count("SELECT COUNT(*) AS n FROM requests WHERE status IN ('buffered','running','waiting')") === 0, 30 * 60_000);
    clearInterval(sampler);
    enginePeak = Math.max(enginePeak, peakRssMb(engine.child.pid!));
    const states = db.prepare('SELECT status, COUNT(*) AS n FROM requests GROUP BY status').all() as Array<{ status: string; n: number }>;
    const total = count('SELECT COUNT(*) AS n FROM requests');
    db.close();
    const catalog = (await (await fetch(`http://127.0.0.1:${ports.shop}/catalog/stats`)).json()) as Record<string, number>;
    const done = Date.now();
    console.log(`events            ${events} (${skus} SKUs)`);
    console.log(`importer          ${summary} (exit ${code})`);
    console.log(`accepted in       ${((imported - t0) / 1000).toFixed(1)} s`);
    console.log(`all ended in      ${((done - t0) / 1000).toFixed(1)} s (${Math.round(total / ((done - t0) / 1000))} requests/s end to end)`);
    console.log(`engine peak RSS   ${enginePeak} MB`);
    console.log(`requests          ${total}: ${states.map((s) => `${s.status} ${s.n}`).join(', ')}`);
    console.log(`shop catalog      ${catalog.products} products, ${catalog.notifications} price notices`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(1500);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (!process.argv.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exit(1);
});
