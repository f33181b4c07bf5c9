/**
 * `GET /api/requests` and `GET /api/steps` (DESIGN.md "HTTP API"): filters, newest-first
 * order, cursor pages without gaps or repeats, strict parameters, and SQL metacharacters
 * that stay plain text. Runs on SQLite and on MariaDB.
 */
import { expect } from 'chai';
import { ErrorCodes } from '../../src/errors';
import type { ErrorBody, TestEngine } from '../support/engine';
import { createMysqlDatabase, OPS_SECRET, startOpsEngine, submitMix, type Mix } from './support';

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
interface RequestItem {
  id: string;
  pipeline: string;
  status: string;
  businessKey: string | null;
  test: boolean;
  createdAt: string;
  context?: unknown;
}
interface StepItem {
  id: string;
  requestId: string;
  stepId: string;
  attempt: number;
  status: string;
  transport: string;
  params: Record<string, unknown>;
  error: { message: string } | null;
  startedAt: string;
}

const q = (params: Record<string, string | number>): string => new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();

function searchSuite(dialect: 'sqlite' | 'mysql'): void {
  describe(`search on ${dialect}`, function () {
    this.timeout(60_000);
    let t: TestEngine;
    let mix: Mix;
    let dropDb: (() => Promise<void>) | undefined;

    before(async () => {
      let databaseUrl: string | undefined;
      if (dialect === 'mysql') {
        const db = await createMysqlDatabase();
        databaseUrl = db.url;
        dropDb = db.drop;
      }
      t = await startOpsEngine({ databaseUrl, listen: false });
      mix = await submitMix(t);
    });
    after(async () => {
      await t?.close();
      await dropDb?.();
    });

    const requests = (params: Record<string, string | number> = {}, key?: string) => t.api<Page<RequestItem>>('GET', `/api/requests?${q(params)}`, { key });
    const steps = (params: Record<string, string | number> = {}) => t.api<Page<StepItem>>('GET', `/api/steps?${q(params)}`);

    it('lists requests newest first as { items, nextCursor }, without context', async () => {
      const res = await requests();
      expect(res.status).to.equal(200);
      expect(res.body.nextCursor).to.equal(null);
      expect(res.body.items.map((r) => r.id)).to.deep.equal([...mix.all].reverse());
      expect(res.body.items[0]).to.not.have.property('context');
      expect(res.body.items[0]).to.include.keys('id', 'pipeline', 'version', 'status', 'businessKey', 'test', 'error', 'createdAt', 'updatedAt', 'finishedAt');
    });

    it('filters requests by pipeline, status, business key and test flag', async () => {
      expect((await requests({ pipeline: 'greet' })).body.items.map((r) => r.id)).to.deep.equal([...mix.greet].reverse());
      expect((await requests({ status: 'error_stop' })).body.items.map((r) => r.id)).to.deep.equal([...mix.failed].reverse());
      expect((await requests({ pipeline: 'orders', status: 'completed' })).body.items).to.have.length(7);
      expect((await requests({ businessKey: 'order-1' })).body.items.map((r) => r.id)).to.deep.equal([mix.standard[1]]);
      expect((await requests({ test: 1 })).body.items.map((r) => r.id)).to.deep.equal(mix.test);
      expect((await requests({ test: 0 })).body.items).to.have.length(mix.all.length - 1);
      expect((await requests({ pipeline: 'orders', status: 'error_stop', businessKey: 'order-gone-0' })).body.items.map((r) => r.id)).to.deep.equal([mix.failed[0]]);
    });

    it('filters requests by time: since is inclusive, until exclusive', async () => {
      const all = (await requests()).body.items;
      const pivot = all.find((r) => r.id === mix.flaky[0])!;
      const since = (await requests({ since: pivot.createdAt })).body.items;
      expect(since.map((r) => r.id)).to.include(pivot.id);
      expect(since.every((r) => r.createdAt >= pivot.createdAt)).to.equal(true);
      const until = (await requests({ until: pivot.createdAt })).body.items;
      expect(until.map((r) => r.id)).to.not.include(pivot.id);
      expect(until.every((r) => r.createdAt < pivot.createdAt)).to.equal(true);
      expect(since.length + until.length).to.equal(all.length);
      const ms = Date.parse(pivot.createdAt);
      expect((await requests({ since: ms, until: ms + 1 })).body.items.map((r) => r.id)).to.include(pivot.id);
    });

    it('pages through every request with the cursor, with no gap and no repeat', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: { status: number; body: Page<RequestItem> } = await requests({ limit: 3, ...(cursor ? { cursor } : {}) });
        expect(res.status).to.equal(200);
        expect(res.body.items.length).to.be.at.most(3);
        seen.push(...res.body.items.map((r) => r.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 20);
      expect(seen).to.deep.equal([...mix.all].reverse());
      expect(pages).to.equal(Math.ceil(mix.all.length / 3));
    });

    it('keeps the filters on every page', async () => {
      const first = await requests({ pipeline: 'orders', limit: 2 });
      const second = await requests({ pipeline: 'orders', limit: 2, cursor: first.body.nextCursor! });
      expect([...first.body.items, ...second.body.items].every((r) => r.pipeline === 'orders')).to.equal(true);
      expect(second.body.items[0]!.id < first.body.items[1]!.id).to.equal(true);
    });

    it('lists step attempts across requests, filtered by pipeline, step and status', async () => {
      const failed = await steps({ pipeline: 'orders', step: 'check-order', status: 'failed' });
      expect(failed.status).to.equal(200);
      // The flaky request's first attempt, and one attempt of each non-retryable failure.
      expect(failed.body.items).to.have.length(3);
      const flaky = failed.body.items.find((s) => s.requestId === mix.flaky[0])!;
      expect(flaky).to.include({ stepId: 'check-order', attempt: 1, status: 'failed', transport: 'event' });
      expect(flaky.error!.message).to.equal('stock service busy');
      const express = await steps({ pipeline: 'orders', step: 'ship-express' });
      expect(express.body.items.map((s) => s.requestId).sort()).to.deep.equal([...mix.express].sort());
      const greet = await steps({ pipeline: 'greet' });
      expect(greet.body.items.map((s) => s.requestId)).to.deep.equal([...mix.greet].reverse());
      const all = await steps({ limit: 500 });
      const startedAt = all.body.items.map((s) => s.startedAt);
      expect(startedAt).to.deep.equal([...startedAt].sort().reverse());
    });

    it('never shows a secret in the params of a step attempt', async () => {
      const res = await steps({ pipeline: 'orders', step: 'check-order', limit: 500 });
      expect(res.body.items.length).to.be.greaterThan(5);
      expect(res.text).to.not.include(OPS_SECRET);
      expect(res.body.items[0]!.params.apiToken).to.match(/REDACTED|\*\*\*/);
    });

    it('pages through step attempts with the cursor', async () => {
      const all = (await steps({ limit: 500 })).body.items.map((s) => s.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { body: Page<StepItem> } = await steps({ limit: 4, ...(cursor ? { cursor } : {}) });
        seen.push(...res.body.items.map((s) => s.id));
        cursor = res.body.nextCursor;
      } while (cursor && seen.length < 1000);
      expect(seen).to.deep.equal(all);
    });

    const bad: Array<[string, Record<string, string>, string]> = [
      ['/api/requests', { limit: '0' }, 'limit'],
      ['/api/requests', { limit: '501' }, 'limit'],
      ['/api/requests', { limit: '10abc' }, 'limit'],
      ['/api/requests', { status: 'done' }, 'status'],
      ['/api/requests', { test: 'yes' }, 'test'],
      ['/api/requests', { since: 'yesterday' }, 'since'],
      ['/api/requests', { until: '2025-13-45T99:00:00Z' }, 'until'],
      ['/api/requests', { cursor: 'not-a-cursor' }, 'cursor'],
      ['/api/requests', { cursor: Buffer.from('[1,"x\' OR 1=1"]').toString('base64url') }, 'cursor'],
      ['/api/requests', { pipelines: 'orders' }, 'pipelines'],
      ['/api/requests', { businessKey: 'x'.repeat(256) }, 'businessKey'],
      ['/api/steps', { status: 'error_stop' }, 'status'],
      ['/api/steps', { step: 'a\u0000b' }, 'step'],
      ['/api/steps', { businessKey: 'k' }, 'businessKey'],
    ];
    for (const [route, params, param] of bad) {
      it(`answers 400 naming "${param}" for ${route}?${q(params).slice(0, 60)}`, async () => {
        const res = await t.api<ErrorBody>('GET', `${route}?${q(params)}`);
        expect(res.status).to.equal(400);
        expect(res.body.error.code).to.equal(ErrorCodes.BAD_PARAM);
        expect(res.body.error.message).to.match(new RegExp(`^${param}: `));
        expect(res.body.error.details).to.deep.equal({ param });
      });
    }

    it('answers 400 for a parameter given twice', async () => {
      const res = await t.api<ErrorBody>('GET', '/api/requests?status=running&status=completed');
      expect(res.status).to.equal(400);
      expect(res.body.error.details).to.deep.equal({ param: 'status' });
    });

    it('treats SQL metacharacters as plain text', async () => {
      const before = await t.countRows();
      for (const value of ["orders' OR '1'='1", 'orders"; DROP TABLE requests; --', '%', '_', "\\' OR 1=1 #", 'orders/*', 'ORDERS']) {
        for (const name of ['pipeline', 'businessKey']) {
          const res = await requests({ [name]: value });
          expect(res.status, `${name}=${value}`).to.equal(200);
          expect(res.body.items, `${name}=${value}`).to.deep.equal([]);
        }
        const res = await steps({ pipeline: 'orders', step: value });
        expect(res.status).to.equal(200);
        expect(res.body.items).to.deep.equal([]);
      }
      expect(await t.countRows()).to.deep.equal(before);
    });

    it('lists everything with the read role, only the caller\'s own requests without it (none here); the step search needs read', async () => {
      expect((await requests({}, t.keys.read)).status).to.equal(200);
      const own = await requests({}, t.keys.submit);
      expect(own.status).to.equal(200);
      expect(own.body.items).to.deep.equal([]);
      expect((await t.api('GET', '/api/steps', { key: t.keys.submit })).status).to.equal(403);
      expect((await t.api('GET', '/api/steps', { key: null })).status).to.equal(401);
    });
  });
}

searchSuite('sqlite');
searchSuite('mysql');
