/**
 * The baselines the engine is compared with, in the same run on the same machine:
 * - a plain bull chain: each step a bull job on Redis whose handler enqueues the next step;
 * - the raw SQLite transaction rate: one small insert per transaction (WAL, NORMAL or FULL);
 * - the raw MariaDB transaction rate: one small insert per autocommit transaction.
 */
import Database from 'better-sqlite3';
import Queue from 'bull';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { latencyStats, peakRssMb, WARMUP, type BaselineSpec, type Result } from './common';

interface ChainJob {
  i: number;
  step: number;
  input: unknown;
}

export async function runBullChain(spec: Extract<BaselineSpec, { kind: 'bull-chain' }>): Promise<Result> {
  const prefix = `cbench-bull-${randomBytes(5).toString('hex')}`;
  const q = new Queue<ChainJob>('chain', spec.redisUrl, {
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
  });
  const ends = new Map<number, () => void>();
  // Each step does the same trivial work as the engine's module, then enqueues the next step.
  void q.process(spec.concurrency, async (job) => {
    const { i, step } = job.data;
    const output = { n: step };
    if (step < spec.steps) await q.add({ i, step: step + 1, input: output });
  });
  q.on('completed', (job: Queue.Job<ChainJob>) => {
    if (job.data.step !== spec.steps) return;
    const end = ends.get(job.data.i);
    if (end) {
      ends.delete(job.data.i);
      end();
    }
  });
  const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };
  let nextId = 0;
  const chain = async (): Promise<number> => {
    const i = nextId++;
    const t0 = performance.now();
    const finished = new Promise<void>((resolve) => ends.set(i, resolve));
    await q.add({ i, step: 1, input: payload });
    await finished;
    return performance.now() - t0;
  };
  try {
    await q.isReady();
    await Promise.all(Array.from({ length: Math.min(WARMUP.concurrent, spec.requests) }, () => chain()));
    for (let k = 0; spec.sequential > 0 && k < WARMUP.oneAtATime; k++) await chain();
    const seq: number[] = [];
    for (let k = 0; k < spec.sequential; k++) seq.push(await chain());
    const t0 = performance.now();
    const lat = await Promise.all(Array.from({ length: spec.requests }, () => chain()));
    const seconds = (performance.now() - t0) / 1000;
    const l = latencyStats(lat);
    const s = latencyStats(seq);
    return {
      name: spec.name, kind: 'bull-chain', requests: spec.requests, stepsPerRequest: spec.steps, seconds,
      reqPerS: spec.requests / seconds, stepsPerS: (spec.requests * spec.steps) / seconds,
      p50Ms: l.p50, p99Ms: l.p99, seqP50Ms: s.p50, seqP99Ms: s.p99, peakRssMb: peakRssMb(),
    };
  } finally {
    await q.close();
    const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: 2 });
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
}

export function runSqliteRaw(spec: Extract<BaselineSpec, { kind: 'sqlite-raw' }>): Result {
  fs.mkdirSync(spec.tmpDir, { recursive: true });
  const file = path.join(spec.tmpDir, `bench-raw-${randomBytes(5).toString('hex')}.db`);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${spec.sync}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, body TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO t (request_id, body) VALUES (?, ?)');
    const body = JSON.stringify({ n: 1, status: 'completed' });
    for (let i = 0; i < 1000; i++) insert.run(`warm-${i}`, body);
    let n = 0;
    const t0 = performance.now();
    const until = t0 + spec.seconds * 1000;
    // Autocommit: every insert is its own transaction.
    while (performance.now() < until) {
      for (let k = 0; k < 100; k++) insert.run(`r-${n++}`, body);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { name: spec.name, kind: 'sqlite-raw', seconds, txPerS: n / seconds, peakRssMb: peakRssMb() };
  } finally {
    db.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  }
}

export async function runMysqlRaw(spec: Extract<BaselineSpec, { kind: 'mysql-raw' }>): Promise<Result> {
  const name = `conveyor_bench_raw_${randomBytes(5).toString('hex')}`;
  const base = new URL(spec.mysqlUrl);
  base.pathname = '/';
  const admin = await createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE \`${name}\``);
  const db = new URL(base.toString());
  db.pathname = `/${name}`;
  const c = await createConnection({ uri: db.toString() });
  try {
    await c.query('CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, request_id VARCHAR(36) NOT NULL, body TEXT NOT NULL) ENGINE=InnoDB');
    const body = JSON.stringify({ n: 1, status: 'completed' });
    for (let i = 0; i < 200; i++) await c.execute('INSERT INTO t (request_id, body) VALUES (?, ?)', [`warm-${i}`, body]);
    let n = 0;
    const t0 = performance.now();
    const until = t0 + spec.seconds * 1000;
    while (performance.now() < until) await c.execute('INSERT INTO t (request_id, body) VALUES (?, ?)', [`r-${n++}`, body]);
    const seconds = (performance.now() - t0) / 1000;
    return { name: spec.name, kind: 'mysql-raw', seconds, txPerS: n / seconds, peakRssMb: peakRssMb() };
  } finally {
    await c.end();
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
}
