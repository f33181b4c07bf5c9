/**
 * Intake limits are global in distributed mode (docs/intake.md): an `api` process and two
 * `engine` processes share one MariaDB and one Redis. Both engines run the release loop of the
 * rate-limited pipeline; the limit is claimed in the database (a locked mark row, a window
 * counted from stored release times), so together they still start at most 5 a second, and no
 * request is lost or started twice. Which engine releases which request is scheduling, not a
 * promise, so the test does not look. The business key holds across them as well: under
 * `queue`, one request of a key runs at a time.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  cleanRedisPrefix, createTestDatabase, spawnConveyor, stopProc, uniquePrefix, waitFor, waitHealthy, type ConveyorProc, type TestDatabase,
} from '../fixtures/dist/harness';
import { freePort } from '../support/ports';
import { requireMysql, requireRedis } from '../support/services';
import { INTAKE_FIXTURES, maxInAnySpan } from './helpers';

describe('intake: limits shared by two engine processes (MariaDB + Redis)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  let url: string;
  const procs: ConveyorProc[] = [];
  const key = `dist-intake-${randomBytes(8).toString('hex')}`;

  before(async function () {
    this.timeout(90_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    db = await createTestDatabase(mysql, 'intake');
    prefix = uniquePrefix('intake');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      DATABASE_URL: db.url, REDIS_URL: redisUrl, CONVEYOR_QUEUE_PREFIX: prefix, CONVEYOR_API_KEYS: `${key}:admin`,
      CONVEYOR_PIPELINES_DIR: path.join(INTAKE_FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(INTAKE_FIXTURES, 'modules'),
      LOG_LEVEL: 'info', CONVEYOR_SWEEP_MS: '300', HOST: '127.0.0.1',
    };
    procs.push(spawnConveyor('api', ['api'], { ...env, PORT: String(port) }, { keepLines: 2000 }));
    procs.push(spawnConveyor('engine-1', ['engine'], env, { keepLines: 2000 }));
    procs.push(spawnConveyor('engine-2', ['engine'], env, { keepLines: 2000 }));
    await waitHealthy(url, procs[0]!, 60_000);
    // Both engines are up once each has logged its start.
    await waitFor('both engines', () => procs.slice(1).every((p) => p.output.some((l) => l.includes('conveyor started'))), 60_000, 100);
  });

  after(async () => {
    await Promise.all(procs.map((p) => stopProc(p)));
    await db?.drop();
    if (redisUrl && prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  const post = async (pipeline: string, body: unknown): Promise<{ status: number; id: string }> => {
    const r = await fetch(`${url}/api/pipelines/${pipeline}/requests`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: r.status, id: ((await r.json()) as { id: string }).id };
  };

  it('rate {max: 5, per: 1s}: 30 requests, released by two engines together, never more than 5 in a second, none lost or run twice', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post('in-rate', { i })));
    expect(answers.every((a) => a.status === 202)).to.equal(true);
    const accepted = answers.map((a) => a.id);
    expect(new Set(accepted).size, 'every answer names its own request').to.equal(30);
    const c = await db.sql();
    const rows = await waitFor('30 completed', async () => {
      const [r] = await c.query("SELECT id, status, release_at FROM requests WHERE pipeline_id = 'in-rate' ORDER BY created_at, id");
      const list = r as Array<{ id: string; status: string; release_at: number }>;
      return list.length === 30 && list.every((x) => x.status === 'completed') ? list : undefined;
    }, 60_000, 200);
    // Nothing lost: the stored requests are exactly the accepted ones, and every one completed.
    expect(rows.map((r) => r.id).sort()).to.deep.equal([...accepted].sort());
    // Nothing duplicated: each request ran its one step once, whichever engine released it.
    const [runs] = await c.query(
      "SELECT request_id, COUNT(*) AS n FROM step_runs WHERE pipeline_id = 'in-rate' AND step_id = 'work' GROUP BY request_id",
    );
    const perRequest = runs as Array<{ request_id: string; n: number | string }>;
    expect(perRequest).to.have.length(30);
    expect(perRequest.filter((r) => Number(r.n) !== 1), 'step runs per request').to.deep.equal([]);
    // The global limit: never more than 5 released in any second, so 30 take at least 5 windows.
    const released = rows.map((r) => Number(r.release_at));
    expect(maxInAnySpan(released, 1000)).to.be.at.most(5);
    expect(Math.max(...released) - Math.min(...released), '30 at 5 a second span at least 5 s').to.be.at.least(5000);
    expect(released).to.deep.equal([...released].sort((a, b) => a - b));
    // And at dispatch: the first step runs' recorded start, whichever engine dispatched them.
    const [firsts] = await c.query("SELECT s.started_at FROM step_runs s JOIN requests q ON q.id = s.request_id WHERE q.pipeline_id = 'in-rate' AND s.seq = 1");
    const dispatched = (firsts as Array<{ started_at: number }>).map((r) => Number(r.started_at));
    expect(dispatched).to.have.length(30);
    expect(maxInAnySpan(dispatched, 1000), 'first dispatches in any 1 s span').to.be.at.most(5);
  });

  it('business key, queue: 20 concurrent submits with one key run one at a time across both engines', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => post('in-key-queue', { sku: 'D-1', i, ms: 30 })));
    expect(answers.every((a) => a.status === 202)).to.equal(true);
    const c = await db.sql();
    await waitFor('20 completed', async () => {
      const [r] = await c.query("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'in-key-queue' AND business_key = 'D-1' AND status = 'completed'");
      return Number((r as Array<{ n: number }>)[0]!.n) === 20 ? true : undefined;
    }, 60_000, 200);
    const [r] = await c.query(
      `SELECT s.started_at, s.finished_at FROM step_runs s JOIN requests q ON q.id = s.request_id
        WHERE q.pipeline_id = 'in-key-queue' AND q.business_key = 'D-1' AND s.status = 'completed' ORDER BY s.started_at, s.id`,
    );
    // In start order, not submit order: 20 concurrent submits arrive in no defined order, and
    // the one that takes the key first runs first. The promise is that no two runs overlap.
    const runs = r as Array<{ started_at: number; finished_at: number }>;
    expect(runs).to.have.length(20);
    for (let i = 1; i < runs.length; i++) expect(Number(runs[i]!.started_at), `run ${i} starts after run ${i - 1} ended`).to.be.at.least(Number(runs[i - 1]!.finished_at));
  });

  it('business key, reject: 50 concurrent submits through the API: exactly one accepted', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post('in-key-reject', { sku: 'D-2', i, ms: 3000 })));
    expect(answers.filter((a) => a.status === 202)).to.have.length(1);
    expect(answers.filter((a) => a.status === 409)).to.have.length(49);
  });
});
