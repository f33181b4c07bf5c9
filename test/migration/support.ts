/**
 * Helpers of the migration tests: the fixture pipelines' version 2 (registered at run time,
 * as a changed file would be at the next start), and small polls over the store.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { compilePipeline } from '../../src/pipeline/compile';
import type { TestEngine } from '../support/engine';
import moveWaitV2 from './fixtures/pipelines-v2/move-wait.pipeline';

export const FIXTURES = path.join(__dirname, 'fixtures');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `move-wait` v2 (the file a second engine loads in the two-process test). */
export const MOVE_WAIT_V2 = moveWaitV2 as unknown as Record<string, unknown>;

/** `move-work` v2: `work` renamed `do_work`, `extra` added after it. */
export const MOVE_WORK_V2 = {
  id: 'move-work',
  start: 'do_work',
  steps: {
    do_work: { subsystem: 'latch', params: { n: '{{ payload.n }}' }, next: ['extra'] },
    extra: { kind: 'setData', data: { v: 2 }, prev: ['do_work'], next: ['done'] },
    done: { kind: 'setData', data: { result: '{{ do_work.n }}' }, prev: ['extra'] },
  },
};

/** Registers a new version of a pipeline in the running engine; returns its number. */
export async function registerVersion(t: TestEngine, def: Record<string, unknown>): Promise<number> {
  const res = compilePipeline(def, { source: `pipelines/${String(def.id)}`, modules: t.engine.registry.names() });
  expect(res.issues).to.deep.equal([]);
  await t.engine.catalog.register([res.pipeline!]);
  return t.engine.catalog.latest(String(def.id))!.version;
}

export async function scalar(t: TestEngine, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await t.engine.store.query<{ n: unknown }>(sql, params);
  return Number(row?.n ?? 0);
}

/** Polls until `sql` counts `n` (or more). */
export async function untilCount(t: TestEngine, sql: string, params: unknown[], n: number, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await scalar(t, sql, params);
    if (got >= n) return;
    if (Date.now() > end) throw new Error(`${sql}: ${got} of ${n}`);
    await sleep(25);
  }
}

export interface MigrationBody {
  id: string;
  status: string;
  counts: { total: number; migrated: number; refused: number; left: number };
  refusals: Array<{ requestId: string; problems: Array<{ path: string; message: string }> }>;
}

/** Polls `GET /api/migrations/:id` until it is no longer running. */
export async function untilMigrationEnds(t: TestEngine, id: string, ms = 120_000): Promise<MigrationBody> {
  const end = Date.now() + ms;
  for (;;) {
    const res = await t.api<MigrationBody>('GET', `/api/migrations/${id}`);
    expect(res.status, res.text).to.equal(200);
    if (res.body.status !== 'running') return res.body;
    if (Date.now() > end) throw new Error(`migration ${id} still running: ${res.text}`);
    await sleep(25);
  }
}
