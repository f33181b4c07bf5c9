/**
 * `npm run bench`: Conveyor's throughput and latency, side by side with a plain bull chain
 * and the raw SQLite / MariaDB transaction rates, measured in the same run on this machine.
 *
 *   npm run bench                        5,000 requests per scenario, medians of 3 runs
 *   npm run bench -- --runs 5            more runs
 *   npm run bench -- --large             also 100,000 requests (embedded and distributed), and distributed
 *                                        with a second engine process on the same database and Redis
 *   npm run bench -- --http              also submit through the HTTP API
 *   npm run bench -- --quick             a small smoke run (500 requests, 1 run)
 *   npm run bench -- --json out.json     also write every figure as JSON
 *   npm run bench -- --only embedded     only scenarios whose name contains the text
 *   npm run bench -- --no-distributed    skip MariaDB + Redis (and the bull baseline)
 *   npm run bench -- --profile DIR       write a --cpu-prof profile of every child to DIR
 *   npm run bench -- --v8-defaults       children without the node flags of `npm start`
 *                                        (V8's default young generation), to compare
 *   npm run bench -- --scale             the scale curve instead: 10k, 100k and 1,000,000
 *                                        requests through 3 steps, embedded (minutes)
 *   npm run bench -- --all               every target of the performance issue from one run:
 *                                        the scenarios with --large, then the scale curve, then
 *                                        erp-catalog-sync at 10k and 100k events (bench:broker)
 *                                        (about 20 minutes on 2 cores)
 *
 * Every child starts node with the flags `npm start` gives it (its young generation,
 * `LAUNCH_FLAGS` in `src/node-flags.ts`); the bull chain and the raw databases get the same
 * flags, so no side has an edge.
 *
 * Every scenario runs in a child process of its own, so its peak RSS is its own and one
 * scenario's garbage does not slow the next. Runs are interleaved (run 1 of everything, then
 * run 2, …), so a noisy moment hurts one run of each rather than all runs of one; the
 * ratios are computed within each run, then their median is taken.
 *
 * Services: MariaDB from BENCH_MYSQL_URL (else TEST_MYSQL_URL, else mysql://root@127.0.0.1:3306),
 * Redis from BENCH_REDIS_URL (else TEST_REDIS_URL, else redis://127.0.0.1:6379). The bench
 * makes its own databases (conveyor_bench_*) and bull prefixes (cbench-*), and removes them.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { LAUNCH_FLAGS } from '../../src/node-flags';
import { median, RESULT_MARKER, WARMUP_TEXT, type DbWorkFigures, type EngineSpec, type Result, type Spec } from './common';

const ROOT = path.resolve(__dirname, '..', '..');
const CHILD = path.join(__dirname, 'child.ts');
const TMP = path.join(ROOT, '.tmp', 'bench');
/** A child that takes longer than this is stopped (and the run reported as failed). */
const CHILD_TIMEOUT_MS = 15 * 60_000;

interface Args {
  runs: number;
  json?: string;
  quick: boolean;
  large: boolean;
  http: boolean;
  scale: boolean;
  all: boolean;
  distributed: boolean;
  only?: string;
  profile?: string;
  /** The node flags every child starts with: those of `npm start`, unless `--v8-defaults`. */
  nodeFlags: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 3, quick: false, large: false, http: false, scale: false, all: false, distributed: true, nodeFlags: [...LAUNCH_FLAGS] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--runs') a.runs = Math.max(1, Number(value()) || 1);
    else if (arg === '--json') a.json = value();
    else if (arg === '--quick') a.quick = true;
    else if (arg === '--large') a.large = true;
    else if (arg === '--http') a.http = true;
    else if (arg === '--scale') a.scale = true;
    else if (arg === '--all') a.all = a.large = true;
    else if (arg === '--no-distributed') a.distributed = false;
    else if (arg === '--only') a.only = value();
    else if (arg === '--profile') a.profile = path.resolve(value());
    else if (arg === '--v8-defaults') a.nodeFlags = [];
    else if (arg === '--help' || arg === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (see --help)`);
  }
  if (a.quick && !argv.includes('--runs')) a.runs = 1;
  return a;
}

const mysqlUrl = (): string => process.env.BENCH_MYSQL_URL || process.env.TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306';
const redisUrl = (): string => process.env.BENCH_REDIS_URL || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

async function servicesUp(): Promise<string | undefined> {
  try {
    const u = new URL(mysqlUrl());
    u.pathname = '/';
    const c = await createConnection({ uri: u.toString(), connectTimeout: 3000 });
    await c.query('SELECT 1');
    await c.end();
  } catch (err) {
    return `MariaDB at ${mysqlUrl()}: ${(err as Error).message}`;
  }
  const r = new Redis(redisUrl(), { maxRetriesPerRequest: 1, connectTimeout: 3000, lazyConnect: true });
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    return `Redis at ${redisUrl()}: ${(err as Error).message}`;
  } finally {
    r.disconnect();
  }
  return undefined;
}

/** The scenarios and baselines of one run, in the order they run. */
function plan(a: Args): Spec[] {
  const n = a.quick ? 500 : 5000;
  const seq = a.quick ? 50 : 200;
  const seconds = a.quick ? 1 : 2;
  const specs: Spec[] = [];
  const engine = (name: string, o: Partial<EngineSpec>): EngineSpec => ({
    kind: 'engine', name, mode: 'embedded', pipeline: 'bench-linear', requests: n, sequential: seq, tmpDir: TMP,
    ...(o.mode === 'distributed' ? { mysqlUrl: mysqlUrl(), redisUrl: redisUrl() } : {}),
    ...o,
  });
  specs.push({ kind: 'sqlite-raw', name: 'raw SQLite tx (NORMAL)', sync: 'NORMAL', seconds, tmpDir: TMP });
  specs.push({ kind: 'sqlite-raw', name: 'raw SQLite tx (FULL)', sync: 'FULL', seconds, tmpDir: TMP });
  if (a.distributed) {
    specs.push({ kind: 'bull-chain', name: 'bull chain (5 jobs)', requests: n, sequential: seq, steps: 5, concurrency: 50, redisUrl: redisUrl() });
    specs.push({ kind: 'mysql-raw', name: 'raw MariaDB tx', seconds, mysqlUrl: mysqlUrl() });
  }
  specs.push(engine(`embedded linear ${n}`, {}));
  specs.push(engine(`embedded conditions ${n}`, { pipeline: 'bench-cond' }));
  specs.push(engine(`embedded linear ${n} FULL`, { sync: 'FULL' }));
  if (a.http) specs.push(engine(`embedded linear ${n} via HTTP`, { http: true }));
  if (a.distributed) {
    specs.push(engine(`distributed linear ${n}`, { mode: 'distributed' }));
    specs.push(engine(`distributed conditions ${n}`, { mode: 'distributed', pipeline: 'bench-cond' }));
  }
  if (a.large) {
    specs.push(engine('embedded linear 100000', { requests: 100_000, sequential: 0 }));
    // The same with a heap limit, as docs/operations.md recommends for a memory-bounded host.
    specs.push(engine(`embedded linear 100000 ${HEAP_LIMIT_FLAG}`, { requests: 100_000, sequential: 0, nodeArgs: [HEAP_LIMIT_FLAG] }));
    if (a.distributed) specs.push(engine('distributed linear 100000', { mode: 'distributed', requests: 100_000, sequential: 0 }));
    // Two engine processes on the same database and Redis (on this machine: what scaling out costs).
    if (a.distributed) specs.push(engine(`distributed linear ${n}, 2 engines`, { mode: 'distributed', engines: 2 }));
  }
  return specs.filter((s) => !a.only || s.name.includes(a.only));
}

/** Runs one spec in a child process; resolves with its result, or undefined if it failed. */
function runChild(spec: Spec, a: Args): Promise<Result | undefined> {
  const nodeArgs = [...a.nodeFlags, '--require', require.resolve('tsx/cjs'), ...(spec.kind === 'engine' ? (spec.nodeArgs ?? []) : [])];
  if (a.profile) {
    fs.mkdirSync(a.profile, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', a.profile, '--cpu-prof-name', `${spec.name.replace(/[^a-z0-9]+/gi, '-')}-${Date.now()}.cpuprofile`);
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, CHILD, JSON.stringify(spec)], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (code !== 0 || !line) {
        console.error(`  ! ${spec.name} failed (exit ${code})\n${(err || out).trim().split('\n').slice(-15).map((l) => `    ${l}`).join('\n')}`);
        resolve(undefined);
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as Result);
    });
  });
}

// ---- reporting ---------------------------------------------------------------------------------

const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The scenario column: wide enough for the longest name. */
const nameWidth = (rows: Array<{ name: string }>): number => Math.max(34, ...rows.map((r) => r.name.length));

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

export interface Row {
  name: string;
  kind: Spec['kind'];
  runs: Result[];
  m: Record<string, number>;
  ratios: Record<string, number>;
}

/** The raw transaction baseline each engine scenario is compared with. */
function rawFor(spec: EngineSpec): string {
  if (spec?.mode === 'distributed') return 'raw MariaDB tx';
  return spec?.sync === 'FULL' ? 'raw SQLite tx (FULL)' : 'raw SQLite tx (NORMAL)';
}

export function summarise(specs: Spec[], runs: Array<Map<string, Result>>): Row[] {
  const keys = ['reqPerS', 'stepsPerS', 'p50Ms', 'p99Ms', 'seqP50Ms', 'seqP99Ms', 'peakRssMb', 'txPerS', 'itemsPerBatch', 'cpuUsPerRequest'] as const;
  return specs.map((spec) => {
    const results = runs.map((r) => r.get(spec.name)).filter((r): r is Result => r !== undefined);
    const m: Record<string, number> = {};
    for (const k of keys) m[k] = median(results.map((r) => r[k] ?? NaN));
    const ratios: Record<string, number> = {};
    if (spec.kind === 'engine') {
      const bull: number[] = [];
      const raw: number[] = [];
      for (const run of runs) {
        const r = run.get(spec.name);
        if (!r) continue;
        const b = run.get('bull chain (5 jobs)');
        if (b?.reqPerS && r.reqPerS) bull.push(r.reqPerS / b.reqPerS);
        const t = run.get(rawFor(spec));
        if (t?.txPerS && r.stepsPerS) raw.push(r.stepsPerS / t.txPerS);
      }
      ratios.bull = median(bull);
      ratios.raw = median(raw);
    }
    return { name: spec.name, kind: spec.kind, runs: results, m, ratios };
  });
}

function printTable(rows: Row[]): void {
  const head = ['scenario', 'req/s', 'steps/s', 'p50 ms', 'p99 ms', '1-in-flight p50', 'p99', 'peak RSS MB', '× bull', 'steps/raw tx', 'ok'];
  const widths = [nameWidth(rows), 8, 9, 8, 8, 15, 7, 11, 7, 12, 4];
  console.log(pad(head, widths));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) {
    if (r.kind === 'sqlite-raw' || r.kind === 'mysql-raw') {
      console.log(pad([r.name, '', '', '', '', '', '', fmt(r.m.peakRssMb), '', `${fmt(r.m.txPerS)} tx/s`, r.runs.length ? '' : 'FAIL'], widths));
      continue;
    }
    const ok = r.runs.length === 0 ? 'FAIL' : r.kind === 'engine' ? (r.runs.every((x) => x.verified?.ok) ? 'yes' : 'NO') : '';
    console.log(pad([
      r.name, fmt(r.m.reqPerS), fmt(r.m.stepsPerS), fmt(r.m.p50Ms), fmt(r.m.p99Ms), fmt(r.m.seqP50Ms, 2), fmt(r.m.seqP99Ms, 2),
      fmt(r.m.peakRssMb), r.kind === 'engine' ? `${fmt(r.ratios.bull, 2)}×` : '', r.kind === 'engine' ? `${fmt(r.ratios.raw, 2)}×` : '', ok,
    ], widths));
  }
  console.log('\n`ok`: every request completed and every step run was committed exactly once, counted in the database afterwards.');
  console.log('`steps/raw tx`: step results committed per second ÷ single-insert transactions per second on the same database.');
}

/** Database work per step, medians over the runs: the batch, and one request in flight. */
function printWork(rows: Row[]): void {
  const engines = rows.filter((r) => r.kind === 'engine' && r.runs.some((x) => x.work));
  if (engines.length === 0) return;
  console.log('\nDatabase work per step (statements, rows written, KiB and pages written; `scripts/bench/db-work.ts` says how each is counted)');
  const head = ['scenario', 'stmts', 'rows', 'KiB', 'pages', '1-in-flight stmts', 'rows', 'KiB', 'pages'];
  const widths = [nameWidth(rows), 6, 5, 6, 6, 17, 5, 6, 6];
  console.log(pad(head, widths));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of engines) {
    const m = (get: (x: Result) => number | undefined): number => median(r.runs.map((x) => get(x) ?? NaN));
    const b = (k: keyof DbWorkFigures) => m((x) => x.work?.batch[k]);
    const q = (k: keyof DbWorkFigures) => m((x) => x.work?.sequential?.[k]);
    const cells = (f: (k: keyof DbWorkFigures) => number) => [fmt(f('statements'), 1), fmt(f('rowsWritten'), 1), fmt(f('kib'), 1), fmt(f('pages'), 1)];
    console.log(pad([r.name, ...cells(b), ...cells(q)], widths));
  }
  console.log('SQLite: bytes the process wrote (WAL frames and checkpoint copies), pages = bytes ÷ 4,120. MariaDB: Handler_write/update/delete rows (a bulk batch\'s request rows are upserts, which count their insert attempt too: one more a step than the rows written), Questions, redo log bytes; server-wide.');
}

export interface Target {
  what: string;
  measured: string;
  met: boolean | undefined;
  note?: string;
}

/** The heap limit of the bounded-memory scenario (docs/operations.md "Memory"). */
const HEAP_LIMIT_FLAG = '--max-old-space-size=384';

/** The targets as the run measured them; `nodeFlags`: the flags every child started with (in the memory targets' names). */
export function targets(rows: Row[], nodeFlags: readonly string[] = LAUNCH_FLAGS): Target[] {
  const find = (prefix: string): Row | undefined => rows.find((r) => r.name.startsWith(prefix) && r.runs.length > 0);
  const out: Target[] = [];
  const emb = find('embedded linear');
  if (emb) {
    const x = emb.ratios.bull;
    out.push({ what: 'embedded ≥ 10× the bull chain (req/s)', measured: `${fmt(x, 2)}×`, met: Number.isFinite(x) ? x >= 10 : undefined, note: Number.isFinite(x) && x < 10 ? `short by ${fmt(10 / x, 1)}×` : undefined });
    const p = emb.m.seqP50Ms;
    out.push({ what: 'embedded, 1 in flight, 5 steps: p50 ≤ 1 ms', measured: `${fmt(p, 2)} ms`, met: Number.isFinite(p) ? p <= 1 : undefined, note: p > 1 ? `${fmt(p / 1, 1)}× the target` : undefined });
  }
  const dist = find('distributed linear');
  if (dist) {
    const x = dist.ratios.bull;
    const durable = dist.runs.every((r) => r.verified?.ok);
    out.push({ what: 'MariaDB + Redis ≥ 1.5× the bull chain, every step committed in MySQL', measured: `${fmt(x, 2)}×, verified: ${durable ? 'yes' : 'NO'}`, met: Number.isFinite(x) ? x >= 1.5 && durable : undefined, note: Number.isFinite(x) && x < 1.5 ? `short by ${fmt(1.5 / x, 2)}×` : undefined });
  }
  for (const r of [emb, dist]) {
    if (!r?.runs.some((x) => x.work)) continue;
    const m = (get: (x: Result) => number | undefined): number => median(r.runs.map((x) => get(x) ?? NaN));
    const perStep = m((x) => x.work?.batch.rowsWritten);
    // SQLite counts pages written; MariaDB's rows are its handler writes, and it has no page count here.
    const pages = (phase: 'batch' | 'sequential'): string => (r === emb ? `, ${fmt(m((x) => x.work?.[phase]?.pages), 1)} pages` : '');
    // An upsert that updates counts its insert attempt too (`db-work.ts`).
    const rowsWord = r === emb ? 'rows' : 'handler writes';
    out.push({
      what: `${r.name}: one row written per step attempt (database work per step)`,
      measured: `${fmt(perStep, 1)} ${rowsWord}, ${fmt(m((x) => x.work?.batch.statements), 1)} statements, ${fmt(m((x) => x.work?.batch.kib), 1)} KiB${pages('batch')}` +
        `; 1 in flight: ${fmt(m((x) => x.work?.sequential?.rowsWritten), 1)} ${rowsWord}, ${fmt(m((x) => x.work?.sequential?.statements), 1)} statements${pages('sequential')}`,
      met: Number.isFinite(perStep) ? perStep <= 1.05 : undefined,
      note: perStep > 1.05 ? `${fmt(perStep, 1)}× the target` : undefined,
    });
  }
  for (const big of rows.filter((r) => r.name.startsWith('embedded linear 100000') && r.runs.length > 0)) {
    const rss = big.m.peakRssMb;
    const flags = [...nodeFlags, ...(big.name.includes(HEAP_LIMIT_FLAG) ? [HEAP_LIMIT_FLAG] : [])];
    const how = flags.length > 0 ? `node ${flags.join(' ')}` : 'default Node flags';
    out.push({ what: `100,000 submitted at once (${how}): peak RSS ≤ 500 MB`, measured: `${fmt(rss)} MB`, met: Number.isFinite(rss) ? rss <= 500 : undefined, note: rss > 500 ? `${fmt(rss - 500)} MB over` : undefined });
  }
  return out;
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cores: cpus.length, cpu: cpus[0]?.model, memGb: Math.round(os.totalmem() / 2 ** 30), node: process.version,
    platform: `${os.platform()} ${os.release()}`, loadAvgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

// ---- the scale curve ---------------------------------------------------------------------------

async function scale(a: Args): Promise<Target[]> {
  const window = 4000;
  const sizes = a.quick ? [10_000, 50_000] : [10_000, 100_000, 1_000_000];
  console.log(`Scale curve: embedded (SQLite WAL, NORMAL), 3-step pipeline, at most ${window} requests in flight.`);
  const results: Result[] = [];
  for (const requests of sizes) {
    const spec: EngineSpec = {
      kind: 'engine', name: `scale ${requests}`, mode: 'embedded', pipeline: 'bench-three', requests, sequential: 0, window,
      sampleEvery: Math.max(1000, requests / 20), tmpDir: TMP,
    };
    process.stdout.write(`  ${spec.name} … `);
    const r = await runChild(spec, a);
    if (!r) continue;
    results.push(r);
    console.log(`${fmt(r.reqPerS)} req/s, ${fmt(r.seconds, 1)} s, peak RSS ${fmt(r.peakRssMb)} MB, verified: ${r.verified?.ok ? 'yes' : 'NO'}`);
  }
  const small = results.find((r) => r.requests === sizes[0]);
  const big = results.find((r) => r.requests === sizes[sizes.length - 1]);
  if (big?.samples) {
    console.log(`\n  ${big.name}: throughput and memory as it went`);
    console.log(`  ${'done'.padStart(9)}  ${'t s'.padStart(6)}  ${'req/s'.padStart(7)}  ${'RSS MB'.padStart(7)}  ${'heap MB'.padStart(7)}`);
    for (const s of big.samples) console.log(`  ${fmt(s.done).padStart(9)}  ${fmt(s.t, 1).padStart(6)}  ${fmt(s.rate).padStart(7)}  ${fmt(s.rssMb).padStart(7)}  ${fmt(s.heapMb).padStart(7)}`);
  }
  const checks: Target[] = [];
  if (small && big) {
    const ratio = (big.reqPerS ?? 0) / (small.reqPerS ?? 1);
    const half = big.samples ? Math.floor(big.samples.length / 2) : 0;
    const rssFirst = big.samples ? Math.max(...big.samples.slice(0, half).map((s) => s.rssMb)) : NaN;
    const rssLast = big.samples ? Math.max(...big.samples.slice(half).map((s) => s.rssMb)) : NaN;
    checks.push({ what: `${fmt(big.requests)} completed, every step committed once`, measured: big.verified?.ok ? 'yes' : 'NO', met: big.verified?.ok });
    checks.push({ what: `throughput at ${fmt(big.requests)} ≥ 80% of at ${fmt(small.requests)}`, measured: `${fmt(ratio * 100)}%`, met: ratio >= 0.8 });
    checks.push({ what: 'memory flat (peak RSS, second half ≤ 1.2× first half)', measured: `${fmt(rssFirst)} → ${fmt(rssLast)} MB`, met: rssLast <= rssFirst * 1.2 });
    checks.push({ what: 'done within 5 minutes', measured: `${fmt(big.seconds, 1)} s`, met: (big.seconds ?? Infinity) <= 300 });
    checks.push({ what: 'peak RSS ≤ 500 MB', measured: `${fmt(big.peakRssMb)} MB`, met: big.peakRssMb <= 500 });
  }
  printTargets(checks);
  if (a.json && !a.all) {
    fs.writeFileSync(a.json, JSON.stringify({ kind: 'scale', machine: machine(), window, results, checks }, null, 2));
    console.log(`\nWrote ${a.json}`);
  }
  return checks.map((c) => ({ ...c, what: `scale, 3 steps: ${c.what}` }));
}

// ---- erp-catalog-sync at ERP scale (bench:broker) --------------------------------------------

/** The allowed decline of events stored per second from 10,000 to 100,000 catalog events (the performance issue). */
const ERP_DECLINE = 0.1;

/**
 * `erp-catalog-sync` with its stand-ins at 10,000 and 100,000 events, through the RabbitMQ
 * source and the HTTP bulk intake (`scripts/broker-bench.ts`, whose output is shown as it
 * goes); 10,000 is the median of 3 runs.
 */
async function erp(a: Args): Promise<Target[]> {
  const sizes = a.quick ? [2000, 10_000] : [10_000, 100_000];
  const file = path.join(TMP, `erp-${Date.now()}.json`);
  console.log(`\nerp-catalog-sync (the ERP example) at ${sizes.map((n) => fmt(n)).join(' and ')} events: npm run bench:broker`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'scripts', 'broker-bench.ts'), '--sizes', sizes.join(','), '--runs', a.quick ? '1' : '3,1', '--json', file, ...(a.nodeFlags.length === 0 ? ['--v8-defaults'] : [])], {
      cwd: ROOT, env: process.env, stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('close', resolve);
  });
  if (code !== 0 || !fs.existsSync(file)) return [{ what: 'erp-catalog-sync: bench:broker ran', measured: `exit ${code}`, met: false }];
  const figures = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{ path: string; n: number; perSec: number; peakRssMb: number }>;
  fs.rmSync(file, { force: true });
  const out: Target[] = [];
  for (const kind of ['broker', 'http-bulk']) {
    const small = figures.find((f) => f.path === kind && f.n === sizes[0]);
    const big = figures.find((f) => f.path === kind && f.n === sizes[1]);
    if (!small || !big) continue;
    const change = (big.perSec - small.perSec) / small.perSec;
    out.push({
      what: `erp-catalog-sync, ${kind === 'broker' ? 'RabbitMQ source' : 'HTTP bulk'}: events stored per second, ${fmt(sizes[0])} → ${fmt(sizes[1])} events, no decline beyond ${fmt(ERP_DECLINE * 100)}%`,
      measured: `${fmt(small.perSec)} → ${fmt(big.perSec)} events/s (${change >= 0 ? '+' : ''}${fmt(change * 100)}%), engine peak RSS ${fmt(big.peakRssMb)} MB`,
      met: change >= -ERP_DECLINE,
      note: change < -ERP_DECLINE ? `${fmt((-change - ERP_DECLINE) * 100)} points beyond` : undefined,
    });
  }
  return out;
}

function printTargets(list: Target[]): void {
  if (list.length === 0) return;
  console.log('\nTargets');
  for (const t of list) {
    const mark = t.met === undefined ? '  ?  ' : t.met ? ' met ' : 'MISSED';
    console.log(`  [${mark}] ${t.what}: ${t.measured}${t.note ? ` (${t.note})` : ''}`);
  }
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  fs.mkdirSync(TMP, { recursive: true });
  const m = machine();
  console.log(`Conveyor bench — ${m.cores} cores (${String(m.cpu)}), ${String(m.memGb)} GB, Node ${String(m.node)}, load average ${(m.loadAvgAtStart as number[]).join(' ')}`);
  console.log(`(${WARMUP_TEXT})`);
  console.log(`Every child starts node with ${a.nodeFlags.length > 0 ? `${a.nodeFlags.join(' ')} (those of npm start)` : 'no flags (--v8-defaults)'}.`);
  if (a.distributed) {
    const down = await servicesUp();
    if (down) {
      console.log(`! ${down}: skipping the distributed scenarios and the bull baseline (start them with \`bash scripts/services.sh\`, or pass --no-distributed).`);
      a.distributed = false;
    }
  }
  if (a.scale) {
    await scale(a);
    return;
  }

  const specs = plan(a);
  const runs: Array<Map<string, Result>> = [];
  const started = Date.now();
  for (let run = 1; run <= a.runs; run++) {
    console.log(`\nRun ${run} of ${a.runs}`);
    const results = new Map<string, Result>();
    for (const spec of specs) {
      process.stdout.write(`  ${spec.name.padEnd(34)} `);
      const r = await runChild(spec, a);
      if (r) {
        results.set(spec.name, r);
        console.log(r.txPerS !== undefined ? `${fmt(r.txPerS)} tx/s` : `${fmt(r.reqPerS)} req/s, 1-in-flight p50 ${fmt(r.seqP50Ms, 2)} ms${r.verified && !r.verified.ok ? ' — VERIFY FAILED' : ''}`);
      }
    }
    runs.push(results);
  }
  const rows = summarise(specs, runs);
  console.log(`\nMedians of ${a.runs} run(s), ${((Date.now() - started) / 1000).toFixed(0)} s in all. Load average now: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  printTable(rows);
  printWork(rows);
  const t = targets(rows, a.nodeFlags);
  printTargets(t);
  if (a.all) {
    console.log('');
    t.push(...(await scale(a)), ...(await erp(a)));
    console.log(`\n==== Every target, this run (${((Date.now() - started) / 60_000).toFixed(0)} min in all) ====`);
    printTargets(t);
    const missed = t.filter((x) => x.met === false).length;
    console.log(`\n${t.length - missed} of ${t.length} targets met, ${missed} missed.`);
  }
  if (a.json) {
    fs.writeFileSync(a.json, JSON.stringify({ kind: 'bench', machine: m, args: a, medians: rows.map(({ runs: _runs, ...r }) => r), targets: t, runs: runs.map((r) => Object.fromEntries(r)) }, null, 2));
    console.log(`\nWrote ${a.json}`);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
