/**
 * The queue transport on real Redis (bull) and MariaDB: module calls travel through
 * `conveyor:module:<name>`, results through `conveyor:results`. Each suite has a database of
 * its own (`conveyor_t_…`, dropped after) and a bull key prefix of its own (its keys are
 * deleted after).
 *
 * - one engine with its in-process worker: a queue step completes and is logged with transport
 *   `queue`; `NonRetryableError` → `error_stop`; a retryable failure is retried per policy,
 *   one row per attempt; `queue.concurrency: 2` holds;
 * - `queue.rate: { max: 5, per: '1s' }` holds across two worker processes;
 * - a worker SIGKILLed mid-job: bull redelivers the job to another worker and the step is
 *   committed exactly once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import { expect } from 'chai';
import { loadConfig, type Config } from '../../src/config';
import { Engine, type EngineRoles } from '../../src/engine';
import { ErrorCodes } from '../../src/errors';
import Redis from 'ioredis';
import { Bus } from '../../src/bus/bus';
import { RedisInbox } from '../../src/inbox/redis-inbox';
import type { HandleResult, InboxMessage } from '../../src/supervisor/supervisor';
import { ENGINE_RESULTS_PREFIX, engineAliveKey, MODULE_QUEUE_PREFIX, QueueHub, RESULTS_PER_JOB, RESULTS_QUEUE, type ResultBatchJob, type ResultJob } from '../../src/transports/queue';
import {
  cleanRedisPrefix, createTestDatabase, DIST_MODULES, DIST_PIPELINES, sleep, spawnConveyor, stopProc, uniquePrefix, waitFor,
  type ConveyorProc, type TestDatabase,
} from '../fixtures/dist/harness';
import { createSilentLogger } from '../support/engine';
import { requireMysql, requireRedis } from '../support/services';
import { removeTmpDir, tmpDir } from '../support/tmp';

interface RunRow {
  id: string;
  step_id: string;
  attempt: number;
  status: string;
  transport: string;
  output: string | null;
  error: string | null;
  started_at: number;
  finished_at: number | null;
}

const parse = <T>(v: string | null): T => (v === null ? (null as T) : (JSON.parse(v) as T));

/** Everything one suite needs: a database, a prefix, and what it started (stopped in `after`). */
function distributedSuite(label: string): {
  ctx: { db: TestDatabase; redisUrl: string; prefix: string };
  engine(queueModules: string[], roles: EngineRoles, options?: { heartbeatMs?: number; config?: Config }): Promise<Engine>;
  worker(modules: string[], env?: Record<string, string>): Promise<ConveyorProc>;
  runs(e: Engine, requestId: string): Promise<RunRow[]>;
} {
  const ctx = {} as { db: TestDatabase; redisUrl: string; prefix: string };
  const engines: Engine[] = [];
  const procs: ConveyorProc[] = [];

  before(async function () {
    this.timeout(30_000);
    const [mysql, redisUrl] = await Promise.all([requireMysql(), requireRedis()]);
    ctx.db = await createTestDatabase(mysql, label);
    ctx.redisUrl = redisUrl;
    ctx.prefix = uniquePrefix(label);
  });

  after(async function () {
    this.timeout(30_000);
    await Promise.allSettled(procs.map((p) => stopProc(p, 'SIGKILL')));
    for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
    await ctx.db?.drop();
    if (ctx.prefix) await cleanRedisPrefix(ctx.redisUrl, ctx.prefix);
  });

  return {
    ctx,
    async engine(queueModules, roles, options = {}) {
      const e = await Engine.create({
        ...options,
        databaseUrl: ctx.db.url,
        redisUrl: ctx.redisUrl,
        queuePrefix: ctx.prefix,
        queueModules,
        pipelinesDir: DIST_PIPELINES,
        modulesDir: DIST_MODULES,
        logger: createSilentLogger(),
        supervisor: { sweepIntervalMs: 200, leaseGraceMs: 2000 },
      });
      engines.push(e);
      await e.start(roles);
      return e;
    },
    /** `node bin/conveyor.js worker --modules …` on this suite's prefix; resolves once it takes jobs. */
    async worker(modules, env = {}) {
      const p = spawnConveyor(`worker ${modules.join(',')}`, ['worker', '--modules', modules.join(',')], {
        REDIS_URL: ctx.redisUrl,
        DATABASE_URL: ctx.db.url,
        CONVEYOR_QUEUE_PREFIX: ctx.prefix,
        CONVEYOR_PIPELINES_DIR: DIST_PIPELINES,
        CONVEYOR_MODULES_DIR: DIST_MODULES,
        LOG_LEVEL: 'info',
        ...env,
      });
      procs.push(p);
      await waitFor(`${p.name} to start`, () => {
        if (!p.alive()) throw new Error(`${p.name} exited:\n${p.output.join('\n')}`);
        return p.output.some((l) => l.includes('worker started'));
      }, 30_000, 50);
      return p;
    },
    async runs(e, requestId) {
      return e.store.query<RunRow>(
        'SELECT id, step_id, attempt, status, transport, output, error, started_at, finished_at FROM step_runs WHERE request_id = ? ORDER BY seq',
        [requestId],
      );
    },
  };
}

describe('queue transport: one engine with its in-process worker (Redis + MariaDB)', function () {
  this.timeout(30_000);
  const s = distributedSuite('queue');
  let e: Engine;

  before(async function () {
    this.timeout(30_000);
    e = await s.engine(['dist-qecho', 'dist-flaky', 'dist-conc'], { engine: true, worker: true });
  });

  it('runs a queue module through the worker: the request completes and the step row says transport "queue"', async () => {
    const r = await e.intake.submit({ pipelineId: 'q-echo', payload: { hello: 'queue' } });
    expect(await e.waitForEnd(r.id, 15_000)).to.equal('completed');
    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.step_id, x.attempt, x.status, x.transport])).to.deep.equal([
      ['local', 1, 'completed', 'event'],
      ['remote', 1, 'completed', 'queue'],
    ]);
    const out = parse<{ pid: number; n: number; key: string }>(rows[1]!.output);
    expect(out).to.include({ pid: process.pid, n: 2, key: rows[1]!.id });
    const got = await e.getRequest(r.id);
    expect(got?.context.remote).to.deep.equal(out);
    // The job was acknowledged and removed: nothing is left waiting or active in its queue.
    const counts = await e.hub!.queue(MODULE_QUEUE_PREFIX + 'dist-qecho').getJobCounts();
    expect(counts).to.include({ waiting: 0, active: 0, delayed: 0, failed: 0 });
  });

  it('stops in error_stop when a queue module throws NonRetryableError, without retrying', async () => {
    const r = await e.intake.submit({ pipelineId: 'q-flaky', payload: { fatal: 'bad input' } });
    expect(await e.waitForEnd(r.id, 15_000)).to.equal('error_stop');
    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.step_id, x.attempt, x.status, x.transport])).to.deep.equal([['flaky', 1, 'failed', 'queue']]);
    expect(parse(rows[0]!.error)).to.include({ code: ErrorCodes.NON_RETRYABLE, retryable: false });
    const req = await e.store.getRequest(r.id);
    expect(req?.status).to.equal('error_stop');
    expect(req?.error).to.include({ stepId: 'flaky', attempt: 1, runId: rows[0]!.id, code: ErrorCodes.NON_RETRYABLE });
    expect(req?.error?.message).to.contain('refused on purpose');
    await sleep(400);
    expect(await s.runs(e, r.id), 'nothing runs after error_stop').to.have.length(1);
  });

  it('retries a retryable queue failure per the step policy, one row per attempt', async () => {
    const r = await e.intake.submit({ pipelineId: 'q-flaky', payload: { failTimes: 2 } });
    expect(await e.waitForEnd(r.id, 15_000)).to.equal('completed');
    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.step_id, x.attempt, x.status, x.transport])).to.deep.equal([
      ['flaky', 1, 'failed', 'queue'],
      ['flaky', 2, 'failed', 'queue'],
      ['flaky', 3, 'completed', 'queue'],
    ]);
    expect(new Set(rows.map((x) => x.id)).size, 'each attempt is its own row').to.equal(3);
    for (const failed of rows.slice(0, 2)) {
      expect(parse(failed.error)).to.include({ code: ErrorCodes.MODULE_FAILED, retryable: true });
    }
    expect(parse(rows[2]!.output)).to.deep.equal({ attempt: 3, pid: process.pid });
    // Backoff 100 ms, factor 1, no jitter: each retry starts at least 100 ms after the failure.
    for (let i = 1; i < rows.length; i++) {
      expect(Number(rows[i]!.started_at) - Number(rows[i - 1]!.finished_at), `attempt ${i + 1} waited its backoff`).to.be.at.least(95);
    }
  });

  it('goes to error_stop once the retries are spent (3 attempts, all failed)', async () => {
    const r = await e.intake.submit({ pipelineId: 'q-flaky', payload: { failTimes: 5 } });
    expect(await e.waitForEnd(r.id, 15_000)).to.equal('error_stop');
    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.attempt, x.status])).to.deep.equal([[1, 'failed'], [2, 'failed'], [3, 'failed']]);
    const req = await e.store.getRequest(r.id);
    expect(req?.error).to.include({ stepId: 'flaky', attempt: 3, runId: rows[2]!.id, code: ErrorCodes.MODULE_FAILED });
  });

  it('holds queue.concurrency = 2 in a worker: never more than 2 jobs of the module at once', async () => {
    const N = 8;
    const ids = await Promise.all(Array.from({ length: N }, () => e.intake.submit({ pipelineId: 'q-conc', payload: {} }).then((r) => r.id)));
    const ends = await Promise.all(ids.map((id) => e.waitForEnd(id, 20_000)));
    expect(ends).to.deep.equal(new Array<string>(N).fill('completed'));
    const outs: Array<{ startedAt: number; finishedAt: number; activeAtStart: number }> = [];
    for (const id of ids) {
      const rows = await s.runs(e, id);
      expect(rows.map((x) => [x.status, x.transport])).to.deep.equal([['completed', 'queue']]);
      outs.push(parse(rows[0]!.output));
    }
    // The most jobs running at the same instant, from the intervals the module reported.
    const edges = outs.flatMap((o) => [[o.startedAt, 1], [o.finishedAt, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let max = 0;
    for (const [, d] of edges) max = Math.max(max, (now += d));
    expect(max, 'at most 2 at once').to.be.at.most(2);
    expect(max, 'the worker did use its 2 slots').to.equal(2);
    expect(Math.max(...outs.map((o) => o.activeAtStart))).to.be.at.most(2);
    const span = Math.max(...outs.map((o) => o.finishedAt)) - Math.min(...outs.map((o) => o.startedAt));
    expect(span, `${N} jobs of 150 ms, 2 at a time`).to.be.at.least((N / 2) * 150 - 20);
  });
});

/**
 * Redis MONITOR on a connection of its own: `onCommand(time, source, args)` for every command
 * Redis runs, in the order it runs them (`source` is the client's address, or `lua` for a
 * command a script ran). A raw socket, because ioredis's monitor mode drops lines that arrive
 * with MONITOR's reply. Resolves once MONITOR is on; `close()` ends it.
 */
async function monitorRedis(redisUrl: string, onCommand: (time: string, source: string, args: string[]) => void): Promise<{ close(): void }> {
  const u = new URL(redisUrl);
  const sock = net.connect(Number(u.port || 6379), u.hostname);
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject); // after MONITOR is on, a lost connection shows as missing starts
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line === '+OK') resolve();
        else if (line.startsWith('-')) reject(new Error(`MONITOR: ${line}`));
        const m = /^\+(\S+) \[\S+ (\S+)\] (.*)$/.exec(line);
        if (m) onCommand(m[1]!, m[2]!, [...m[3]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!));
      }
    });
    sock.write('MONITOR\r\n');
  });
  return { close: () => sock.destroy() };
}

describe('queue transport: queue.rate holds across two worker processes', function () {
  this.timeout(40_000);
  const s = distributedSuite('rate');
  let e: Engine;
  let child: ConveyorProc;
  let dir: string;
  let monitor: { close(): void } | undefined;

  before(async function () {
    this.timeout(40_000);
    dir = tmpDir('queue-rate');
    // Worker 1: a child process. Worker 2: the engine's own in-process worker.
    child = await s.worker(['dist-rated']);
    e = await s.engine(['dist-rated'], { engine: true, worker: true });
  });
  after(() => {
    monitor?.close();
    removeTmpDir(dir);
  });

  /**
   * bull's limiter lives in Redis: its `moveToActive` script starts a job only under the
   * limiter key (`PSETEX key <per> 1` opens a window, `INCR key` counts a start in it) and
   * otherwise delays the job. MONITOR reports those commands in the order Redis ran them, each
   * right after the EVALSHA (or EVAL) of the worker connection that ran the script, with
   * Redis's time: the limiter is observed where it decides, not in a handler that runs later.
   */
  it('starts at most 5 jobs a second in all, both workers bound by the one limiter', async () => {
    const N = 20; // more than one worker's concurrency (10): see the latch in dist-rated
    const MAX = 5;
    const PER_MS = 1000;
    const limiterKey = `${s.ctx.prefix}:${MODULE_QUEUE_PREFIX}dist-rated:limiter`;
    const latch = path.join(dir, 'latch');
    const inProcessAddr = /\baddr=(\S+)/.exec(String(await e.hub!.queue(MODULE_QUEUE_PREFIX + 'dist-rated', { max: MAX, duration: PER_MS }).client.client('INFO')))?.[1];
    expect(inProcessAddr, 'the in-process worker connection').to.be.a('string');

    // Redis's time of a MONITOR line, in whole ms.
    const msOf = (time: string): number => {
      const [sec, usec = '0'] = time.split('.');
      return Number(sec) * 1000 + Math.floor(Number(usec.padEnd(6, '0')) / 1000);
    };
    const starts: Array<{ cmd: string; args: string[]; ms: number; by: string; byCmd: string; scriptMs: number }> = [];
    let last = { source: '', cmd: '', ms: 0 };
    monitor = await monitorRedis(s.ctx.redisUrl, (time, source, args) => {
      const cmd = String(args[0]).toLowerCase();
      if (source !== 'lua') last = { source, cmd, ms: msOf(time) };
      else if (args[1] === limiterKey && (cmd === 'psetex' || cmd === 'incr')) {
        starts.push({ cmd, args: args.slice(1), ms: msOf(time), by: last.source, byCmd: last.cmd, scriptMs: last.ms });
      }
    });

    const t0 = Date.now();
    const ids = await Promise.all(Array.from({ length: N }, () => e.intake.submit({ pipelineId: 'q-rated', payload: { latch } }).then((r) => r.id)));
    const ends = await Promise.all(ids.map((id) => e.waitForEnd(id, 30_000)));
    expect(ends).to.deep.equal(new Array<string>(N).fill('completed'));
    const pids: number[] = [];
    for (const id of ids) {
      const rows = await s.runs(e, id);
      expect(rows.map((x) => [x.status, x.transport])).to.deep.equal([['completed', 'queue']]);
      pids.push(parse<{ pid: number }>(rows[0]!.output).pid);
    }
    await waitFor('MONITOR to report every start', () => starts.length >= N, 10_000, 20);
    monitor.close();
    monitor = undefined;

    // Every start went through the limiter: one count per job, each counted by the script
    // (EVALSHA or EVAL) of the worker connection that started it.
    expect(starts, 'one limiter count per job').to.have.length(N);
    expect(starts.filter((x) => x.byCmd !== 'evalsha' && x.byCmd !== 'eval'), 'each inside a script').to.deep.equal([]);
    // Windows: a PSETEX of `per` ms opens one (only once the last has expired), INCRs count
    // in it. A window lasts `per` from its PSETEX, which ran after its script was sent: no
    // window [sent, sent + per) holds more than MAX starts, whichever worker made them. (bull
    // also lets a job start in the very millisecond its key expires and counts it in the old
    // key, as a 6th: that start is not inside the window, so it is not counted there.)
    const windows: Array<typeof starts> = [];
    for (const x of starts) {
      if (x.cmd === 'psetex') {
        expect(x.args, 'a window of `per`').to.deep.equal([limiterKey, String(PER_MS), '1']);
        windows.push([x]);
      } else {
        expect(windows.length, 'the first start opens a window').to.be.above(0);
        windows[windows.length - 1]!.push(x);
      }
    }
    const inWindow = windows.map((w) => w.filter((x) => x.ms < w[0]!.scriptMs + PER_MS).length);
    expect(inWindow.filter((n) => n > MAX), `starts per window: ${JSON.stringify(inWindow)} of ${JSON.stringify(windows.map((w) => w.length))}`).to.deep.equal([]);
    expect(windows.length).to.be.at.least(N / MAX);
    // Each window opens after the last expired, so the last start is at least (windows - 1)
    // × per after the first, which came after t0. Load only makes it later.
    expect(starts[N - 1]!.ms - t0, `${N} jobs at ${MAX}/s`).to.be.at.least((windows.length - 1) * PER_MS);

    // Both processes started jobs (the latch makes sure), and both counted them in the same key.
    expect([...new Set(pids)].sort(), 'both workers took jobs').to.deep.equal([process.pid, child.pid].sort());
    const mine = pids.filter((p) => p === process.pid).length;
    expect(starts.filter((x) => x.by === inProcessAddr), 'the in-process worker\'s starts, all counted').to.have.length(mine);
    expect(new Set(starts.filter((x) => x.by !== inProcessAddr).map((x) => x.by)).size, 'the child\'s starts, from its connection').to.equal(1);
  });
});

describe('queue transport: a worker SIGKILLed mid-job', function () {
  this.timeout(60_000);
  const s = distributedSuite('kill');
  let dir: string;
  let log: string;

  before(() => {
    dir = tmpDir('queue-kill');
    log = path.join(dir, 'slow.log');
  });
  after(() => removeTmpDir(dir));

  const lines = (): string[][] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : []);

  it('has its job redelivered to another worker, and the step is committed exactly once', async () => {
    const env = { CONVEYOR_QUEUE_LOCK_MS: '2000', DIST_LOG: log };
    const e = await s.engine(['slow'], { engine: true, worker: false });
    const w1 = await s.worker(['slow'], env);
    const r = await e.intake.submit({ pipelineId: 'q-slow', payload: {} });

    // Kill the worker while the module runs.
    await waitFor('the first worker to start the job', () => lines().some(([pid, , what]) => pid === String(w1.pid) && what === 'start'), 15_000, 10);
    w1.child.kill('SIGKILL');
    expect((await w1.exited).signal).to.equal('SIGKILL');
    const [open] = await e.store.listStepRuns(r.id);
    expect(open?.status, 'no result was committed for the killed job').to.equal('dispatched');

    // Another worker takes the stalled job once its lock (2 s) has run out.
    const w2 = await s.worker(['slow'], env);
    expect(await e.waitForEnd(r.id, 30_000)).to.equal('completed');

    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.step_id, x.attempt, x.status, x.transport]), 'one row, committed once').to.deep.equal([['hold', 1, 'completed', 'queue']]);
    expect(parse<{ pid: number; key: string }>(rows[0]!.output)).to.deep.equal({ pid: w2.pid, key: rows[0]!.id });

    // At least once: the killed worker started it and never ended; the second ran it to the end.
    const seen = lines();
    expect(seen.filter(([pid]) => pid === String(w1.pid)).map(([, key, what]) => [key, what])).to.deep.equal([[rows[0]!.id, 'start']]);
    expect(seen.filter(([pid]) => pid === String(w2.pid)).map(([, key, what]) => [key, what])).to.deep.equal([[rows[0]!.id, 'start'], [rows[0]!.id, 'end']]);

    // A late duplicate would change nothing: still one completed row after a while.
    await sleep(300);
    const again = await s.runs(e, r.id);
    expect(again.filter((x) => x.status === 'completed')).to.have.length(1);
    expect(again).to.have.length(1);
  });
});

describe('queue transport: a worker stopped (SIGTERM) mid-job', function () {
  this.timeout(60_000);
  const s = distributedSuite('term');
  let dir: string;
  let log: string;

  before(() => {
    dir = tmpDir('queue-term');
    log = path.join(dir, 'slow.log');
  });
  after(() => removeTmpDir(dir));

  it('finishes the job and queues its answer before it exits: the step is committed once, from that run', async () => {
    const e = await s.engine(['slow'], { engine: true, worker: false });
    const w = await s.worker(['slow'], { DIST_LOG: log });
    const r = await e.intake.submit({ pipelineId: 'q-slow', payload: {} });
    const seen = (): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
    await waitFor('the worker to start the job', () => seen().some((l) => l.startsWith(`${w.pid} `) && l.endsWith(' start')), 15_000, 10);
    const exited = await stopProc(w, 'SIGTERM', 20_000);
    expect(exited.code, w.output.join('\n')).to.equal(0);
    // Its answer is in conveyor:results: the engine commits it, with no second run. (An answer
    // lost at the close would leave the step open until its 30 s timeout sent it again.)
    expect(await e.waitForEnd(r.id, 10_000)).to.equal('completed');
    const rows = await s.runs(e, r.id);
    expect(rows.map((x) => [x.step_id, x.attempt, x.status])).to.deep.equal([['hold', 1, 'completed']]);
    expect(parse<{ pid: number }>(rows[0]!.output).pid).to.equal(w.pid);
    expect(seen().filter((l) => l.startsWith(`${w.pid} `)).map((l) => l.split(' ')[2])).to.deep.equal(['start', 'end']);
  });
});

describe('queue hub and results inbox: adds of one turn leave together, answers are batched and queued again (real Redis)', function () {
  this.timeout(30_000);
  let redisUrl: string;
  let prefix: string;

  before(async () => {
    redisUrl = await requireRedis();
    prefix = uniquePrefix('qhub');
  });
  after(async () => {
    await cleanRedisPrefix(redisUrl, prefix);
  });

  /** Redis's count of reads from client sockets (`INFO stats`): one per socket read, whatever it carries. */
  const readsProcessed = async (r: Redis): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await r.info('stats'))![1]);

  it('sends 300 adds made in one turn in a few socket writes, stores every job, and closes its connections', async () => {
    const hub = new QueueHub(redisUrl, { prefix });
    const q = hub.queue('conveyor:module:pipelined');
    await q.isReady();
    const probe = new Redis(redisUrl);
    try {
      const before = await readsProcessed(probe);
      await Promise.all(Array.from({ length: 300 }, (_, i) => q.add({ i }, { jobId: `j-${i}` })));
      const reads = (await readsProcessed(probe)) - before;
      // Each add is one EVALSHA: written one by one they cost Redis 132–151 reads here (some
      // arrive together), auto-pipelined 13. The probe's own INFO is one.
      expect(reads, `${reads} socket reads for 300 adds`).to.be.below(60);
      expect(await q.getWaitingCount()).to.equal(300);
    } finally {
      probe.disconnect();
    }
    const clients = (hub as unknown as { clients: Map<string, Redis[]> }).clients;
    // A queue closed on its own gives back the connections made for it, and only those.
    const other = hub.queue('conveyor:module:other');
    await other.isReady();
    const made = clients.get('conveyor:module:other')!;
    expect(made.length).to.be.at.least(1);
    await hub.closeQueue('conveyor:module:other');
    expect(clients.has('conveyor:module:other')).to.equal(false);
    await waitFor('its connections closed', () => made.every((c) => c.status === 'end'), 5000, 20);
    expect(clients.get('conveyor:module:pipelined')!.every((c) => c.status === 'ready')).to.equal(true);
    await hub.close();
    expect(clients.size, 'every connection the hub made is given back').to.equal(0);
  });

  it('queues the answers handed in during one turn as one results job, at most 200 to a job; a lone answer as a job of its own', async () => {
    const hub = new QueueHub(redisUrl, { prefix: `${prefix}-results` });
    const q = hub.queue(RESULTS_QUEUE);
    try {
      await q.isReady();
      const answer = (i: number): ResultJob => ({ type: 'completed', requestId: `r-${i}`, runId: `run-${i}`, stepId: 's', attempt: 1, finishedAt: i, durationMs: 0, output: { i } });
      await Promise.all([0, 1, 2].map((i) => hub.addResult(answer(i))));
      let jobs = await q.getWaiting();
      expect(jobs.map((j) => j.data)).to.deep.equal([{ type: 'batch', results: [answer(0), answer(1), answer(2)] }]);
      await q.empty();
      await hub.addResult(answer(7));
      jobs = await q.getWaiting();
      expect(jobs.map((j) => j.data), 'a lone answer keeps the shape of one job per answer').to.deep.equal([answer(7)]);
      await q.empty();
      const n = 2 * RESULTS_PER_JOB + 50;
      await Promise.all(Array.from({ length: n }, (_, i) => hub.addResult(answer(i))));
      jobs = await q.getWaiting();
      const sizes = jobs.map((j) => (j.data as ResultBatchJob).results.length).sort((a, b) => b - a);
      expect(sizes).to.deep.equal([RESULTS_PER_JOB, RESULTS_PER_JOB, 50]);
      const ids = jobs.flatMap((j) => (j.data as ResultBatchJob).results.map((r) => r.runId));
      expect(new Set(ids).size, 'every answer is in exactly one job').to.equal(n);
    } finally {
      await hub.close();
      await cleanRedisPrefix(redisUrl, `${prefix}-results`);
    }
  });
  it('an engine queues again the answers it could not commit (1 s, then twice as long each time); after 10 times it leaves them to their leases; stopped, it takes no more', async () => {
    const p = `${prefix}-inbox`;
    const hub = new QueueHub(redisUrl, { prefix: p });
    const bus = new Bus();
    const warned: Array<[string, unknown]> = [];
    const logger = Object.assign(createSilentLogger(), { warn: (m: string, f?: unknown) => void warned.push([m, f]) });
    // What the supervisor makes of each run's answer, in turn (the last one again when spent).
    const plan: Record<string, HandleResult[]> = { a: ['committed'], b: ['ignored'], c: ['failed', 'committed'], d: ['failed'], e: ['failed'] };
    const seen: string[] = [];
    const supervisor = {
      receive: async (m: InboxMessage): Promise<HandleResult> => {
        const runId = (m as { result: { runId: string } }).result.runId;
        seen.push(runId);
        const left = plan[runId]!;
        return left.length > 1 ? left.shift()! : left[0]!;
      },
    };
    const inbox = new RedisInbox(supervisor as never, bus, hub, logger);
    const results = hub.queue(RESULTS_QUEUE);
    // Every job added to the results queue, with its options, as the inbox hands it to bull.
    const added: Array<{ data: ResultJob | ResultBatchJob; delay: number | undefined }> = [];
    const add = results.add.bind(results) as (data: unknown, opts?: { delay?: number }) => Promise<unknown>;
    (results as unknown as { add: typeof add }).add = (data, opts) => (added.push({ data: data as ResultJob, delay: opts?.delay }), add(data, opts));
    const returned: unknown[] = [];
    const settled = async (n: number): Promise<void> => void (await waitFor(`${n} results jobs done`, () => returned.length >= n, 10_000, 20));
    results.on('completed', (_job, value) => void returned.push(value));
    try {
      const answer = (runId: string, requeued?: number): ResultJob => ({ type: 'completed', requestId: `req-${runId}`, runId, stepId: 's', attempt: 1, finishedAt: 1, durationMs: 0, output: {}, ...(requeued === undefined ? {} : { requeued }) });
      inbox.start();
      await results.add({ type: 'batch', results: [answer('a'), answer('b'), answer('c'), answer('d', 2), answer('e', 10)] } satisfies ResultBatchJob);
      await settled(1);
      expect(returned[0]).to.deep.equal(['committed', 'ignored', 'failed', 'failed', 'failed']);
      // c back after 1 s (its first time), d after 4 s (its third); e, tried 10 times, is left to its lease.
      const again = added.slice(1).map((j) => [j.delay, (j.data as ResultBatchJob).type === 'batch' ? (j.data as ResultBatchJob).results.map((r) => [r.runId, r.requeued]) : [[(j.data as ResultJob).runId, (j.data as ResultJob).requeued]]]);
      expect(again).to.deep.equal([[1000, [['c', 1]]], [4000, [['d', 3]]]]);
      expect(warned).to.deep.equal([['answers not committed after retries, left to their leases', { runIds: ['e'] }]]);
      await settled(2);
      expect(returned[1]).to.deep.equal(['committed']);
      expect(seen).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'c']);
      // Stopped: what is queued now waits for another engine.
      await inbox.stop();
      expect(await results.isPaused(true)).to.equal(true);
      await results.add(answer('a'));
      await sleep(300);
      expect((await results.getWaiting()).filter((j) => (j.data as ResultJob).runId === 'a')).to.have.length(1);
      expect(seen).to.have.length(6);
    } finally {
      await hub.close();
      await cleanRedisPrefix(redisUrl, p);
    }
  });

});

describe('queue transport: an engine takes a results job that carries several answers (Redis + MariaDB)', function () {
  this.timeout(30_000);
  const s = distributedSuite('qbatch');

  it('commits every answer of the job once; an answer given twice in it, or one for an unknown request, changes nothing', async () => {
    // No worker: the calls wait in the module's queue, and the test answers them itself.
    const e = await s.engine(['dist-qecho'], { engine: true, worker: false });
    const ids = await Promise.all([1, 2, 3].map((i) => e.intake.submit({ pipelineId: 'q-echo', payload: { i } }).then((r) => r.id)));
    const calls = e.hub!.queue(MODULE_QUEUE_PREFIX + 'dist-qecho');
    await waitFor('the three calls queued', async () => (await calls.getWaitingCount()) === 3, 15_000, 50);
    const jobs = await calls.getWaiting();
    const answers: ResultJob[] = jobs.map((j) => {
      const c = j.data as { requestId: string; runId: string; stepId: string; attempt: number };
      return { type: 'completed', requestId: c.requestId, runId: c.runId, stepId: c.stepId, attempt: c.attempt, finishedAt: Date.now(), durationMs: 1, output: { by: 'test', run: c.runId } };
    });
    const unknown: ResultJob = { ...answers[0]!, requestId: 'no-such-request', runId: 'no-such-run' };
    const batch: ResultBatchJob = { type: 'batch', results: [...answers, answers[1]!, unknown] };
    await calls.empty();
    const results = e.hub!.queue(RESULTS_QUEUE);
    // The engine's own consumer reports what it made of each answer as the job's return value.
    const done = new Promise<unknown>((resolve, reject) => {
      results.on('completed', (job, value) => ((job.data as ResultBatchJob).type === 'batch' ? resolve(value) : undefined));
      results.on('failed', (job, err) => ((job.data as ResultBatchJob).type === 'batch' ? reject(err) : undefined));
    });
    await results.add(batch);
    expect(await done).to.deep.equal(['committed', 'committed', 'committed', 'ignored', 'ignored']);
    for (const id of ids) expect(await e.waitForEnd(id, 15_000)).to.equal('completed');
    for (const id of ids) {
      const rows = await s.runs(e, id);
      expect(rows.map((x) => [x.step_id, x.status])).to.deep.equal([['local', 'completed'], ['remote', 'completed']]);
      expect(parse<{ by: string; run: string }>(rows[1]!.output)).to.deep.equal({ by: 'test', run: rows[1]!.id });
    }
  });
});

describe('queue transport: answers go back to the engine that sent the call (Redis + MariaDB)', function () {
  this.timeout(60_000);
  const s = distributedSuite('qaff');
  const N = 20;

  /** The queue step's answers each engine took (its inbox's `StepAnswered` for step `remote`). */
  function answered(e: Engine): { n: number; runs: Set<string> } {
    const seen = { n: 0, runs: new Set<string>() };
    e.bus.on('StepAnswered', (r) => {
      if (r.stepId !== 'remote') return;
      seen.n++;
      seen.runs.add(r.runId);
    });
    return seen;
  }

  /** How many jobs were ever added to queue `name` (bull's job id counter; done jobs are removed). */
  const jobsAdded = async (e: Engine, name: string): Promise<number> => Number(await e.hub!.queue(RESULTS_QUEUE).client.get(`${s.ctx.prefix}:${name}:id`) ?? 0);

  const completed = async (e: Engine, ids: string[]): Promise<void> => {
    await waitFor(`${ids.length} requests completed`, async () => {
      const rows = await e.store.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM requests WHERE status = 'completed' AND id IN (${ids.map(() => '?').join(',')})`, ids);
      return Number(rows[0]!.n) === ids.length;
    }, 30_000, 100);
  };

  it('two engines: each takes the answers of the calls it sent, and none of the other\'s', async () => {
    // Beats of 1 s: an engine counts as gone after 3 s without one, far beyond any stall here.
    const a = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 1000 });
    const b = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 1000 });
    const [byA, byB] = [answered(a), answered(b)];
    const fromA = await Promise.all(Array.from({ length: N }, (_, i) => a.intake.submit({ pipelineId: 'q-echo', payload: { i } }).then((r) => r.id)));
    const fromB = await Promise.all(Array.from({ length: N }, (_, i) => b.intake.submit({ pipelineId: 'q-echo', payload: { i } }).then((r) => r.id)));
    const calls = a.hub!.queue(MODULE_QUEUE_PREFIX + 'dist-qecho');
    await waitFor(`${2 * N} calls queued`, async () => (await calls.getWaitingCount()) === 2 * N, 15_000, 50);
    // Each call names the results queue of the engine that sent it.
    const replyTo = new Map((await calls.getWaiting()).map((j) => [(j.data as { requestId: string }).requestId, (j.data as { replyTo?: string }).replyTo]));
    for (const id of fromA) expect(replyTo.get(id)).to.equal(a.hub!.replyQueue);
    for (const id of fromB) expect(replyTo.get(id)).to.equal(b.hub!.replyQueue);
    expect(a.hub!.replyQueue).to.not.equal(b.hub!.replyQueue);
    const shared = await jobsAdded(a, RESULTS_QUEUE);
    const worker = await s.worker(['dist-qecho']);
    await completed(a, [...fromA, ...fromB]);
    // Every answer went to its engine's own queue; none through the shared one.
    expect(await jobsAdded(a, RESULTS_QUEUE)).to.equal(shared);
    expect(await jobsAdded(a, a.hub!.replyQueue!)).to.be.at.least(1);
    expect(await jobsAdded(a, b.hub!.replyQueue!)).to.be.at.least(1);
    expect(byA.n).to.equal(N);
    expect(byB.n).to.equal(N);
    const runsOf = async (ids: string[]): Promise<string[]> => (await a.store.query<{ id: string }>(
      `SELECT id FROM step_runs WHERE step_id = 'remote' AND status = 'completed' AND request_id IN (${ids.map(() => '?').join(',')})`, ids)).map((r) => String(r.id));
    expect([...byA.runs].sort()).to.deep.equal((await runsOf(fromA)).sort());
    expect([...byB.runs].sort()).to.deep.equal((await runsOf(fromB)).sort());
    // Stopped, so that the next test's engines are the only ones taking answers, and no worker runs.
    await a.stop();
    await b.stop();
    await stopProc(worker, 'SIGTERM');
  });

  it('a start of a request another engine already started is no news here, and leaves nothing counted in flight', async () => {
    const a = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 1000 });
    const b = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 1000 });
    // Started by a at submit; its one step (in-process `slow`, 1.5 s) keeps it running meanwhile.
    const { id, status } = await a.intake.submit({ pipelineId: 'q-slow', payload: {} });
    expect(status).to.equal('running');
    // A second start of it reaches b (a pull, a start job, the sweeper of lost starts).
    expect(await b.supervisor.receive({ type: 'start', requestId: id })).to.equal('ignored');
    const [row] = await b.store.query<{ status: string }>('SELECT status FROM requests WHERE id = ?', [id]);
    expect(row!.status, 'still running on a: the check above saw it under way').to.equal('running');
    expect(b.admitted.inFlight, 'b does not hold it').to.equal(0);
    expect(a.admitted.inFlight, 'a does').to.equal(1);
    await completed(a, [id]);
  });

  it('CONVEYOR_HEARTBEAT_MS sets the beat: the engine says it is alive with a key that lives three beats, removed when it stops', async () => {
    const e = await s.engine(['dist-qecho'], { engine: true, worker: false }, { config: loadConfig({ CONVEYOR_HEARTBEAT_MS: '700' }) });
    const key = engineAliveKey(s.ctx.prefix, (e.inbox as RedisInbox).id);
    const redis = e.hub!.queue(RESULTS_QUEUE).client;
    await waitFor('the first beat', async () => (await redis.exists(key)) === 1, 10_000, 20);
    const ttl = await redis.pttl(key);
    expect(ttl, 'three beats of 700 ms, not of the default 10 s').to.be.greaterThan(0).and.at.most(2100);
    await e.stop();
    const probe = new Redis(s.ctx.redisUrl);
    try {
      expect(await probe.exists(key), 'deleted at stop').to.equal(0);
    } finally {
      probe.disconnect();
    }
  });

  it('an engine that is gone (its heartbeat expired): another takes the answers left in its queue, and each step is committed once', async () => {
    const a = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 200 });
    const b = await s.engine(['dist-qecho'], { engine: true, worker: false }, { heartbeatMs: 200 });
    const [byA, byB] = [answered(a), answered(b)];
    const own = a.hub!.replyQueue!;
    // No worker runs now: a's calls wait in the module's queue, each naming a's results queue.
    const ids = await Promise.all(Array.from({ length: N }, (_, i) => a.intake.submit({ pipelineId: 'q-echo', payload: { gone: i } }).then((r) => r.id)));
    const calls = a.hub!.queue(MODULE_QUEUE_PREFIX + 'dist-qecho');
    await waitFor(`${N} calls queued`, async () => (await calls.getWaitingCount()) === N, 15_000, 50);
    const jobs = await calls.getWaiting();
    for (const j of jobs) expect((j.data as { replyTo?: string }).replyTo).to.equal(own);
    // a falls silent as a killed process would: no more beats, nothing taken from its queue.
    clearInterval((a.inbox as unknown as { beat: NodeJS.Timeout }).beat);
    await a.hub!.consumer(own).pause(true);
    // The answers were sent to a's queue while it was alive (the test answers as a worker would).
    const answers: ResultJob[] = jobs.map((j) => {
      const c = j.data as { requestId: string; runId: string; stepId: string; attempt: number };
      return { type: 'completed', requestId: c.requestId, runId: c.runId, stepId: c.stepId, attempt: c.attempt, finishedAt: Date.now(), durationMs: 1, output: { by: 'test' } };
    });
    await calls.empty();
    await a.hub!.queue(own).add({ type: 'batch', results: answers } satisfies ResultBatchJob);
    // a's heartbeat key expires 600 ms after its last beat; b then takes its queue.
    await completed(b, ids);
    expect(byB.n).to.equal(N);
    expect(byA.n).to.equal(0);
    const rows = await b.store.query<{ request_id: string; n: unknown }>(
      `SELECT request_id, COUNT(*) AS n FROM step_runs WHERE step_id = 'remote' AND status = 'completed' AND request_id IN (${ids.map(() => '?').join(',')}) GROUP BY request_id`, ids);
    expect(rows.map((r) => Number(r.n))).to.deep.equal(ids.map(() => 1));
    expect(await b.hub!.queue(own).getWaitingCount()).to.equal(0);
  });

  it("a worker answers to an engine's own queue only while its heartbeat key exists, else to conveyor:results", async () => {
    const key = engineAliveKey(s.ctx.prefix, 'e1');
    const hub = new QueueHub(s.ctx.redisUrl, { prefix: s.ctx.prefix });
    const fresh = new QueueHub(s.ctx.redisUrl, { prefix: s.ctx.prefix });
    try {
      const redis = hub.queue(RESULTS_QUEUE).client;
      await redis.set(key, '1', 'PX', 60_000);
      expect(await hub.resultsQueueFor(`${ENGINE_RESULTS_PREFIX}e1`)).to.equal(`${ENGINE_RESULTS_PREFIX}e1`);
      await redis.del(key);
      // A hub that has not read it yet (a hub trusts what it read for a second).
      expect(await fresh.resultsQueueFor(`${ENGINE_RESULTS_PREFIX}e1`)).to.equal(RESULTS_QUEUE);
      expect(await fresh.resultsQueueFor(undefined)).to.equal(RESULTS_QUEUE);
      expect(await fresh.resultsQueueFor('somewhere-else')).to.equal(RESULTS_QUEUE);
    } finally {
      await hub.close();
      await fresh.close();
    }
  });
});
