/**
 * `Idempotency-Key` (docs/intake.md): the same key on the same pipeline within the window
 * names the same request (200, same id, nothing new stored); the same key with another body
 * is a 422; after the window the key names a new request. Keys never fail a group commit:
 * 30 concurrent submits with one key store exactly one request, while plain requests batched
 * with them are stored too.
 */
import { expect } from 'chai';
import type { ErrorBody, TestEngine } from '../support/engine';
import { rowsOf, sleep, startIntakeEngine } from './helpers';

describe('intake: Idempotency-Key', function () {
  this.timeout(20_000);
  let t: TestEngine;
  before(async () => {
    t = await startIntakeEngine();
  });
  after(() => t.close());

  const submit = (body: unknown, key?: string) =>
    t.api<{ id: string; status: string }>('POST', '/api/pipelines/in-plain/requests', { body, headers: key ? { 'idempotency-key': key } : {} });

  it('answers a repeat with 200 and the same request, and stores nothing new', async () => {
    const first = await submit({ order: 1, items: [1, 2] }, 'order-1');
    expect(first.status).to.equal(202);
    const before = (await rowsOf(t, 'in-plain')).length;
    // Same body with keys in another order: the same JSON value.
    const again = await submit({ items: [1, 2], order: 1 }, 'order-1');
    expect(again.status).to.equal(200);
    expect(again.headers['idempotent-replayed']).to.equal('true');
    expect(again.body.id).to.equal(first.body.id);
    expect((await rowsOf(t, 'in-plain')).length).to.equal(before);
  });

  it('refuses the same key with a different body: 422 naming the first request', async () => {
    const first = await submit({ order: 2 }, 'order-2');
    const other = await t.api<ErrorBody>('POST', '/api/pipelines/in-plain/requests', { body: { order: 3 }, headers: { 'idempotency-key': 'order-2' } });
    expect(other.status).to.equal(422);
    expect(other.body.error.code).to.equal('CONVEYOR_ERR_IDEMPOTENCY_MISMATCH');
    expect(other.body.error.details).to.deep.equal({ id: first.body.id });
  });

  it('scopes keys to the pipeline: the same key on another pipeline is another request', async () => {
    const a = await submit({ x: 1 }, 'shared-key');
    const b = await t.api<{ id: string }>('POST', '/api/pipelines/in-rate/requests', { body: { x: 1 }, headers: { 'idempotency-key': 'shared-key' } });
    expect(b.status).to.equal(202);
    expect(b.body.id).to.not.equal(a.body.id);
  });

  it('lets a key name a new request once its window (2 s here) has passed', async () => {
    const first = await submit({ v: 1 }, 'windowed');
    await sleep(2100);
    const later = await submit({ v: 2 }, 'windowed');
    expect(later.status).to.equal(202);
    expect(later.body.id).to.not.equal(first.body.id);
    const again = await submit({ v: 2 }, 'windowed');
    expect(again.status).to.equal(200);
    expect(again.body.id).to.equal(later.body.id);
  });

  it('stores exactly one request for 30 concurrent submits with one key, and the plain ones beside them', async () => {
    const before = (await rowsOf(t, 'in-plain')).length;
    const keyed = Array.from({ length: 30 }, () => submit({ burst: true }, 'burst-key'));
    const plain = Array.from({ length: 20 }, (_, i) => submit({ plain: i }));
    const [k, p] = await Promise.all([Promise.all(keyed), Promise.all(plain)]);
    const ids = new Set(k.map((r) => r.body.id));
    expect(ids.size).to.equal(1);
    expect(k.filter((r) => r.status === 202)).to.have.length(1);
    expect(k.filter((r) => r.status === 200)).to.have.length(29);
    expect(p.every((r) => r.status === 202)).to.equal(true);
    expect((await rowsOf(t, 'in-plain')).length).to.equal(before + 1 + 20);
  });

  it('validates the header: printable ASCII, at most 255 characters', async () => {
    const r = await t.api<ErrorBody>('POST', '/api/pipelines/in-plain/requests', { body: {}, headers: { 'idempotency-key': 'x'.repeat(256) } });
    expect(r.status).to.equal(400);
    expect(r.body.error.code).to.equal('CONVEYOR_ERR_BAD_PARAM');
  });
});
