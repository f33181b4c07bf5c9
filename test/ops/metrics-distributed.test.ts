/**
 * Metrics from every process of a distributed deployment (docs/observability.md): an `api`,
 * two `engine`s and a `worker`, each a `conveyor` child process serving `/metrics` on its
 * own `CONVEYOR_METRICS_PORT`, over one MariaDB database and one Redis prefix of the suite.
 *
 * Which process commits which step is scheduling luck, so the test asserts only sums: over
 * all processes, `conveyor_steps_total` is the step log in the database, series by series.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  cleanRedisPrefix, countCompleted, createTestDatabase, DIST_MODULES, DIST_PIPELINES, spawnConveyor, startWorker, stopProc, uniquePrefix, waitFor,
  type ConveyorProc, type TestDatabase,
} from '../fixtures/dist/harness';
import { parseSamples } from '../support/prom';
import { requireMysql, requireRedis } from '../support/services';

const N = 60;

/** The URL a child printed for its metrics port (`metrics on http://…/metrics`). */
async function metricsUrlOf(p: ConveyorProc): Promise<string> {
  return waitFor(`${p.name} to serve /metrics`, () => {
    if (!p.alive()) throw new Error(`${p.name} exited:\n${p.output.join('\n')}`);
    for (const line of p.output) {
      const m = /^metrics on (http:\/\/\S+\/metrics)$/.exec(line);
      if (m) return m[1];
    }
    return undefined;
  }, 120_000, 100);
}

/** The API's URL from its `conveyor started` log line. */
async function apiUrlOf(p: ConveyorProc): Promise<string> {
  return waitFor(`${p.name} to start`, () => {
    if (!p.alive()) throw new Error(`${p.name} exited:\n${p.output.join('\n')}`);
    for (const line of p.output) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { message?: string; url?: string };
      if (entry.message === 'conveyor started' && entry.url) return entry.url;
    }
    return undefined;
  }, 120_000, 100);
}

describe('metrics: api + 2 engines + a worker, each on CONVEYOR_METRICS_PORT', function () {
  this.timeout(240_000);
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  const procs: ConveyorProc[] = [];
  const key = `metrics-${randomBytes(8).toString('hex')}`;

  before(async function () {
    this.timeout(180_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    db = await createTestDatabase(mysql, 'metrics');
    prefix = uniquePrefix('metrics');
    const env = {
      REDIS_URL: redisUrl, DATABASE_URL: db.url, CONVEYOR_QUEUE_PREFIX: prefix, CONVEYOR_QUEUE_MODULES: 'fan-q',
      CONVEYOR_PIPELINES_DIR: DIST_PIPELINES, CONVEYOR_MODULES_DIR: DIST_MODULES, CONVEYOR_SWEEP_MS: '250',
      CONVEYOR_METRICS_PORT: '0', LOG_LEVEL: 'info', CONVEYOR_API_KEYS: `${key}:submit+read`,
    };
    procs.push(spawnConveyor('api', ['api'], { ...env, PORT: '0', HOST: '127.0.0.1' }));
    procs.push(spawnConveyor('engine-1', ['engine'], env), spawnConveyor('engine-2', ['engine'], env));
    // Four processes start at once on a loaded machine: give them time.
    procs.push(await startWorker('worker', ['fan-q'], env, 120_000));
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(procs.splice(0).map((p) => stopProc(p, 'SIGTERM', 10_000)));
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  it('sums conveyor_steps_total over every process to the steps committed in the database', async () => {
    const [api] = procs;
    const apiUrl = await apiUrlOf(api!);
    const urls = await Promise.all(procs.map(metricsUrlOf));
    expect(new Set(urls).size, 'each process has a port of its own').to.equal(procs.length);

    const ids = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const res = await fetch(`${apiUrl}/api/pipelines/fanout/requests`, {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ i }), signal: AbortSignal.timeout(20_000),
      });
      expect(res.status).to.equal(202);
      return ((await res.json()) as { id: string }).id;
    }));
    expect(new Set(ids).size).to.equal(N);
    const c = await db.sql();
    await waitFor(`all ${N} requests to complete`, async () => (await countCompleted(c)) >= N, 60_000, 200);

    const [rows] = await c.query("SELECT step_id, status, COUNT(*) AS n FROM step_runs WHERE status IN ('completed', 'failed') GROUP BY step_id, status");
    const inDb = new Map((rows as Array<{ step_id: string; status: string; n: unknown }>).map((r) => [`${r.step_id}/${r.status}`, Number(r.n)]));
    const committed = [...inDb.values()].reduce((a, b) => a + b, 0);
    expect(committed).to.equal(N * 5);

    // A commit is counted just after it lands: scrape until the sums catch up (or time out).
    interface Scrape { total: number; byStep: Map<string, number>; perProcess: number[]; texts: string[] }
    let last: Scrape | undefined;
    const scrape = async (): Promise<Scrape> => {
      const texts = await Promise.all(urls.map(async (u) => {
        const res = await fetch(u, { signal: AbortSignal.timeout(10_000) });
        expect(res.status, u).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
        return res.text();
      }));
      const byStep = new Map<string, number>();
      const perProcess = texts.map((t) => {
        let sum = 0;
        for (const s of parseSamples(t)) {
          if (s.name !== 'conveyor_steps_total') continue;
          expect(s.labels.pipeline).to.equal('fanout');
          const k = `${s.labels.step}/${s.labels.outcome}`;
          byStep.set(k, (byStep.get(k) ?? 0) + s.value);
          sum += s.value;
        }
        return sum;
      });
      return { total: perProcess.reduce((a, b) => a + b, 0), byStep, perProcess, texts };
    };
    await waitFor('the step counters to add up to the step log', async () => {
      const now = await scrape();
      last = now;
      return now.total === committed;
    }, 20_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}: counters ${last?.perProcess.join(' + ')} = ${last?.total}, database ${committed}`);
    });
    expect(Object.fromEntries(last!.byStep), 'series by series').to.deep.equal(Object.fromEntries(inDb));

    // Every process serves its process metrics; the worker also counts the module runs it did
    // (at least once each: a stalled job may run again).
    for (const text of last!.texts) expect(parseSamples(text).some((s) => s.name === 'process_cpu_user_seconds_total')).to.equal(true);
    const workerText = last!.texts[procs.length - 1]!;
    const runs = parseSamples(workerText).filter((s) => s.name === 'conveyor_worker_runs_total' && s.labels.module === 'fan-q' && s.labels.outcome === 'completed');
    expect(runs.reduce((a, s) => a + s.value, 0)).to.be.at.least(N * 3);
    console.log(`      ${committed} steps committed; conveyor_steps_total by process (api, engine, engine, worker): ${last!.perProcess.join(' + ')}`);
  });
});
