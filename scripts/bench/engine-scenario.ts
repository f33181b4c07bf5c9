/**
 * One engine scenario: opens a fresh store (a new SQLite file, or a new MariaDB database with
 * its own bull prefix on Redis), warms up, runs requests one at a time for the 1-in-flight
 * latency, then submits the batch and measures until every request has ended. Finally it
 * checks in the database that every request completed with every step committed once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { KeyRing } from '../../src/api/auth';
import { serve, type RunningServer } from '../../src/cli/server';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';
import { LAUNCH_FLAGS } from '../../src/node-flags';
import { mysqlMeter, sqliteMeter } from './db-work';
import { latencyStats, mb, peakRssMb, WARMUP, type EngineSpec, type Result, type ScaleSample } from './common';

const FIXTURES = path.join(__dirname, 'fixtures');
const STEPS: Record<EngineSpec['pipeline'], number> = { 'bench-linear': 5, 'bench-cond': 5, 'bench-three': 3 };
const API_KEY = 'bench-key-0123456789';

/** A place to run: its database URL and Redis prefix, and how to remove them afterwards. */
interface Sandbox {
  databaseUrl: string;
  redisUrl?: string;
  queuePrefix?: string;
  cleanup(): Promise<void>;
}

async function sandbox(spec: EngineSpec): Promise<Sandbox> {
  const tag = randomBytes(5).toString('hex');
  if (spec.mode === 'embedded') {
    fs.mkdirSync(spec.tmpDir, { recursive: true });
    const file = path.join(spec.tmpDir, `bench-${tag}.db`);
    return {
      databaseUrl: `sqlite:${file}`,
      cleanup: async () => {
        for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
      },
    };
  }
  if (!spec.mysqlUrl || !spec.redisUrl) throw new Error('the distributed scenario needs a MariaDB and a Redis URL');
  const name = `conveyor_bench_${tag}`;
  const base = new URL(spec.mysqlUrl);
  base.pathname = '/';
  const admin = await createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  const db = new URL(base.toString());
  db.pathname = `/${name}`;
  const prefix = `cbench-${tag}`;
  const redisUrl = spec.redisUrl;
  return {
    databaseUrl: db.toString(),
    redisUrl,
    queuePrefix: prefix,
    cleanup: async () => {
      const c = await createConnection({ uri: base.toString() });
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

/** Submits over HTTP with a keep-alive agent; resolves with the request id. */
function httpSubmitter(url: string, pipeline: string): (payload: Record<string, unknown>) => Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(`/api/pipelines/${pipeline}/requests`, url);
  return (payload) => new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const req = http.request(target, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${API_KEY}` },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 202) reject(new Error(`submit answered ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve((JSON.parse(text) as { id: string }).id);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function runEngineScenario(spec: EngineSpec): Promise<Result> {
  const box = await sandbox(spec);
  const steps = STEPS[spec.pipeline];
  let engine: Engine | undefined;
  let server: RunningServer | undefined;
  let helpers: Helpers | undefined;
  try {
    engine = await Engine.create({
      databaseUrl: box.databaseUrl,
      redisUrl: box.redisUrl,
      queuePrefix: box.queuePrefix,
      queueModules: spec.mode === 'distributed' ? ['bench-qstep'] : [],
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      modulesDir: path.join(FIXTURES, 'modules'),
      sqliteSynchronous: spec.sync ?? 'NORMAL',
      // winston at `info` writes a line per step; the benchmark measures the engine, not stdout.
      logger: createLogger('warn'),
    });
    await engine.start({ engine: true, worker: true });
    const baseRssMb = mb(process.memoryUsage().rss);
    const eng = engine;
    const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };

    let submit: (p: Record<string, unknown>) => Promise<string> = (p) => eng.intake.submit({ pipelineId: spec.pipeline, payload: p }).then((r) => r.id);
    if (spec.http) {
      server = await serve(eng, '127.0.0.1', 0, () => undefined, { keys: new KeyRing(eng.store, `${API_KEY}:admin`) });
      submit = httpSubmitter(server.url, spec.pipeline);
    }

    // Every end is seen here: this process's supervisor's, and those of the other engine
    // processes (`engines`), which publish theirs on Redis.
    const ended = new Map<string, number>();
    let waiters = new Map<string, () => void>();
    /** Set once the batch starts; until then ends are kept in `ended`. */
    const batch: { onEnd?: (id: string, at: number) => void } = {};
    const onFinished = (requestId: string, status: string): void => {
      const at = performance.now();
      if (status !== 'completed') console.error(`request ${requestId} ended ${status}`);
      const w = waiters.get(requestId);
      if (w) {
        waiters.delete(requestId);
        w();
      }
      if (batch.onEnd) batch.onEnd(requestId, at);
      else ended.set(requestId, at);
    };
    eng.bus.on('RequestFinished', ({ requestId, status }) => onFinished(requestId, status));
    if ((spec.engines ?? 1) > 1) helpers = await startHelpers(spec, box, onFinished);
    const runOne = async (): Promise<number> => {
      const t0 = performance.now();
      const id = await submit(payload);
      if (!ended.has(id)) await new Promise<void>((resolve) => waiters.set(id, resolve));
      ended.delete(id);
      return performance.now() - t0;
    };

    // Warm-up (`WARMUP`): JIT, statement caches, connection pools.
    await Promise.all(Array.from({ length: Math.min(WARMUP.concurrent, spec.requests) }, () => runOne()));
    const warmOneAtATime = spec.sequential > 0 ? WARMUP.oneAtATime : 0;
    for (let i = 0; i < warmOneAtATime; i++) await runOne();
    waiters = new Map();

    const meter = spec.mode === 'embedded' ? sqliteMeter() : mysqlMeter(box.databaseUrl);
    const seqWork0 = await meter.read();
    const seq: number[] = [];
    for (let i = 0; i < spec.sequential; i++) seq.push(await runOne());
    const seqWork = spec.sequential > 0 ? meter.perStep(seqWork0, await meter.read(), spec.sequential * steps) : undefined;

    // The batch.
    ended.clear();
    const n = spec.requests;
    const startAt = new Float64Array(n);
    const endAt = new Float64Array(n);
    const idToIndex = new Map<string, number>();
    const early = new Map<string, number>();
    let done = 0;
    const samples: ScaleSample[] = [];
    let lastSample = { done: 0, t: 0 };
    let batchStart = 0;
    let finishBatch!: () => void;
    const allDone = new Promise<void>((resolve) => (finishBatch = resolve));
    let pump: (() => void) | undefined;
    batch.onEnd = (id, at) => {
      const i = idToIndex.get(id);
      if (i === undefined) early.set(id, at);
      else {
        idToIndex.delete(id);
        endAt[i] = at;
      }
      done++;
      if (spec.sampleEvery && done % spec.sampleEvery === 0) {
        const t = (at - batchStart) / 1000;
        const mem = process.memoryUsage();
        samples.push({ done, t, rate: (done - lastSample.done) / (t - lastSample.t), rssMb: mb(mem.rss), heapMb: mb(mem.heapUsed) });
        lastSample = { done, t };
      }
      if (inspector && done === Math.floor(n / 2)) {
        inspector.post('HeapProfiler.stopSampling', (err, res) => {
          if (!err) fs.writeFileSync(heapProfile!, JSON.stringify(res.profile));
        });
      }
      if (done === n) finishBatch();
      else pump?.();
    };
    const submitAt = (i: number): void => {
      startAt[i] = performance.now();
      submit(payload).then((id) => {
        const at = early.get(id);
        if (at !== undefined) {
          early.delete(id);
          endAt[i] = at;
        } else idToIndex.set(id, i);
      }, (err: unknown) => {
        console.error(`submit failed: ${(err as Error).message}`);
        process.exit(1);
      });
    };
    // BENCH_HEAP_PROFILE=<file>: a sampling heap profile of what is live half-way through the batch.
    const heapProfile = process.env.BENCH_HEAP_PROFILE;
    const inspector = heapProfile ? new Session() : undefined;
    if (inspector) {
      inspector.connect();
      inspector.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    }
    // BENCH_CPU_PROFILE=<file>: a CPU profile of the batch alone (not the warm-up or the one-at-a-time runs).
    const cpuProfile = process.env.BENCH_CPU_PROFILE;
    const profiler = cpuProfile ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await new Promise<void>((resolve) => profiler.post('Profiler.enable', () => profiler.post('Profiler.start', () => resolve())));
    }
    const cpu0 = process.cpuUsage();
    const helperCpu0 = helpers?.cpuUs() ?? 0;
    const elu0 = performance.eventLoopUtilization();
    let peakHeap = 0;
    const heapSampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 100);
    const work0 = await meter.read();
    const batches0 = eng.committer.stats.batches;
    const items0 = eng.committer.stats.items;
    batchStart = performance.now();
    if (!spec.window) {
      for (let i = 0; i < n; i++) submitAt(i);
    } else {
      const window = spec.window;
      let next = 0;
      pump = () => {
        while (next < n && next - done < window) submitAt(next++);
      };
      pump();
    }
    await allDone;
    if (profiler) {
      await new Promise<void>((resolve) => profiler.post('Profiler.stop', (err, res) => {
        if (!err) fs.writeFileSync(cpuProfile!, JSON.stringify(res.profile));
        resolve();
      }));
      profiler.disconnect();
    }
    const seconds = (performance.now() - batchStart) / 1000;
    const work = { batch: meter.perStep(work0, await meter.read(), n * steps), sequential: seqWork };
    const cpu = process.cpuUsage(cpu0);
    const helperCpuUs = helpers ? helpers.cpuUs() - helperCpu0 : undefined;
    const elu = performance.eventLoopUtilization(elu0);
    clearInterval(heapSampler);
    const latencies = new Float64Array(n);
    for (let i = 0; i < n; i++) latencies[i] = endAt[i]! - startAt[i]!;
    const lat = latencyStats(latencies);
    const seqLat = latencyStats(seq);
    const batches = eng.committer.stats.batches - batches0;
    const items = eng.committer.stats.items - items0;

    // The verdict, from the database itself.
    const total = n + spec.sequential + Math.min(WARMUP.concurrent, spec.requests) + warmOneAtATime;
    const [r] = await eng.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'");
    const [s] = await eng.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM step_runs WHERE status = 'completed'");
    const [d] = await eng.store.query<{ n: unknown }>(
      "SELECT COUNT(*) AS n FROM (SELECT request_id, step_id FROM step_runs WHERE status = 'completed' GROUP BY request_id, step_id HAVING COUNT(*) > 1) x",
    );
    const verified = { requestsCompleted: Number(r?.n), runsCompleted: Number(s?.n), duplicateRuns: Number(d?.n), ok: false };
    verified.ok = verified.requestsCompleted === total && verified.runsCompleted === total * steps && verified.duplicateRuns === 0;

    return {
      name: spec.name, kind: 'engine', requests: n, stepsPerRequest: steps, seconds,
      reqPerS: n / seconds, stepsPerS: (n * steps) / seconds,
      p50Ms: lat.p50, p99Ms: lat.p99, seqP50Ms: seqLat.p50, seqP99Ms: seqLat.p99,
      peakRssMb: peakRssMb(), baseRssMb, cpuUsPerRequest: (cpu.user + cpu.system) / n,
      helperCpuUsPerRequest: helperCpuUs === undefined ? undefined : helperCpuUs / n,
      loopUsPerRequest: (elu.active * 1000) / n, peakHeapMb: mb(peakHeap), batches, itemsPerBatch: batches > 0 ? items / batches : 0,
      verified, work, samples: spec.sampleEvery ? samples : undefined,
    };
  } finally {
    await server?.close();
    await helpers?.stop();
    await engine?.stop();
    await box.cleanup();
  }
}

/** The other engine processes of a scenario, and their CPU time. */
interface Helpers {
  /** Their user and system CPU time so far, in µs (`/proc`). */
  cpuUs(): number;
  stop(): Promise<void>;
}

/** Starts `engines - 1` engine processes on the scenario's database and Redis, each publishing its ends to this one. */
async function startHelpers(spec: EngineSpec, box: Sandbox, onFinished: (requestId: string, status: string) => void): Promise<Helpers> {
  if (spec.mode !== 'distributed' || !box.redisUrl || !box.queuePrefix) throw new Error('more than one engine process needs the distributed mode');
  const channel = `${box.queuePrefix}:bench-ends`;
  const sub = new Redis(box.redisUrl, { maxRetriesPerRequest: 2 });
  await sub.subscribe(channel);
  sub.on('message', (_channel: string, message: string) => {
    const [id, status] = message.split(' ');
    onFinished(id!, status!);
  });
  const children: ChildProcess[] = [];
  const helperSpec = JSON.stringify({ databaseUrl: box.databaseUrl, redisUrl: box.redisUrl, queuePrefix: box.queuePrefix, channel });
  for (let i = 1; i < (spec.engines ?? 1); i++) {
    // The launch flags, when the bench gave them to this process (unless --v8-defaults).
    const flags = LAUNCH_FLAGS.every((f) => process.execArgv.includes(f)) ? LAUNCH_FLAGS : [];
    const child = spawn(process.execPath, [...flags, '--require', require.resolve('tsx/cjs'), path.join(__dirname, 'helper-engine.ts'), helperSpec], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`a helper engine exited with ${code} before it was ready`)));
    });
  }
  const ticks = (pid: number): number => {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
    // utime and stime, fields 14 and 15 of the whole line (11 and 12 after the command), in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
  return {
    cpuUs: () => children.reduce((sum, c) => sum + (c.pid ? ticks(c.pid) : 0), 0),
    async stop() {
      await Promise.all(children.map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      })));
      sub.disconnect();
    },
  };
}
