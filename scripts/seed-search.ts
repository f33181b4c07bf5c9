/**
 * Seeds a database with about a million step rows and times the search queries on it, as
 * `GET /api/requests` and `GET /api/steps` run them (through `SqlStore`).
 *
 *   npx tsx scripts/seed-search.ts                                    # SQLite, ./data/seed-search.db
 *   npx tsx scripts/seed-search.ts --db mysql://root@127.0.0.1:3306/conveyor_seed
 *   npx tsx scripts/seed-search.ts --steps 200000 --runs 50 --explain
 *   npx tsx scripts/seed-search.ts --db … --no-seed                   # time an existing seed again
 *
 * The database is emptied first (a SQLite file is deleted; a MySQL database is dropped and
 * created again), then filled through the migrations and multi-row INSERTs. The data is
 * shaped like production: four pipelines of unequal size, 4-6 steps a request, about 3% of
 * attempts failed and retried, 0.5% of requests in error_stop, 1% test requests, and a
 * month of history. Prints one line per query: median and slowest of `--runs` timings.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createConnection, createPool, type Pool } from 'mysql2/promise';
import { newId } from '../src/ids';
import { SqlStore } from '../src/store/store';

interface Options {
  db: string;
  steps: number;
  runs: number;
  seed: boolean;
  explain: boolean;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { db: process.env.DATABASE_URL ?? 'sqlite:./data/seed-search.db', steps: 1_000_000, runs: 30, seed: true, explain: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--db') o.db = argv[++i] ?? o.db;
    else if (a === '--steps') o.steps = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--no-seed') o.seed = false;
    else if (a === '--explain') o.explain = true;
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: tsx scripts/seed-search.ts [--db URL] [--steps N] [--runs N] [--no-seed] [--explain] [--json]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(o.steps) || o.steps < 1000) throw new Error('--steps must be a whole number >= 1000');
  return o;
}

// --- data ---------------------------------------------------------------------------------

const PIPELINES = [
  { id: 'bitrix-lead', share: 0.5, steps: ['bitrix-find-contact', 'get-bitrix-deal', 'get-bitrix-deal-by-id', 'remember-deal', 'bitrix-update-lead'], transport: ['event', 'event', 'http', 'event', 'event'] },
  { id: 'erp-sync', share: 0.25, steps: ['fetch-product', 'map-fields', 'push-price', 'push-stock', 'notify-cms', 'archive'], transport: ['queue', 'event', 'http', 'http', 'queue', 'engine'] },
  { id: 'hello', share: 0.2, steps: ['greet', 'log-greeting', 'done'], transport: ['event', 'event', 'engine'] },
  { id: 'notify', share: 0.05, steps: ['render', 'send-email', 'send-sms', 'record'], transport: ['event', 'http', 'http', 'event'] },
];

/** A small deterministic PRNG, so two seeds of the same size hold the same data. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REQUEST_COLUMNS = ['id', 'pipeline_id', 'version', 'status', 'business_key', 'idempotency_key', 'mode', 'test', 'payload', 'error', 'joins', 'step_count', 'rev', 'release_at', 'created_at', 'updated_at', 'finished_at'];
const RUN_COLUMNS = ['id', 'request_id', 'pipeline_id', 'step_id', 'seq', 'attempt', 'status', 'kind', 'module', 'transport', 'params', 'output', 'error', 'caused_by', 'available_at', 'lease_until', 'started_at', 'finished_at', 'duration_ms'];

/** Generates requests and their step runs in time order, in batches, until `total` runs. */
function* generate(total: number, batchRuns: number): Generator<{ requests: unknown[][]; runs: unknown[][] }> {
  const rand = prng(42);
  const span = 30 * 24 * 3600 * 1000;
  const approxRequests = Math.ceil(total / 4.8);
  const start = Date.now() - span;
  let made = 0;
  let n = 0;
  let requests: unknown[][] = [];
  let runs: unknown[][] = [];
  while (made < total) {
    const created = start + Math.floor((n / approxRequests) * span);
    n++;
    let pick = rand();
    const p = PIPELINES.find((x) => (pick -= x.share) < 0) ?? PIPELINES[0]!;
    const requestId = newId(created);
    const recent = created > Date.now() - 60_000;
    const errorStop = rand() < 0.005;
    const test = rand() < 0.01;
    let t = created + 1;
    let seq = 0;
    let status = 'completed';
    let error: unknown = null;
    let prev: string | null = null;
    for (let i = 0; i < p.steps.length && made < total; i++) {
      const stepId = p.steps[i]!;
      const transport = p.transport[i]!;
      const last = i === p.steps.length - 1;
      const failures = errorStop && last ? 3 : rand() < 0.03 ? 1 : 0;
      for (let attempt = 1; attempt <= failures + 1 && made < total; attempt++) {
        const failed = attempt <= failures;
        const open = recent && last && !failed;
        const runId = newId(t);
        const duration = 2 + Math.floor(rand() * (transport === 'http' ? 300 : 20));
        const runStatus = failed ? 'failed' : open ? 'dispatched' : 'completed';
        runs.push([
          runId, requestId, p.id, stepId, ++seq, attempt, runStatus, transport === 'engine' ? 'setData' : 'module', transport === 'engine' ? null : stepId, transport,
          JSON.stringify({ email: `user${n % 50_000}@example.com`, token: '[REDACTED]' }),
          failed || open ? null : JSON.stringify({ ok: true, value: n % 97 }),
          failed ? JSON.stringify({ code: 'CONVEYOR_ERR_HTTP_STATUS', message: 'the module answered 503', retryable: true }) : null,
          prev, null, open ? t + 60_000 : null, t, open ? null : t + duration, open ? null : duration,
        ]);
        made++;
        prev = runId;
        t += duration + (failed ? 1000 : 1);
        if (failed && attempt === 3) {
          status = 'error_stop';
          error = { stepId, runId, attempt, code: 'CONVEYOR_ERR_HTTP_STATUS', message: 'the module answered 503' };
        }
        if (open) status = 'running';
      }
    }
    if (status === 'completed' && recent && rand() < 0.2) status = 'waiting';
    const finished = status === 'completed' || status === 'error_stop' ? t : null;
    requests.push([
      requestId, p.id, 1, status, `cust-${n % 50_000}`, null, null, test ? 1 : 0,
      JSON.stringify({ email: `user${n % 50_000}@example.com`, name: 'Someone' }), error === null ? null : JSON.stringify(error), '{}',
      seq, seq * 2, created, created, t, finished,
    ]);
    if (runs.length >= batchRuns) {
      yield { requests, runs };
      requests = [];
      runs = [];
    }
  }
  if (runs.length > 0 || requests.length > 0) yield { requests, runs };
}

// --- writers ------------------------------------------------------------------------------

function insertSql(table: string, columns: string[], rows: number): string {
  const tuple = `(${columns.map(() => '?').join(',')})`;
  return `INSERT INTO ${table} (${columns.join(',')}) VALUES ${new Array(rows).fill(tuple).join(',')}`;
}

async function seedSqlite(path: string, total: number): Promise<void> {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const CHUNK = 500;
  const stmts = new Map<string, Database.Statement>();
  const insert = (table: string, columns: string[], rows: unknown[][]): void => {
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      const sql = insertSql(table, columns, chunk.length);
      let stmt = stmts.get(sql);
      if (!stmt) stmts.set(sql, (stmt = db.prepare(sql)));
      stmt.run(...chunk.flat());
    }
  };
  const tx = db.transaction((b: { requests: unknown[][]; runs: unknown[][] }) => {
    insert('requests', REQUEST_COLUMNS, b.requests);
    insert('step_runs', RUN_COLUMNS, b.runs);
  });
  for (const batch of generate(total, 50_000)) tx(batch);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

async function seedMysql(pool: Pool, total: number): Promise<void> {
  const CHUNK = 1000;
  const insert = async (table: string, columns: string[], rows: unknown[][]): Promise<void> => {
    const chunks: unknown[][][] = [];
    for (let i = 0; i < rows.length; i += CHUNK) chunks.push(rows.slice(i, i + CHUNK));
    // Two connections at a time: InnoDB takes concurrent inserts well on two cores.
    for (let i = 0; i < chunks.length; i += 2) {
      await Promise.all(chunks.slice(i, i + 2).map((c) => pool.query(insertSql(table, columns, c.length), c.flat())));
    }
  };
  for (const batch of generate(total, 50_000)) {
    await insert('requests', REQUEST_COLUMNS, batch.requests);
    await insert('step_runs', RUN_COLUMNS, batch.runs);
  }
}

/** Empties the target: deletes the SQLite file, or drops and recreates the MySQL database. */
async function reset(url: string): Promise<void> {
  if (url.startsWith('sqlite:')) {
    const path = resolve(url.slice('sqlite:'.length));
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    return;
  }
  const u = new URL(url.replace(/^mariadb:/, 'mysql:'));
  const dbName = u.pathname.slice(1);
  if (!/^[A-Za-z0-9_]+$/.test(dbName)) throw new Error(`unexpected database name "${dbName}"`);
  u.pathname = '/';
  const conn = await createConnection(u.toString());
  await conn.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
  await conn.query(`CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await conn.end();
}

// --- timing -------------------------------------------------------------------------------

interface Case {
  name: string;
  run: (store: SqlStore) => Promise<unknown>;
  /** The SQL as the search runs it, for `--explain`. */
  explain?: string;
}

async function cases(store: SqlStore): Promise<Case[]> {
  // A cursor in the middle of the history, to time a deep page as well as the first one.
  const [mid] = await store.query<{ t: unknown; id: string }>(
    "SELECT created_at AS t, id FROM requests WHERE pipeline_id = 'bitrix-lead' ORDER BY created_at LIMIT 1 OFFSET 50000",
  );
  const [midRun] = await store.query<{ t: unknown; id: string }>('SELECT started_at AS t, id FROM step_runs ORDER BY started_at LIMIT 1 OFFSET 400000');
  const [latest] = await store.query<{ t: unknown }>('SELECT MAX(created_at) AS t FROM requests');
  const now = Number(latest?.t ?? Date.now());
  const day = 24 * 3600 * 1000;
  const after = mid ? { t: Number(mid.t), id: String(mid.id) } : undefined;
  const afterRun = midRun ? { t: Number(midRun.t), id: String(midRun.id) } : undefined;
  const firstPage = await store.searchRequests({ pipeline: 'bitrix-lead', limit: 50 });
  const L = 50;
  return [
    { name: 'requests: newest 50', run: (s) => s.searchRequests({ limit: L }) },
    { name: 'requests: pipeline', run: (s) => s.searchRequests({ pipeline: 'bitrix-lead', limit: L }) },
    { name: 'requests: pipeline, page 2', run: (s) => s.searchRequests({ pipeline: 'bitrix-lead', limit: L, after: firstPage.next }) },
    { name: 'requests: pipeline, deep page', run: (s) => s.searchRequests({ pipeline: 'bitrix-lead', limit: L, after }) },
    { name: 'requests: status=error_stop', run: (s) => s.searchRequests({ status: 'error_stop', limit: L }) },
    { name: 'requests: pipeline + status=completed', run: (s) => s.searchRequests({ pipeline: 'hello', status: 'completed', limit: L }) },
    { name: 'requests: rare pipeline + error_stop', run: (s) => s.searchRequests({ pipeline: 'notify', status: 'error_stop', limit: L }) },
    { name: 'requests: businessKey', run: (s) => s.searchRequests({ businessKey: 'cust-12345', limit: L }) },
    { name: 'requests: test=1', run: (s) => s.searchRequests({ test: true, limit: L }) },
    { name: 'requests: one-day window', run: (s) => s.searchRequests({ since: now - 15 * day, until: now - 14 * day, limit: L }) },
    { name: 'requests: pipeline + window + test', run: (s) => s.searchRequests({ pipeline: 'erp-sync', test: true, since: now - 10 * day, until: now - 5 * day, limit: L }) },
    { name: 'requests: limit 500', run: (s) => s.searchRequests({ limit: 500 }) },
    { name: 'steps: newest 50', run: (s) => s.searchSteps({ limit: L }) },
    { name: 'steps: pipeline', run: (s) => s.searchSteps({ pipeline: 'erp-sync', limit: L }) },
    { name: 'steps: pipeline + step', run: (s) => s.searchSteps({ pipeline: 'bitrix-lead', step: 'get-bitrix-deal', limit: L }) },
    { name: 'steps: status=failed', run: (s) => s.searchSteps({ status: 'failed', limit: L }) },
    { name: 'steps: pipeline + status=failed', run: (s) => s.searchSteps({ pipeline: 'hello', status: 'failed', limit: L }) },
    { name: 'steps: pipeline + step + status=failed', run: (s) => s.searchSteps({ pipeline: 'bitrix-lead', step: 'get-bitrix-deal', status: 'failed', limit: L }) },
    { name: 'steps: rare step + status=failed', run: (s) => s.searchSteps({ pipeline: 'notify', step: 'send-sms', status: 'failed', limit: L }) },
    { name: 'steps: one-hour window', run: (s) => s.searchSteps({ since: now - 15 * day, until: now - 15 * day + 3_600_000, limit: L }) },
    { name: 'steps: deep page', run: (s) => s.searchSteps({ limit: L, after: afterRun }) },
    { name: 'steps: limit 500', run: (s) => s.searchSteps({ limit: 500 }) },
    { name: 'steps: a step that never ran', run: (s) => s.searchSteps({ pipeline: 'bitrix-lead', step: 'no-such-step', limit: L }) },
    { name: 'metrics: open requests by pipeline+status', run: (s) => s.countRequestsByStatus(['buffered', 'running', 'waiting', 'error_stop']) },
  ];
}

async function time(c: Case, store: SqlStore, runs: number): Promise<{ median: number; max: number }> {
  for (let i = 0; i < 2; i++) await c.run(store);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await c.run(store);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, max: ms[ms.length - 1]! };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  if (o.seed) {
    await reset(o.db);
    const init = await SqlStore.open(o.db);
    await init.close();
    const t0 = Date.now();
    if (o.db.startsWith('sqlite:')) await seedSqlite(resolve(o.db.slice('sqlite:'.length)), o.steps);
    else {
      const pool = createPool({ uri: o.db.replace(/^mariadb:/, 'mysql:'), connectionLimit: 2, charset: 'utf8mb4' });
      try {
        await seedMysql(pool, o.steps);
        await pool.query('ANALYZE TABLE requests, step_runs');
      } finally {
        await pool.end();
      }
    }
    const s = (Date.now() - t0) / 1000;
    log(`seeded ${o.steps.toLocaleString('en')} step rows in ${s.toFixed(1)} s (${Math.round(o.steps / s).toLocaleString('en')} rows/s)`);
  }
  const store = await SqlStore.open(o.db);
  try {
    const [counts] = await store.query<{ r: unknown; s: unknown }>('SELECT (SELECT COUNT(*) FROM requests) AS r, (SELECT COUNT(*) FROM step_runs) AS s');
    log(`${store.dialect}: ${Number(counts?.r).toLocaleString('en')} requests, ${Number(counts?.s).toLocaleString('en')} step rows; ${o.runs} runs per query`);
    const results: Array<{ name: string; median: number; max: number; rows: number }> = [];
    for (const c of await cases(store)) {
      const r = await time(c, store, o.runs);
      const out = (await c.run(store)) as { items?: unknown[] } | unknown[];
      const rows = Array.isArray(out) ? out.length : (out.items?.length ?? 0);
      results.push({ name: c.name, ...r, rows });
      if (!o.json) process.stdout.write(`${c.name.padEnd(42)} ${r.median.toFixed(2).padStart(8)} ms median ${r.max.toFixed(2).padStart(8)} ms max  (${rows} rows)\n`);
    }
    if (o.json) process.stdout.write(`${JSON.stringify({ dialect: store.dialect, results }, null, 2)}\n`);
    if (o.explain) await explain(store);
    const slow = results.filter((r) => r.median >= 50);
    if (slow.length > 0) {
      log(`over 50 ms: ${slow.map((r) => r.name).join(', ')}`);
      process.exitCode = 1;
    }
  } finally {
    await store.close();
  }
}

/** Prints the plans of the main query shapes (which index each uses). */
async function explain(store: SqlStore): Promise<void> {
  const shapes: Array<[string, string, unknown[]]> = [
    ['requests by pipeline', "SELECT * FROM requests WHERE pipeline_id = ? ORDER BY created_at DESC, id DESC LIMIT 51", ['bitrix-lead']],
    ['requests by status', "SELECT * FROM requests WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT 51", ['error_stop']],
    ['requests by pipeline+status', 'SELECT * FROM requests WHERE pipeline_id = ? AND status = ? ORDER BY created_at DESC, id DESC LIMIT 51', ['hello', 'completed']],
    ['requests by test', 'SELECT * FROM requests WHERE test = ? ORDER BY created_at DESC, id DESC LIMIT 51', [1]],
    ['steps by pipeline+step', 'SELECT * FROM step_runs WHERE pipeline_id = ? AND step_id = ? ORDER BY started_at DESC, id DESC LIMIT 51', ['bitrix-lead', 'get-bitrix-deal']],
    ['steps by pipeline+step+status', 'SELECT * FROM step_runs WHERE pipeline_id = ? AND step_id = ? AND status = ? ORDER BY started_at DESC, id DESC LIMIT 51', ['bitrix-lead', 'get-bitrix-deal', 'failed']],
    ['steps by status', 'SELECT * FROM step_runs WHERE status = ? ORDER BY started_at DESC, id DESC LIMIT 51', ['failed']],
  ];
  for (const [name, sql, params] of shapes) {
    const plan = await store.query(store.dialect === 'sqlite' ? `EXPLAIN QUERY PLAN ${sql}` : `EXPLAIN ${sql}`, params);
    process.stdout.write(`\n${name}:\n${plan.map((r) => `  ${JSON.stringify(r)}`).join('\n')}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`seed-search: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
