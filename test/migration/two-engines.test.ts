/**
 * A bulk migration across processes (MariaDB + Redis): an API process and two engine
 * processes share one database. The migration is claimed by one engine (a lease), which is
 * SIGKILLed mid-migration; the other resumes it from its cursor once the lease runs out. The
 * verdict is the final invariant, whoever did the work: every request is on exactly one
 * version (all on v2), each moved exactly once (one audit row, `rev` up by one), its waiting
 * run under the new step id, and the counts add up.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { compilePipeline } from '../../src/pipeline/compile';
import { canonicalJson } from '../../src/pipeline/hash';
import { SqlStore } from '../../src/store/store';
import { freePort } from '../support/ports';
import { requireMysql, requireRedis } from '../support/services';
import {
  cleanRedisPrefix, createTestDatabase, spawnConveyor, stopProc, uniquePrefix, waitFor, waitHealthy, type ConveyorProc, type TestDatabase,
} from '../fixtures/dist/harness';
import { FIXTURES, MOVE_WAIT_V2 } from './support';

const N = 300;

describe('request migration: two engine processes, one SIGKILLed mid-migration (MariaDB)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  let apiUrl: string;
  const procs: ConveyorProc[] = [];
  const key = `migrate-${randomBytes(8).toString('hex')}`;

  const api = async <T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${apiUrl}${p}`, {
      method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const count = async (sql: string, params: unknown[] = []): Promise<number> => {
    const [rows] = await (await db.sql()).query(sql, params);
    return Number((rows as Array<{ n: unknown }>)[0]?.n ?? 0);
  };

  before(async function () {
    this.timeout(180_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    db = await createTestDatabase(mysql, 'migrate2');
    prefix = uniquePrefix('migrate');
    const port = await freePort();
    const env = {
      REDIS_URL: redisUrl, DATABASE_URL: db.url, CONVEYOR_QUEUE_PREFIX: prefix, CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'),
      CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'), CONVEYOR_SWEEP_MS: '250', LOG_LEVEL: 'warn', CONVEYOR_API_KEYS: `${key}:admin`,
      CONVEYOR_MIGRATION_BATCH: '10', CONVEYOR_MIGRATION_PAUSE_MS: '150', CONVEYOR_MIGRATION_LEASE_MS: '1500', CONVEYOR_MIGRATION_POLL_MS: '100',
    };
    const apiProc = spawnConveyor('api', ['api'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
    procs.push(apiProc, spawnConveyor('engine-1', ['engine'], env), spawnConveyor('engine-2', ['engine'], env));
    apiUrl = `http://127.0.0.1:${port}`;
    await waitHealthy(apiUrl, apiProc, 120_000);
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(procs.splice(0).map((p) => stopProc(p, 'SIGTERM', 10_000)));
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  it('moves every request exactly once, and the surviving engine resumes the migration', async () => {
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, async (_v, j) => {
        const r = await api('POST', '/api/pipelines/move-wait/requests', { n: i + j, key: `k-${i + j}` });
        expect(r.status).to.equal(202);
      }));
    }
    await waitFor(`${N} requests waiting`, async () => (await count("SELECT COUNT(*) AS n FROM requests WHERE status = 'waiting'")) === N, 120_000, 100);
    // Version 2 is stored, as a changed file would be by the next engine to start.
    const compiled = compilePipeline(MOVE_WAIT_V2, { source: 'pipelines/move-wait', modules: new Set() }).pipeline!;
    const store = await SqlStore.open(db.url);
    const v2 = await store.ensurePipelineVersion('move-wait', compiled.hash, canonicalJson(compiled.definition));
    await store.close();
    const c = await db.sql();
    const [revRows] = await c.query('SELECT id, rev FROM requests');
    const revBefore = new Map((revRows as Array<{ id: string; rev: unknown }>).map((r) => [r.id, Number(r.rev)]));

    const started = await api<{ id: string }>('POST', '/api/pipelines/move-wait/migrations', { fromVersion: 1, plan: { toVersion: v2, mapping: { wait: 'await_wake' } } });
    expect(started.status).to.equal(202);
    const id = started.body.id;
    const owner = await waitFor('a first batch', async () => {
      const [rows] = await c.query('SELECT owner, migrated FROM request_migrations WHERE id = ?', [id]);
      const row = (rows as Array<{ owner: string | null; migrated: unknown }>)[0];
      return row && row.owner && Number(row.migrated) > 0 ? row.owner : undefined;
    }, 60_000, 20);
    const victim = procs.find((p) => owner.startsWith(`${p.pid}-`));
    expect(victim, `the owner ${owner} is one of the engines`).to.not.equal(undefined);
    victim!.child.kill('SIGKILL');
    await victim!.exited;

    await waitFor('the migration to end', async () => (await count("SELECT COUNT(*) AS n FROM request_migrations WHERE id = ? AND status = 'done'", [id])) === 1, 120_000, 100);
    const done = await api<{ counts: Record<string, number>; status: string }>('GET', `/api/migrations/${id}`);
    expect(done.body.counts).to.deep.equal({ total: N, migrated: N, refused: 0, left: 0 });
    expect(await count('SELECT COUNT(*) AS n FROM requests WHERE version = ?', [v2])).to.equal(N);
    expect(await count("SELECT COUNT(*) AS n FROM (SELECT request_id FROM audit_events WHERE action = 'migrate' GROUP BY request_id HAVING COUNT(*) > 1) d")).to.equal(0);
    expect(await count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'migrate'")).to.equal(N);
    expect(await count("SELECT COUNT(*) AS n FROM step_runs WHERE step_id = 'await_wake' AND status = 'waiting'")).to.equal(N);
    expect(await count("SELECT COUNT(*) AS n FROM step_runs WHERE step_id = 'wait'")).to.equal(0);
    const [after] = await c.query('SELECT id, rev FROM requests');
    for (const r of after as Array<{ id: string; rev: unknown }>) expect(Number(r.rev), r.id).to.equal(revBefore.get(r.id)! + 1);
  });
});
