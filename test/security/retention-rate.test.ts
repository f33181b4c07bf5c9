import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KeyRateLimiter, parseRate } from '../../src/api/rate-limit';
import { pruneOnce } from '../../src/housekeeping/retention';
import { startTestEngine, type TestEngine } from '../support/engine';
import { tmpDir } from '../support/tmp';

describe('retention: old finished requests are pruned in batches, with their step logs', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
  });
  after(() => t?.close());

  it('deletes completed requests older than the age, keeps recent ones and error_stop, and can archive first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/hello/requests?wait=5', { body: { name: `n${i}` } });
      expect(res.body.status).to.equal('completed');
      ids.push(res.body.id);
    }
    // Age five of them, and mark one of those as error_stop (kept: it waits for an operator).
    const old = ids.slice(0, 5);
    await t.engine.store.query(`UPDATE requests SET finished_at = ? WHERE id IN (${old.map(() => '?').join(',')})`, [Date.now() - 40 * 86_400_000, ...old]);
    await t.engine.store.query("UPDATE requests SET status = 'error_stop' WHERE id = ?", [old[0]]);
    const archived: string[] = [];
    const n = await pruneOnce(t.engine.store, { maxAgeMs: 30 * 86_400_000, batchSize: 2, beforeDelete: async (batch) => void archived.push(...batch) });
    expect(n).to.equal(4);
    expect(archived.sort()).to.deep.equal(old.slice(1).sort());
    for (const id of old.slice(1)) {
      expect((await t.api('GET', `/api/requests/${id}`)).status).to.equal(404);
      expect(await t.engine.store.listStepRuns(id)).to.deep.equal([]);
    }
    for (const id of [old[0]!, ...ids.slice(5)]) expect((await t.api('GET', `/api/requests/${id}`)).status).to.equal(200);
  });

  it('archives to NDJSON from the prune command shape (request + steps per line)', async () => {
    const dir = tmpDir('archive');
    const file = path.join(dir, 'a.ndjson');
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/hello/requests?wait=5', { body: { name: 'arch' } });
    await t.engine.store.query('UPDATE requests SET finished_at = ? WHERE id = ?', [Date.now() - 2 * 86_400_000, res.body.id]);
    const { createWriteStream } = await import('node:fs');
    const out = createWriteStream(file);
    await pruneOnce(t.engine.store, {
      maxAgeMs: 86_400_000,
      beforeDelete: async (batch) => {
        for (const id of batch) out.write(`${JSON.stringify(await t.engine.getRequest(id))}\n`);
      },
    });
    await new Promise<void>((r) => out.end(() => r()));
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { request: { id: string }; runs: unknown[] });
    expect(lines.map((l) => l.request.id)).to.include(res.body.id);
    expect(lines.find((l) => l.request.id === res.body.id)!.runs).to.have.length(1);
  });
});

describe('per-key submit rate limit', () => {
  it('parses rates and refuses nonsense', () => {
    expect(parseRate('100/1s')).to.deep.equal({ max: 100, perMs: 1000 });
    expect(parseRate('5/1m')).to.deep.equal({ max: 5, perMs: 60_000 });
    for (const bad of ['100', 'x/1s', '0/1s', '10/forever']) expect(() => parseRate(bad), bad).to.throw(/rate must look like/);
  });

  it('lets a burst of max through, then refuses until tokens refill, per key', () => {
    const l = new KeyRateLimiter({ max: 3, perMs: 1000 });
    expect([0, 1, 2].map(() => l.take('a', 1, 0))).to.deep.equal([0, 0, 0]);
    expect(l.take('a', 1, 0)).to.be.greaterThan(0);
    expect(l.take('b', 1, 0)).to.equal(0);
    expect(l.take('a', 1, 400)).to.equal(0); // 1.2 tokens refilled
  });

  it('answers 429 with Retry-After over the HTTP API when CONVEYOR_SUBMIT_RATE is set', async () => {
    const t = await startTestEngine({ env: { CONVEYOR_SUBMIT_RATE: '3/10s' }, listen: false });
    try {
      const statuses: number[] = [];
      let retryAfter: string | undefined;
      for (let i = 0; i < 5; i++) {
        const r = await t.api<{ error?: { code: string } }>('POST', '/api/pipelines/hello/requests', { body: {} });
        statuses.push(r.status);
        if (r.status === 429) {
          expect(r.body.error?.code).to.equal('CONVEYOR_ERR_RATE_LIMITED');
          retryAfter = r.headers['retry-after'];
        }
      }
      expect(statuses).to.deep.equal([202, 202, 202, 429, 429]);
      expect(Number(retryAfter)).to.be.greaterThan(0);
      // Another key has its own bucket.
      expect((await t.api('POST', '/api/pipelines/hello/requests', { body: {}, key: t.keys.submit })).status).to.equal(202);
    } finally {
      await t.close();
    }
  });
});
