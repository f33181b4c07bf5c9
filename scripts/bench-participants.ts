/**
 * Seeds a database with many requests and their participants, and times the participant
 * searches as `GET /api/requests?participant=<id>` and the scoped search of an actor without
 * `read` run them (`SqlStore.searchRequests({ actors })`).
 *
 *   npx tsx scripts/bench-participants.ts                                 # SQLite, 1M requests
 *   npx tsx scripts/bench-participants.ts --db mysql://root@127.0.0.1:3306/conveyor_bench_people
 *   npx tsx scripts/bench-participants.ts --requests 200000 --runs 50
 *   npx tsx scripts/bench-participants.ts --no-seed                       # time an existing seed again
 *
 * The database is emptied first (a SQLite file is deleted; a MySQL database is dropped and
 * created again), migrated, then filled with multi-row INSERTs. Every request has a customer
 * (of 100,000: about 10 requests each), an executor (of 2,000: about 500 each) and one of 20
 * moderators (about 50,000 each); 1 in 50 waits with a `role:triage` row. Prints one line per
 * query: median and slowest of `--runs` timings, and the rows returned.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import { newId } from '../src/ids';
import { SqlStore } from '../src/store/store';
import type { RequestSearch } from '../src/store/search';

interface Options {
  db: string;
  requests: number;
  runs: number;
  seed: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { db: process.env.DATABASE_URL ?? 'sqlite:./data/bench-participants.db', requests: 1_000_000, runs: 30, seed: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--db') o.db = argv[++i] ?? o.db;
    else if (a === '--requests') o.requests = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--no-seed') o.seed = false;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: tsx scripts/bench-participants.ts [--db URL] [--requests N] [--runs N] [--no-seed]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(o.requests) || o.requests < 1000) throw new Error('--requests must be a whole number >= 1000');
  return o;
}

const CUSTOMERS = 100_000;
const EXECUTORS = 2_000;
const MODERATORS = 20;
const REQ_COLUMNS = 'id, pipeline_id, version, status, business_key, idempotency_key, mode, test, payload, error, joins, step_count, rev, release_at, created_at, updated_at, finished_at';

/** One request's row and its participant rows, deterministic in `i`. */
function rowsOf(i: number, start: number, stepMs: number): { request: unknown[]; people: unknown[][] } {
  const createdAt = start + Math.floor(i * stepMs);
  const id = newId(createdAt);
  const waiting = i % 50 === 0;
  const status = waiting ? 'waiting' : i % 7 === 0 ? 'stopped' : 'completed';
  const customer = `cust-${(i * 7919) % CUSTOMERS}`;
  const executor = `exec-${(i * 104_729) % EXECUTORS}`;
  const moderator = `mod-${i % MODERATORS}`;
  const payload = JSON.stringify({ code: `A-${i}`, customerUser: { id: customer } });
  const request = [id, 'service-order', 1, status, null, null, null, 0, payload, null, '{}', 6, 6, createdAt, createdAt, createdAt, waiting ? null : createdAt + 1000];
  const people = [[id, customer, 'customer', createdAt], [id, executor, 'executor', createdAt], [id, moderator, 'moderator', createdAt]];
  if (waiting) people.push([id, 'role:triage', 'offered', createdAt]);
  return { request, people };
}

async function seed(o: Options): Promise<void> {
  const start = Date.now() - 30 * 86_400_000;
  const span = 30 * 86_400_000;
  const chunk = 500;
  const began = Date.now();
  if (o.db.startsWith('sqlite:')) {
    const file = resolve(o.db.slice('sqlite:'.length));
    const db = new Database(file);
    const insReq = db.prepare(`INSERT INTO requests (${REQ_COLUMNS}) VALUES (${REQ_COLUMNS.split(',').map(() => '?').join(',')})`);
    const insP = db.prepare('INSERT INTO request_participants (request_id, actor_id, role, created_at) VALUES (?, ?, ?, ?)');
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const { request, people } = rowsOf(i, start, span / o.requests);
        insReq.run(request);
        for (const p of people) insP.run(p);
      }
    });
    for (let i = 0; i < o.requests; i += 50_000) batch(i, Math.min(o.requests, i + 50_000));
    db.close();
  } else {
    const conn = await createConnection({ uri: o.db });
    try {
      for (let i = 0; i < o.requests; i += chunk) {
        const reqs: unknown[][] = [];
        const people: unknown[][] = [];
        for (let k = i; k < Math.min(o.requests, i + chunk); k++) {
          const r = rowsOf(k, start, span / o.requests);
          reqs.push(r.request);
          people.push(...r.people);
        }
        await conn.query('START TRANSACTION');
        await conn.query(`INSERT INTO requests (${REQ_COLUMNS}) VALUES ?`, [reqs]);
        await conn.query('INSERT INTO request_participants (request_id, actor_id, role, created_at) VALUES ?', [people]);
        await conn.query('COMMIT');
      }
      await conn.query('ANALYZE TABLE requests, request_participants');
    } finally {
      await conn.end();
    }
  }
  process.stdout.write(`seeded ${o.requests} requests and their participants in ${((Date.now() - began) / 1000).toFixed(1)} s\n`);
}

async function reset(o: Options): Promise<void> {
  if (o.db.startsWith('sqlite:')) {
    const file = resolve(o.db.slice('sqlite:'.length));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    return;
  }
  const url = new URL(o.db);
  const name = url.pathname.slice(1);
  if (!/^conveyor_bench_[a-z0-9_]+$/.test(name)) throw new Error('the MySQL database must be named conveyor_bench_* (it is dropped first)');
  url.pathname = '/';
  const conn = await createConnection({ uri: url.toString() });
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await conn.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await conn.end();
  }
}

async function time(store: SqlStore, label: string, q: RequestSearch, runs: number): Promise<void> {
  const ms: number[] = [];
  let rows = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const page = await store.searchRequests(q);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    rows = page.items.length;
  }
  ms.sort((a, b) => a - b);
  process.stdout.write(`${label.padEnd(64)} median ${ms[Math.floor(ms.length / 2)]!.toFixed(2).padStart(7)} ms   max ${ms[ms.length - 1]!.toFixed(2).padStart(7)} ms   rows ${rows}\n`);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.seed) {
    await reset(o);
    await (await SqlStore.open(o.db)).close();
    await seed(o);
  }
  const store = await SqlStore.open(o.db);
  try {
    const deep = await store.searchRequests({ actors: ['exec-7'], limit: 50 });
    const page2 = deep.next;
    await time(store, 'participant=cust-42 (about 10 requests), first page', { actors: ['cust-42'], limit: 50 }, o.runs);
    await time(store, 'participant=exec-7 (about 500), first page of 50', { actors: ['exec-7'], limit: 50 }, o.runs);
    await time(store, 'participant=exec-7, second page (cursor)', { actors: ['exec-7'], limit: 50, after: page2 }, o.runs);
    await time(store, 'participant=mod-3 (about 50,000), first page of 50', { actors: ['mod-3'], limit: 50 }, o.runs);
    // A filter the index does not cover, that none of a heavy participant's rows pass: the worst case (few runs).
    await time(store, 'participant=mod-3 and status=waiting (none of its 50,000)', { actors: ['mod-3'], status: 'waiting', limit: 50 }, Math.min(o.runs, 3));
    await time(store, 'scoped, no read: actor cust-42 or role:triage (20,000 offered)', { actors: ['cust-42', 'role:triage'], limit: 50 }, o.runs);
    await time(store, 'participant=nobody (no rows)', { actors: ['nobody'], limit: 50 }, o.runs);
    await time(store, 'GET /api/actions of cust-42 with role triage (offered rows)', { actors: ['cust-42', 'role:triage'], offered: true, limit: 50 }, o.runs);
    await time(store, 'GET /api/actions of mod-3 (offered rows: none)', { actors: ['mod-3'], offered: true, limit: 50 }, o.runs);
  } finally {
    await store.close();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
