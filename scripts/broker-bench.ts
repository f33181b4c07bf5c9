/**
 * `npm run bench:broker`: how fast catalog events reach `erp-catalog-sync` from RabbitMQ,
 * beside the HTTP bulk intake (NDJSON) of the same events.
 *
 * For each size (`--sizes 10000,100000,1000000`), on a fresh SQLite file each time, the real
 * `erp-catalog-sync` runs in an engine process of its own (`conveyor start`, as a user runs
 * it), with its AMQP source on a queue of its own; its rate policy releases 400 events/s to
 * the shop, search and notification stand-ins meanwhile. The stand-ins, the publisher and the
 * HTTP client run in this process, so the engine's peak RSS (`VmHWM`) is the engine's alone.
 *
 * - broker: the ERP stand-in publishes N events (confirmed) to its exchange before the engine
 *   starts (an ERP export waiting in the queue; publishing a million messages keeps RabbitMQ
 *   busy, which is the broker's work, not the engine's); timed from the first request stored
 *   until N are (the source acknowledges each message after storing it);
 * - HTTP bulk: the same N events as `POST …/requests/bulk` of 10,000 lines each, one after
 *   another, with an `Idempotency-Key` prefix; timed until the last line's answer (each line
 *   is answered once stored). `--paths broker` or `--paths http-bulk` runs one side only.
 *
 * Before the clock starts, `--warm` events (2,000) go through the same path, untimed.
 * `--runs 3,3,1` runs each size that many times (one number: every size) and reports the
 * median: a 10,000 run lasts about a second, and single ones spread by a third.
 *
 * `--curve` prints, along each run, the events stored, the rate over the last tenth and the
 * engine's RSS at each tenth of N (where a run slows down or grows). `--profile DIR` writes the
 * engine's CPU profile there (`node --cpu-prof`); `--sql-time` prints the engine's SQLite time by
 * statement (`scripts/bench/sql-time.cjs`). `--json FILE` writes each size's figures (the
 * medians) there; `npm run bench -- --all` reads them. The engine starts with the node flags
 * `npm start` gives it (`LAUNCH_FLAGS`, `src/node-flags.ts`; `--v8-defaults`: without them).
 * The source's `maxBuffered` is raised above N for the bench (the pipeline's own 20,000 would
 * pause the source and hold intake to the release rate: that is backpressure working, not
 * intake speed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { LAUNCH_FLAGS } from '../src/node-flags';
import type { PipelineDef } from '../src/pipeline/types';
import catalogSync from '../pipelines/erp-catalog-sync.pipeline';
import { freePort } from '../test/support/ports';
import { connectErpBroker } from './erp-broker';
import { generateEvents, startErpStandin } from './erp-standin';
import { startSearchStandin } from './search-standin';
import { startShopStandin } from './shop-standin';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'conveyor.js');
const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};
const BULK_LINES = 10_000;
/**
 * Events stored before the clock starts, through the same path (`--warm`): V8 compiles the
 * engine's hot path over the first thousands, which a running engine has long done. Without
 * it a 10,000 run is mostly its warm-up (its first tenth ran at half the rate of its last).
 */
const WARM = Number(arg('warm', '2000'));
/** The bench's events: N after `WARM`, about two per SKU. */
const eventsFor = (n: number): Generator<Record<string, unknown>> => generateEvents(WARM + n, Math.max(1, Math.floor((WARM + n) / 2)), 0, 3);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Figure {
  path: 'broker' | 'http-bulk';
  n: number;
  ms: number;
  perSec: number;
  /** The engine process's peak RSS (VmHWM). */
  peakRssMb: number;
  /** The engine's CPU time per event over the timed part (user + system), in µs. */
  cpuUsPerEvent: number;
  /** The RabbitMQ server's CPU time per event (broker path, when its process is on this machine). */
  brokerCpuUsPerEvent?: number;
}

/** A live process's resident set (`VmRSS`) and its peak (`VmHWM`), in MB. */
function rssOf(pid: number): { rss: number; peak: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

/** A live process's I/O counters (`/proc/<pid>/io`): read and write syscalls, bytes written. */
function ioOf(pid: number): { syscr: number; syscw: number; wchar: number } {
  try {
    const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
    const v = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(io)?.[1] ?? 0);
    return { syscr: v('syscr'), syscw: v('syscw'), wchar: v('wchar') };
  } catch {
    return { syscr: 0, syscw: 0, wchar: 0 };
  }
}

/** CPU seconds a live process has used (user + system, `/proc/<pid>/stat`). */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: clock ticks of 1/100 s
  } catch {
    return 0;
  }
}

/** The local RabbitMQ server's process (Erlang `beam.smp`), if it runs on this machine. */
function rabbitPid(): number | undefined {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('rabbit')) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** `conveyor start` on the given environment; resolves once `/healthz` answers. */
async function startEngine(env: Record<string, string>, apiUrl: string, spawned: (child: ChildProcess) => void): Promise<void> {
  const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(arg('profile', '.'))}`] : [];
  const sqlTime = env.CONVEYOR_SQL_TIME_FILE ? ['--require', path.join(ROOT, 'scripts', 'bench', 'sql-time.cjs')] : [];
  // Started as `npm start` starts it: with its node flags.
  const nodeFlags = process.argv.includes('--v8-defaults') ? [] : LAUNCH_FLAGS;
  const child = spawn(process.execPath, [...nodeFlags, ...profile, ...sqlTime, BIN, 'start'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned(child);
  const output: string[] = [];
  const keep = (c: Buffer): void => {
    output.push(c.toString('utf8'));
    if (output.length > 100) output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const tail = (): string => output.join('').slice(-3000);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the engine exited with ${child.exitCode}:\n${tail()}`);
    if (Date.now() > deadline) throw new Error(`the engine did not answer /healthz within 60 s:\n${tail()}`);
    try {
      if ((await fetch(`${apiUrl}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
}

/** Stops the engine as an operator would (SIGTERM, then SIGKILL after 10 s). */
async function stopEngine(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** What a run must undo if the bench is interrupted (Ctrl-C): its engine, queues and files. */
let interrupted: (() => Promise<void>) | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (interrupted?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function runOnce(kind: Figure['path'], n: number, amqpUrl: string): Promise<Figure> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-broker-bench-'));
  const tag = `bench-${randomBytes(4).toString('hex')}`;
  const names = { exchange: `${tag}.erp`, catalogQueue: `${tag}.erp.catalog`, ordersQueue: `${tag}.erp.orders` };
  const shop = await startShopStandin({ port: 0, host: '127.0.0.1', database: path.join(dir, 'shop.db') });
  const search = await startSearchStandin({ port: 0, host: '127.0.0.1' });
  const erp = await startErpStandin({ port: 0, host: '127.0.0.1' });
  const broker = await connectErpBroker(erp, amqpUrl, names);
  const engine: { child?: ChildProcess } = {};
  const sqlTimeFile = process.argv.includes('--sql-time') ? path.join(dir, 'sql-time.json') : undefined;
  const cleanup = async (): Promise<void> => {
    interrupted = undefined;
    if (engine.child) await stopEngine(engine.child);
    if (sqlTimeFile && fs.existsSync(sqlTimeFile)) printSqlTime(sqlTimeFile, WARM + n);
    await broker.deleteAll().catch(() => undefined);
    await broker.close();
    await Promise.all([shop.close(), search.close(), erp.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  interrupted = cleanup;
  try {
    // The real pipeline, with the source's maxBuffered raised above N (see the header).
    const def: PipelineDef = structuredClone(catalogSync as PipelineDef);
    def.sources = (def.sources ?? []).map((s) => ({ ...s, maxBuffered: WARM + n + 1 }));
    fs.mkdirSync(path.join(dir, 'pipelines'));
    fs.writeFileSync(path.join(dir, 'pipelines', 'erp-catalog-sync.pipeline.json'), JSON.stringify(def));
    if (kind === 'broker') {
      const p0 = Date.now();
      await broker.publishCatalog(eventsFor(n));
      out(`    published ${WARM} + ${n} events to RabbitMQ in ${Date.now() - p0} ms (before the engine starts; not timed)`);
    }
    const key = `bench-${randomBytes(12).toString('hex')}`;
    const port = await freePort();
    const apiUrl = `http://127.0.0.1:${port}`;
    const dbFile = path.join(dir, 'bench.db');
    await startEngine({
      DATABASE_URL: `sqlite:${dbFile}`, CONVEYOR_PIPELINES_DIR: path.join(dir, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(ROOT, 'modules'),
      PORT: String(port), HOST: '127.0.0.1', CONVEYOR_API_KEYS: `${key}:submit+read`, LOG_LEVEL: 'error', REDIS_URL: '',
      SHOP_BASE_URL: shop.url, SEARCH_BASE_URL: search.url, ERP_BASE_URL: erp.url, AMQP_URL: amqpUrl,
      ERP_EXCHANGE: names.exchange, ERP_CATALOG_QUEUE: names.catalogQueue, ...(sqlTimeFile ? { CONVEYOR_SQL_TIME_FILE: sqlTimeFile } : {}),
    }, apiUrl, (child) => (engine.child = child));
    return await measure(kind, n, { pid: engine.child!.pid!, dbFile, apiUrl, key, tag });
  } finally {
    await cleanup();
  }
}

/** The engine's SQLite time by statement (`--sql-time`), the costliest first, per event stored. */
function printSqlTime(file: string, events: number): void {
  const rows = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{ sql: string; calls: number; ms: number; reads?: number; written?: number }>;
  const total = rows.reduce((a, r) => a + r.ms, 0);
  out(`    engine SQLite time by statement (${Math.round(total)} ms in all, ${Math.round((total * 1000) / events)} µs per event stored):`);
  for (const r of rows.slice(0, 12)) {
    const io = r.reads === undefined ? '' : `  ${(r.reads / events).toFixed(2).padStart(6)} reads/event  ${((r.written ?? 0) / 1024 / events).toFixed(1).padStart(5)} KiB/event`;
    out(`      ${((r.ms * 100) / total).toFixed(1).padStart(5)}%  ${(r.calls / events).toFixed(2).padStart(6)} calls/event  ${String(Math.round((r.ms * 1000) / r.calls)).padStart(6)} µs/call${io}  ${r.sql.slice(0, 110)}`);
  }
}

/** Times one run against a started engine: until N requests are stored. */
async function measure(kind: Figure['path'], n: number, e: { pid: number; dbFile: string; apiUrl: string; key: string; tag: string }): Promise<Figure> {
  // Progress is read from the engine's database file (WAL: a reader never blocks the engine).
  // The requests table is insert-only during a run, so its largest rowid is its row count; the
  // final figure is an exact COUNT(*).
  const db = new Database(e.dbFile, { readonly: true, fileMustExist: true });
  const stored = (): number => Number((db.prepare('SELECT MAX(rowid) AS n FROM requests').get() as { n: number | null }).n ?? 0);
  // What the timed part stored: the warm-up's events come first.
  const timed = (): number => Math.max(0, stored() - WARM);
  const curve = process.argv.includes('--curve') ? progressCurve(n, e.pid, timed) : undefined;
  let enginePeak = 0;
  const sampler = setInterval(() => (enginePeak = Math.max(enginePeak, rssOf(e.pid).peak)), 500);
  let t0 = Date.now();
  let cpu0 = cpuSecondsOf(e.pid);
  const rabbit = kind === 'broker' ? rabbitPid() : undefined;
  let rabbit0 = 0;
  try {
    if (kind === 'broker') {
      while (stored() < WARM) await sleep(5);
      t0 = Date.now();
      cpu0 = cpuSecondsOf(e.pid);
      rabbit0 = rabbit ? cpuSecondsOf(rabbit) : 0;
      curve?.start(t0);
      while (timed() < n) await sleep(100);
    } else {
      // Bulk requests of 10,000 lines, one after another (an importer's batches; one request
      // of 100,000 would outlive Node's 5-minute request timeout on a loaded machine). The
      // warm-up's lines go first, in requests of their own, before the clock starts.
      const events = eventsFor(n);
      for (let sent = -WARM, part = 0; sent < n; part++) {
        if (sent === 0) {
          t0 = Date.now();
          cpu0 = cpuSecondsOf(e.pid);
          curve?.start(t0);
        }
        const size = sent < 0 ? Math.min(BULK_LINES, -sent) : Math.min(BULK_LINES, n - sent);
        let lines = '';
        for (let i = 0; i < size; i++) lines += `${JSON.stringify(events.next().value)}\n`;
        const res = await fetch(`${e.apiUrl}/api/pipelines/erp-catalog-sync/requests/bulk`, {
          method: 'POST', body: lines,
          headers: { authorization: `Bearer ${e.key}`, 'content-type': 'application/x-ndjson', 'idempotency-key': `${e.tag}-${part}` },
        });
        await res.text();
        sent += size;
      }
    }
    const ms = Date.now() - t0;
    const cpuUsPerEvent = Math.round(((cpuSecondsOf(e.pid) - cpu0) * 1e6) / n);
    const brokerCpuUsPerEvent = rabbit ? Math.round(((cpuSecondsOf(rabbit) - rabbit0) * 1e6) / n) : undefined;
    const exact = Number((db.prepare("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'erp-catalog-sync'").get() as { n: number }).n);
    if (exact !== WARM + n) throw new Error(`${kind} stored ${exact} requests for ${WARM} + ${n} events`);
    enginePeak = Math.max(enginePeak, rssOf(e.pid).peak);
    return { path: kind, n, ms, perSec: Math.round((n * 1000) / ms), peakRssMb: enginePeak, cpuUsPerEvent, brokerCpuUsPerEvent };
  } finally {
    clearInterval(sampler);
    curve?.stop();
    db.close();
  }
}

/** `--curve`: a line at each tenth of N stored: time, rate over that tenth, engine RSS. */
function progressCurve(n: number, pid: number, stored: () => number): { start(t0: number): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    start(t0) {
      let next = 1;
      let last = { t: t0, count: 0, cpu: cpuSecondsOf(pid), io: ioOf(pid) };
      timer = setInterval(() => {
        const count = stored();
        if (next > 10 || count < (n * next) / 10) return;
        // One line per sample, however many tenths it crossed (a quick stretch may cross two).
        let crossed = 0;
        while (next <= 10 && count >= (n * next) / 10) {
          next++;
          crossed++;
        }
        const now = Date.now();
        const d = Math.max(1, count - last.count);
        const rate = Math.round((d * 1000) / Math.max(1, now - last.t));
        const m = rssOf(pid);
        const cpu = cpuSecondsOf(pid);
        const io = ioOf(pid);
        // Per event since the last line: the engine's CPU, and its read and write syscalls and
        // bytes written (SQLite reads a page missing from its cache with one pread; WAL frames
        // and checkpoints are its writes). They include the pipeline's own steps, which run at
        // the release rate: a run that stores more slowly has more of them per event stored.
        const per = (a: number, b: number, k = 1): string => ((a - b) / d / k).toFixed(1);
        out(`    ${String(count).padStart(8)} stored  ${String(now - t0).padStart(8)} ms  ${String(rate).padStart(6)} events/s over the last ${crossed === 1 ? 'tenth ' : `${crossed} tenths`}  engine RSS ${m.rss} MB (peak ${m.peak})  per event: CPU ${Math.round(((cpu - last.cpu) * 1e6) / d)} µs, ${per(io.syscr, last.io.syscr)} reads, ${per(io.syscw, last.io.syscw)} writes, ${per(io.wchar, last.io.wchar, 1024)} KiB written`);
        last = { t: now, count, cpu, io };
      }, 250);
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * `--runs`: how many runs of each size, one number for all or one per size (`3,3,1`); each
 * figure is then the median run by events/s, interleaving the paths.
 */
export function runsPerSize(spec: string, sizes: number[]): number[] {
  const list = spec.split(',').map((v) => Number(v.trim()));
  if (list.some((v) => !Number.isInteger(v) || v < 1) || (list.length !== 1 && list.length !== sizes.length)) {
    throw new Error(`--runs must be one whole number of 1 or more, or one per size (${sizes.length}), got "${spec}"`);
  }
  return sizes.map((_, i) => list[list.length === 1 ? 0 : i]!);
}

async function main(): Promise<void> {
  const sizes = arg('sizes', '10000,100000').split(',').map(Number);
  const paths = arg('paths', 'broker,http-bulk').split(',') as Array<Figure['path']>;
  const runs = runsPerSize(arg('runs', '1'), sizes);
  const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
  out(`broker bench: erp-catalog-sync, events stored per second, engine in its own process (Node ${process.version}, ${os.cpus().length} CPUs, SQLite; ${WARM} events through the same path first, untimed)`);
  const line = (f: Figure, tag = ''): string =>
    `  ${f.path.padEnd(9)} ${String(f.n).padStart(8)} events  ${String(f.ms).padStart(7)} ms  ${String(f.perSec).padStart(6)} events/s  engine peak RSS ${f.peakRssMb} MB  engine CPU ${f.cpuUsPerEvent} µs/event${f.brokerCpuUsPerEvent !== undefined ? `  RabbitMQ CPU ${f.brokerCpuUsPerEvent} µs/event` : ''}${tag}`;
  const figures: Figure[] = [];
  for (const [i, n] of sizes.entries()) {
    const seen = new Map<Figure['path'], Figure[]>(paths.map((k) => [k, []]));
    for (let r = 0; r < runs[i]!; r++) {
      for (const kind of paths) {
        const f = await runOnce(kind, n, amqpUrl);
        seen.get(kind)!.push(f);
        out(line(f, runs[i]! > 1 ? `  (run ${r + 1} of ${runs[i]})` : ''));
      }
    }
    for (const kind of paths) {
      const list = seen.get(kind)!;
      const median = [...list].sort((a, b) => a.perSec - b.perSec)[Math.floor((list.length - 1) / 2)]!;
      // The peak RSS is the largest of the runs, not the median's.
      const f = { ...median, peakRssMb: Math.max(...list.map((x) => x.peakRssMb)) };
      figures.push(f);
      if (list.length > 1) out(line(f, `  median of ${list.length} (${list.map((x) => x.perSec).join(', ')} events/s; peak RSS the largest)`));
    }
  }
  const json = arg('json', '');
  if (json) fs.writeFileSync(json, JSON.stringify(figures, null, 2));
  for (const kind of ['broker', 'http-bulk'] as const) {
    const list = figures.filter((f) => f.path === kind);
    if (list.length < 2) continue;
    const first = list[0]!;
    const last = list.at(-1)!;
    const change = Math.round(((last.perSec - first.perSec) / first.perSec) * 100);
    const peak = Math.max(...list.map((f) => f.peakRssMb));
    out(`  ${kind}: ${first.n} → ${last.n} events: ${first.perSec} → ${last.perSec} events/s (${change}%; target: no decline beyond 20%, ${change >= -20 ? 'met' : 'missed'}); engine peak RSS ${peak} MB (target ≤ 500 MB, ${peak <= 500 ? 'met' : 'missed'})`);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench:broker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
