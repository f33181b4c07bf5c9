/**
 * `intake.businessKey.reuse` (issue 13 §2, Temporal's workflow id reuse policy): what a
 * business key may do once its request ended, within `reuseWindow`. The unique index on the
 * key decides, so the answers are the same under concurrent submits, in one process on SQLite
 * and through two API processes sharing MariaDB. The tests assert outcomes only: never which
 * process did the work.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { reuseOf } from '../../src/intake/keys';
import { cleanRedisPrefix, createTestDatabase, spawnConveyor, uniquePrefix, stopProc, waitFor, waitHealthy, type ConveyorProc, type TestDatabase } from '../fixtures/dist/harness';
import type { TestEngine } from '../support/engine';
import { freePort } from '../support/ports';
import { requireMysql, requireRedis } from '../support/services';
import { INTAKE_FIXTURES, startIntakeEngine, until } from './helpers';

interface Answer {
  status: number;
  id?: string;
  code?: string;
  details?: Record<string, unknown>;
  existing: boolean;
}

/** What the scenarios need from a deployment: submit (through the API process `via`), read, stop. */
interface Deployment {
  post(pipeline: string, body: Record<string, unknown>, via: number): Promise<Answer>;
  status(id: string): Promise<string>;
  stop(id: string): Promise<void>;
  count(pipeline: string, sku: string): Promise<number>;
}

const sku = (label: string): string => `${label}-${randomBytes(4).toString('hex')}`;

/** The scenarios, run against each deployment. */
function reuseScenarios(d: () => Deployment): void {
  const ended = (id: string, status = 'completed') => until(`${id} ${status}`, async () => ((await d().status(id)) === status ? true : undefined), 30_000);
  /** `n` submits at once, spread over the API processes. */
  const burst = (pipeline: string, body: Record<string, unknown>, n = 10) => Promise.all(Array.from({ length: n }, (_v, i) => d().post(pipeline, { ...body, i }, i)));

  it('allow (the default): a finished key starts a new request', async () => {
    const k = sku('allow');
    const first = await d().post('in-key-reject', { sku: k }, 0);
    await ended(first.id!);
    const again = await d().post('in-key-reject', { sku: k }, 1);
    expect(again.status).to.equal(202);
    expect(again.id).to.not.equal(first.id);
    expect(await d().count('in-key-reject', k)).to.equal(2);
  });

  it('reject-duplicate: every re-send of a finished key gets 409 with the earlier request id', async () => {
    const k = sku('dup');
    const first = await d().post('in-reuse-reject', { sku: k }, 0);
    await ended(first.id!);
    const answers = await burst('in-reuse-reject', { sku: k });
    expect(answers.map((a) => [a.status, a.code, a.details?.existingId])).to.deep.equal(answers.map(() => [409, 'CONVEYOR_ERR_DUPLICATE_REQUEST', first.id]));
    expect(await d().count('in-reuse-reject', k)).to.equal(1);
  });

  it('return-existing: every re-send of a finished key gets 200 with the earlier request and X-Conveyor-Existing-Request', async () => {
    const k = sku('same');
    const first = await d().post('in-reuse-existing', { sku: k }, 0);
    await ended(first.id!);
    const answers = await burst('in-reuse-existing', { sku: k });
    expect(answers.map((a) => [a.status, a.id, a.existing])).to.deep.equal(answers.map(() => [200, first.id, true]));
    expect(await d().count('in-reuse-existing', k)).to.equal(1);
  });

  it('allow-after-failure: a completed key is refused; an error_stop holds it; once an operator stopped it, one new request starts', async () => {
    const done = sku('okay');
    const first = await d().post('in-reuse-failure', { sku: done }, 0);
    await ended(first.id!);
    const refused = await d().post('in-reuse-failure', { sku: done }, 1);
    expect([refused.status, refused.code, refused.details?.existingId]).to.deep.equal([409, 'CONVEYOR_ERR_DUPLICATE_REQUEST', first.id]);

    const k = sku('fail');
    const failed = await d().post('in-reuse-failure', { sku: k, fail: true }, 0);
    await ended(failed.id!, 'error_stop');
    const held = await d().post('in-reuse-failure', { sku: k }, 1);
    expect([held.status, held.code]).to.deep.equal([409, 'CONVEYOR_ERR_BUSINESS_KEY_ACTIVE']);
    await d().stop(failed.id!);
    await ended(failed.id!, 'stopped');
    const answers = await burst('in-reuse-failure', { sku: k, ms: 3000 });
    const created = answers.filter((a) => a.status === 202);
    expect(created).to.have.length(1);
    expect(created[0]!.id).to.not.equal(failed.id);
    const others = answers.filter((a) => a.status !== 202);
    expect(others.map((a) => [a.status, a.code, a.details?.activeId])).to.deep.equal(others.map(() => [409, 'CONVEYOR_ERR_BUSINESS_KEY_ACTIVE', created[0]!.id]));
    expect(await d().count('in-reuse-failure', k)).to.equal(2);
  });
}

describe('intake: business key reuse after the request ended', function () {
  this.timeout(120_000);

  it('decides by policy and window (pure)', () => {
    const at = (status: string, finishedAt: number | null) => ({ status, finishedAt });
    const W = 1000;
    const table: Array<[Parameters<typeof reuseOf>[0], ReturnType<typeof at>, number, string]> = [
      ['allow', at('completed', 0), 10, 'free'],
      ['reject-duplicate', at('completed', 0), 10, 'reject'],
      ['reject-duplicate', at('completed', 0), W + 1, 'free'],
      ['return-existing', at('stopped', 0), 10, 'existing'],
      ['allow-after-failure', at('stopped', 0), 10, 'free'],
      ['allow-after-failure', at('completed', 0), 10, 'reject'],
    ];
    expect(table.map(([p, h, now]) => reuseOf(p, h, W, now))).to.deep.equal(table.map((row) => row[3]));
  });

  describe('one process on SQLite', () => {
    let t: TestEngine;
    before(async () => {
      t = await startIntakeEngine();
    });
    after(() => t?.close());

    const deployment = (): Deployment => ({
      async post(pipeline, body) {
        const r = await t.api<{ id?: string; error?: { code: string; details: Record<string, unknown> } }>('POST', `/api/pipelines/${pipeline}/requests`, { body });
        return { status: r.status, id: r.body.id, code: r.body.error?.code, details: r.body.error?.details, existing: r.headers['x-conveyor-existing-request'] === 'true' };
      },
      async status(id) {
        return (await t.api<{ status: string }>('GET', `/api/requests/${id}`)).body.status;
      },
      async stop(id) {
        expect((await t.api('POST', `/api/requests/${id}/stop`, { body: {} })).status).to.equal(200);
      },
      async count(pipeline, key) {
        const [r] = await t.engine.store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = ? AND business_key = ?', [pipeline, key]);
        return Number(r!.n);
      },
    });
    reuseScenarios(deployment);

    it('reuseWindow: once the window after the end has passed, the key starts a new request', async () => {
      const k = sku('window');
      const d = deployment();
      const first = await d.post('in-reuse-window', { sku: k }, 0);
      await until('completed', async () => ((await d.status(first.id!)) === 'completed' ? true : undefined));
      expect((await d.post('in-reuse-window', { sku: k }, 0)).status).to.equal(409);
      const later = await until('the window to pass', async () => {
        const a = await d.post('in-reuse-window', { sku: k }, 0);
        return a.status === 202 ? a : undefined;
      }, 10_000, 200);
      expect(later.id).to.not.equal(first.id);
      const [row] = await t.engine.store.query<{ finished_at: unknown }>('SELECT finished_at FROM requests WHERE id = ?', [first.id]);
      const [mine] = await t.engine.store.query<{ created_at: unknown }>('SELECT created_at FROM requests WHERE id = ?', [later.id]);
      expect(Number(mine!.created_at) - Number(row!.finished_at)).to.be.at.least(1500);
    });
  });

  describe('two API processes and an engine on MariaDB', () => {
    let db: TestDatabase;
    let redisUrl: string;
    const prefix = uniquePrefix('reuse');
    const procs: ConveyorProc[] = [];
    const urls: string[] = [];
    const key = `reuse-${randomBytes(8).toString('hex')}`;

    before(async function () {
      this.timeout(120_000);
      const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
      redisUrl = redis;
      db = await createTestDatabase(mysql, 'reuse');
      const env = {
        DATABASE_URL: db.url, REDIS_URL: redisUrl, CONVEYOR_QUEUE_PREFIX: prefix, CONVEYOR_API_KEYS: `${key}:admin`, HOST: '127.0.0.1', LOG_LEVEL: 'info', CONVEYOR_SWEEP_MS: '300',
        CONVEYOR_PIPELINES_DIR: path.join(INTAKE_FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(INTAKE_FIXTURES, 'modules'),
      };
      for (const name of ['api-1', 'api-2']) {
        const port = await freePort();
        urls.push(`http://127.0.0.1:${port}`);
        procs.push(spawnConveyor(name, ['api'], { ...env, PORT: String(port) }, { keepLines: 500 }));
      }
      procs.push(spawnConveyor('engine', ['engine'], env, { keepLines: 500 }));
      await Promise.all(urls.map((u, i) => waitHealthy(u, procs[i]!, 90_000)));
      await waitFor('the engine', () => procs[2]!.output.some((l) => l.includes('conveyor started')), 90_000, 100);
    });
    after(async () => {
      await Promise.all(procs.map((p) => stopProc(p)));
      await db?.drop();
      if (redisUrl) await cleanRedisPrefix(redisUrl, prefix);
    });

    const call = async (method: string, route: string, via: number, body?: unknown) => {
      const r = await fetch(`${urls[via % urls.length]}${route}`, {
        method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, headers: r.headers, body: (await r.json()) as { id?: string; status?: string; error?: { code: string; details: Record<string, unknown> } } };
    };
    reuseScenarios(() => ({
      async post(pipeline, body, via) {
        const r = await call('POST', `/api/pipelines/${pipeline}/requests`, via, body);
        return { status: r.status, id: r.body.id, code: r.body.error?.code, details: r.body.error?.details, existing: r.headers.get('x-conveyor-existing-request') === 'true' };
      },
      async status(id) {
        return (await call('GET', `/api/requests/${id}`, 0)).body.status!;
      },
      async stop(id) {
        expect((await call('POST', `/api/requests/${id}/stop`, 1, {})).status).to.equal(200);
      },
      async count(pipeline, k) {
        const [rows] = await (await db.sql()).query('SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = ? AND business_key = ?', [pipeline, k]);
        return Number((rows as Array<{ n: unknown }>)[0]!.n);
      },
    }));
  });
});
