/**
 * One active request per business key (DESIGN "Request and step states"; seed 000). The key
 * is the `X-Business-Key` header or `payload.sku` here. Each policy is shown once calmly and
 * once under 50 concurrent submits with the same key.
 */
import { expect } from 'chai';
import type { ErrorBody, TestEngine } from '../support/engine';
import { firstStarts, rowsOf, startIntakeEngine, until } from './helpers';

type Accepted = { id: string; status: string };

describe('intake: business keys', function () {
  this.timeout(60_000);
  let t: TestEngine;
  before(async () => {
    t = await startIntakeEngine();
  });
  after(() => t.close());

  const submit = (pipeline: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.api<Accepted>('POST', `/api/pipelines/${pipeline}/requests`, { body, headers });
  const ended = (pipeline: string, sku: string, n: number) =>
    until(`${n} ${sku} requests to end`, async () => {
      const rows = (await rowsOf(t, pipeline)).filter((r) => r.business_key === sku);
      return rows.length === n && rows.every((r) => r.status === 'completed') ? rows : undefined;
    }, 40_000);

  describe('reject', () => {
    it('answers 409 with the active request id while the key is held, and accepts once it ended', async () => {
      const first = await submit('in-key-reject', { sku: 'R-1', ms: 400 });
      expect(first.status).to.equal(202);
      const second = await t.api<ErrorBody>('POST', '/api/pipelines/in-key-reject/requests', { body: { sku: 'R-1' } });
      expect(second.status).to.equal(409);
      expect(second.body.error.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_ACTIVE');
      expect(second.body.error.details).to.deep.equal({ activeId: first.body.id, businessKey: 'R-1' });
      await ended('in-key-reject', 'R-1', 1);
      const third = await submit('in-key-reject', { sku: 'R-1' });
      expect(third.status).to.equal(202);
      // Another key is independent.
      expect((await submit('in-key-reject', { sku: 'R-2' })).status).to.equal(202);
    });

    it('50 concurrent submits with one key: exactly one is accepted, 49 get 409 naming it', async () => {
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => t.api<Accepted & ErrorBody>('POST', '/api/pipelines/in-key-reject/requests', { body: { i, ms: 3000 }, headers: { 'x-business-key': 'R-50' } })));
      const ok = all.filter((r) => r.status === 202);
      expect(ok).to.have.length(1);
      const refused = all.filter((r) => r.status === 409);
      expect(refused).to.have.length(49);
      for (const r of refused) expect((r.body.error.details as { activeId: string }).activeId).to.equal(ok[0]!.body.id);
      expect((await rowsOf(t, 'in-key-reject')).filter((r) => r.business_key === 'R-50')).to.have.length(1);
    });
  });

  describe('return-existing', () => {
    it('50 concurrent submits with one key: one request, every answer names it', async () => {
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => submit('in-key-existing', { sku: 'E-50', i, ms: 3000 })));
      const ids = new Set(all.map((r) => r.body.id));
      expect(ids.size).to.equal(1);
      expect(all.filter((r) => r.status === 202)).to.have.length(1);
      const others = all.filter((r) => r.status === 200);
      expect(others).to.have.length(49);
      expect(others.every((r) => r.headers['x-conveyor-existing-request'] === 'true')).to.equal(true);
      expect((await rowsOf(t, 'in-key-existing')).filter((r) => r.business_key === 'E-50')).to.have.length(1);
    });
  });

  describe('queue', () => {
    it('50 concurrent submits with one key: all are stored, exactly one is active at any time, and they run one after another in arrival order', async () => {
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => submit('in-key-queue', { sku: 'Q-50', i, ms: 20 })));
      expect(all.every((r) => r.status === 202)).to.equal(true);
      expect(new Set(all.map((r) => r.body.id)).size).to.equal(50);
      // While they run: never more than one holds the key or runs.
      const seen: number[] = [];
      const watch = setInterval(() => {
        void rowsOf(t, 'in-key-queue').then((rows) => {
          const q = rows.filter((r) => r.business_key === 'Q-50');
          seen.push(Math.max(q.filter((r) => r.active_key !== null).length, q.filter((r) => r.status === 'running' || r.status === 'waiting').length));
        });
      }, 20);
      await ended('in-key-queue', 'Q-50', 50);
      clearInterval(watch);
      expect(Math.max(...seen), 'active at once').to.equal(1);
      // The last request gives its key back in the turn after it ends (the hand-over is a
      // transaction of its own), so that is waited for, not read at the instant of the end.
      const rows = await until('every Q-50 key given back and no request held', async () => {
        const q = (await rowsOf(t, 'in-key-queue')).filter((r) => r.business_key === 'Q-50');
        return q.every((r) => r.active_key === null && r.hold === null) ? q : undefined;
      }, 10_000);
      expect(rows).to.have.length(50);
      // Runs do not overlap: each starts after the one before it finished, in arrival order.
      const runs = await t.engine.store.query<{ request_id: string; started_at: number; finished_at: number }>(
        "SELECT request_id, started_at, finished_at FROM step_runs WHERE pipeline_id = 'in-key-queue' AND status = 'completed'",
      );
      const byId = new Map(runs.map((r) => [String(r.request_id), r]));
      const ordered = rows.map((r) => byId.get(r.id)!);
      for (let i = 1; i < ordered.length; i++) expect(Number(ordered[i]!.started_at)).to.be.at.least(Number(ordered[i - 1]!.finished_at));
    });

    it('a queued request waits as buffered with hold "key", and other keys are not held up', async () => {
      const a = await submit('in-key-queue', { sku: 'Q-A', ms: 500 });
      const b = await submit('in-key-queue', { sku: 'Q-A' });
      const c = await submit('in-key-queue', { sku: 'Q-B' });
      const rows = await rowsOf(t, 'in-key-queue');
      const row = (id: string) => rows.find((r) => r.id === id)!;
      expect(row(b.body.id).hold).to.equal('key');
      expect(row(b.body.id).status).to.equal('buffered');
      expect(row(a.body.id).active_key).to.equal('Q-A');
      await until('Q-B to complete', async () => ((await firstStarts(t, 'in-key-queue')).has(c.body.id) ? true : undefined), 5000);
      await ended('in-key-queue', 'Q-A', 2);
    });
  });

  it('repairs a key still held by a request that ended without giving it back (a crash in between)', async () => {
    for (const pipeline of ['in-key-reject', 'in-key-queue']) {
      const first = await submit(pipeline, { sku: 'S-1' });
      await ended(pipeline, 'S-1', 1);
      // What a process killed between committing the end and releasing the key leaves behind.
      await t.engine.store.query("UPDATE requests SET active_key = 'S-1' WHERE id = ?", [first.body.id]);
      const next = await submit(pipeline, { sku: 'S-1' });
      expect(next.status, pipeline).to.equal(202);
      const rows = (await rowsOf(t, pipeline)).filter((r) => r.business_key === 'S-1');
      expect(rows.find((r) => r.id === first.body.id)!.active_key).to.equal(null);
      await ended(pipeline, 'S-1', 2);
    }
  });

  it('an X-Business-Key that disagrees with payload.sku gets 422 and stores nothing; one that agrees, or a number written as its digits, is accepted', async () => {
    const before = (await rowsOf(t, 'in-key-reject')).length;
    const wrong = await t.api<ErrorBody>('POST', '/api/pipelines/in-key-reject/requests', { body: { sku: 'M-1' }, headers: { 'x-business-key': 'M-2' } });
    expect(wrong.status).to.equal(422);
    expect(wrong.body.error).to.deep.equal({
      code: 'CONVEYOR_ERR_BUSINESS_KEY_MISMATCH',
      message: 'X-Business-Key "M-2" disagrees with payload.sku "M-1": the key of this pipeline is the payload\'s value',
      details: { header: 'M-2', path: 'payload.sku', payload: 'M-1' },
    });
    // A value that cannot be a key (an object) disagrees with any header too.
    const odd = await t.api<ErrorBody>('POST', '/api/pipelines/in-key-reject/requests', { body: { sku: { id: 'M-1' } }, headers: { 'x-business-key': 'M-1' } });
    expect(odd.status).to.equal(422);
    expect((await rowsOf(t, 'in-key-reject')).length).to.equal(before);
    const same = await submit('in-key-reject', { sku: 'M-3' }, { 'x-business-key': 'M-3' });
    expect(same.status).to.equal(202);
    const numeric = await submit('in-key-reject', { sku: 4242 }, { 'x-business-key': '4242' });
    expect(numeric.status).to.equal(202);
    const rows = await rowsOf(t, 'in-key-reject');
    expect(rows.find((r) => r.id === same.body.id)!.business_key).to.equal('M-3');
    expect(rows.find((r) => r.id === numeric.body.id)!.business_key).to.equal('4242');
    expect(rows.some((r) => r.business_key === 'M-2' || r.business_key === 'M-1')).to.equal(false);
  });

  it('without a key (no header, no payload.sku) a request is not restricted', async () => {
    const all = await Promise.all(Array.from({ length: 3 }, () => submit('in-key-reject', { ms: 100 })));
    expect(all.every((r) => r.status === 202)).to.equal(true);
  });
});
