/**
 * End-of-request callbacks (docs/intake.md): a request's `callbackUrl` (query, header, or the
 * pipeline's `intake.callbackUrl`) gets a signed POST when the request ends, retried with
 * backoff until a 2xx, and owed durably: a callback not yet delivered when the engine stops
 * is delivered by the next engine on the same database.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { verifyBody } from '../../src/intake/signature';
import type { TestEngine } from '../support/engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { INTAKE_FIXTURES, startIntakeEngine, startReceiver, until, type Receiver } from './helpers';

interface Delivered {
  event: string;
  request: { id: string; status: string; pipeline: string; context: Record<string, unknown>; error: unknown };
}

describe('intake: callbacks when a request ends', function () {
  this.timeout(30_000);
  let rx: Receiver;
  let t: TestEngine;
  before(async () => {
    rx = await startReceiver();
    t = await startIntakeEngine({ engine: { intake: { callbacks: { backoffMs: 100, attempts: 3, timeoutMs: 2000 } } } });
  });
  after(async () => {
    await t.close();
    await rx.close();
    cleanupTmpDirs();
  });
  beforeEach(() => {
    rx.hits.length = 0;
    rx.script.length = 0;
  });

  const hitsFor = (id: string) => rx.hits.filter((h) => h.headers['x-conveyor-request-id'] === id);

  it('POSTs the ended request to ?callbackUrl=, signed with X-Conveyor-Signature', async () => {
    const r = await t.api<{ id: string }>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(`${rx.url}/done`)}`, { body: { n: 1 } });
    expect(r.status).to.equal(202);
    const [hit] = await until('the callback', async () => (hitsFor(r.body.id).length > 0 ? hitsFor(r.body.id) : undefined));
    const body = JSON.parse(hit!.body) as Delivered;
    expect(body.event).to.equal('request.finished');
    expect(body.request).to.include({ id: r.body.id, status: 'completed', pipeline: 'in-plain' });
    expect(body.request.context).to.have.property('work');
    expect(hit!.headers['x-conveyor-event']).to.equal('request.finished');
    const sig = String(hit!.headers['x-conveyor-signature']);
    expect(verifyBody(t.engine.intake.callbackSecret, hit!.body, sig)).to.equal(true);
    expect(verifyBody(t.engine.intake.callbackSecret, hit!.body.replace('completed', 'stopped'), sig), 'a tampered body').to.equal(false);
    expect(verifyBody('another-secret', hit!.body, sig)).to.equal(false);
  });

  it('reports error_stop too, to the X-Callback-Url header', async () => {
    const r = await t.api<{ id: string }>('POST', '/api/pipelines/in-plain/requests', { body: { fail: true }, headers: { 'x-callback-url': `${rx.url}/hook` } });
    const [hit] = await until('the callback', async () => (hitsFor(r.body.id).length > 0 ? hitsFor(r.body.id) : undefined));
    const body = JSON.parse(hit!.body) as Delivered;
    expect(body.request.status).to.equal('error_stop');
    expect(body.request.error).to.include({ stepId: 'work' });
  });

  it('retries with backoff until the receiver answers 2xx (500, 500, then 200)', async () => {
    rx.script.push(500, 500);
    const r = await t.api<{ id: string }>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(rx.url)}`, { body: { n: 2 } });
    await until('three attempts', async () => (hitsFor(r.body.id).length >= 3 ? true : undefined));
    const hits = hitsFor(r.body.id);
    expect(hits[1]!.at - hits[0]!.at).to.be.at.least(90);
    expect(hits[2]!.at - hits[1]!.at).to.be.at.least(190);
    const cols = await until('the delivery to be recorded', async () => {
      const c = await t.engine.store.intake.columns(r.body.id);
      return c?.callbackDue === null ? c : undefined;
    });
    expect(cols).to.include({ callbackAttempts: 3, callbackError: null, callbackDue: null });
    await new Promise((res) => setTimeout(res, 400));
    expect(hitsFor(r.body.id), 'nothing after the 2xx').to.have.length(3);
  });

  it('gives up after the configured attempts and records why', async () => {
    rx.script.push(503, 503, 503, 503);
    const r = await t.api<{ id: string }>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(rx.url)}`, { body: { n: 3 } });
    const cols = await until('giving up', async () => {
      const c = await t.engine.store.intake.columns(r.body.id);
      return c && c.callbackAttempts === 3 && c.callbackDue === null ? c : undefined;
    });
    expect(cols.callbackError).to.equal('the callback URL answered 503');
    expect(hitsFor(r.body.id)).to.have.length(3);
  });

  it('refuses a callbackUrl that is not an absolute http(s) URL (400, nothing stored)', async () => {
    const before = await t.countRows();
    const r = await t.api<{ error: { code: string } }>('POST', '/api/pipelines/in-plain/requests?callbackUrl=ftp://x/y', { body: {} });
    expect(r.status).to.equal(400);
    expect(r.body.error.code).to.equal('CONVEYOR_ERR_BAD_PARAM');
    expect((await t.countRows()).requests).to.equal(before.requests);
  });

  it("uses the pipeline's intake.callbackUrl, and delivers what is owed after a restart", async () => {
    const dir = tmpDir('callbacks');
    const pipelines = path.join(dir, 'pipelines');
    fs.mkdirSync(pipelines);
    fs.writeFileSync(path.join(pipelines, 'cb.pipeline.json'), JSON.stringify({
      id: 'cb', start: 'work', intake: { callbackUrl: `${rx.url}/pipeline-hook` }, steps: { work: { subsystem: 'in-work' } },
    }));
    const db = `sqlite:${path.join(dir, 'conveyor.db')}`;
    const opts = { databaseUrl: db, pipelinesDir: pipelines, modulesDir: path.join(INTAKE_FIXTURES, 'modules') };
    // The receiver is down for the first engine's attempts (answers 500; the backoff is long).
    const first = await startIntakeEngine({ ...opts, engine: { intake: { callbacks: { backoffMs: 60_000, attempts: 5 } } } });
    rx.script.push(500);
    const r = await first.api<{ id: string }>('POST', '/api/pipelines/cb/requests?wait=5', { body: { n: 4 } });
    expect(r.status).to.equal(200);
    await until('the failed attempt', async () => ((await first.engine.store.intake.columns(r.body.id))?.callbackAttempts === 1 ? true : undefined));
    await first.close();
    expect(hitsFor(r.body.id)).to.have.length(1);
    // Make the retry due now, as if the backoff had passed while no engine ran.
    const second = await startIntakeEngine({ ...opts, engine: { intake: { callbacks: { backoffMs: 100 } } } });
    try {
      await second.engine.store.query('UPDATE requests SET callback_due = ? WHERE id = ?', [Date.now(), r.body.id]);
      await until('the owed callback', async () => (hitsFor(r.body.id).length >= 2 ? true : undefined));
      const hit = hitsFor(r.body.id)[1]!;
      expect(JSON.parse(hit.body).request.status).to.equal('completed');
      expect(verifyBody(second.engine.intake.callbackSecret, hit.body, String(hit.headers['x-conveyor-signature']))).to.equal(true);
    } finally {
      await second.close();
    }
  });
});
