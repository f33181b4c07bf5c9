import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { signCallback } from '../../src/http/callback-token';
import { startTestEngine, type TestEngine } from '../support/engine';
import { pollUntil } from '../support/poll';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'callback');

interface Call { callbackUrl: string; idempotencyKey: string; attempt: number; params: { sku: string } }

/** A remote module that answers 202 and keeps the call, so the test decides when to call back. */
async function startAsyncModule(): Promise<{ url: string; calls: Call[]; close(): Promise<void> }> {
  const calls: Call[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push(JSON.parse(body) as Call);
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/slow-job`,
    calls,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  return (await pollUntil(fn, (v) => v !== undefined && v !== false, { timeoutMs: ms, everyMs: 50, failure: () => 'condition not met in time' })) as T;
}

async function post(url: string, body: unknown): Promise<{ status: number; body: { error?: { code: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
}

describe('HTTP module protocol: 202 and callbacks', () => {
  let mod: Awaited<ReturnType<typeof startAsyncModule>>;
  let t: TestEngine;

  before(async () => {
    mod = await startAsyncModule();
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      modulesDir: path.join(FIXTURES, 'modules'),
      env: { SLOW_JOB_URL: mod.url, SLOW_JOB_CALLBACK_TIMEOUT: '1500ms' },
      engine: { supervisor: { sweepIntervalMs: 100 } },
    });
  });
  after(async () => {
    await t?.close();
    await mod?.close();
  });

  async function submit(sku: string): Promise<{ id: string; call: Call }> {
    const before = mod.calls.length;
    const res = await t.api<{ id: string }>('POST', '/api/pipelines/async-remote/requests', { body: { sku } });
    expect(res.status).to.equal(202);
    const call = await until(() => mod.calls.slice(before).find((c) => c.params.sku === sku));
    // The run is marked waiting once the 202 is seen.
    await until(async () => (await t.engine.store.listStepRuns(res.body.id)).some((r) => r.status === 'waiting') || undefined);
    return { id: res.body.id, call };
  }

  it('waits after a 202 and completes when the module posts {data} to the signed callback URL', async () => {
    const { id, call } = await submit('A-1');
    expect(call.callbackUrl).to.match(new RegExp(`^${t.url}/api/callbacks/[\\w-]+\\.[\\w-]+$`));
    const req = await t.api<{ status: string; currentSteps: Array<{ status: string }> }>('GET', `/api/requests/${id}`);
    expect(req.body.status).to.equal('running');
    expect(req.body.currentSteps[0]?.status).to.equal('waiting');

    const res = await post(call.callbackUrl, { data: { price: 42 } });
    expect(res.status).to.equal(200);
    expect(await t.engine.waitForEnd(id, 5000)).to.equal('completed');
    const steps = await t.engine.store.listStepRuns(id);
    expect(steps.map((s) => [s.stepId, s.status, s.transport])).to.deep.equal([
      ['slow-job', 'completed', 'http'],
      ['after', 'completed', 'engine'],
    ]);
    expect(steps[0]!.output).to.deep.equal({ price: 42 });
    expect(steps[1]!.output).to.deep.equal({ done: true, result: 42 }); // a whole-expression template keeps its type
  });

  it('refuses a duplicate callback with 409 and changes nothing', async () => {
    const { id, call } = await submit('A-2');
    expect((await post(call.callbackUrl, { data: { price: 1 } })).status).to.equal(200);
    await t.engine.waitForEnd(id, 5000);
    const before = await t.engine.store.listStepRuns(id);
    const dup = await post(call.callbackUrl, { data: { price: 999 } });
    expect(dup.status).to.equal(409);
    expect(dup.body.error?.code).to.equal('CONVEYOR_ERR_CALLBACK_CONFLICT');
    expect(await t.engine.store.listStepRuns(id)).to.deep.equal(before);
  });

  it('refuses a forged or altered token with 401 and changes nothing', async () => {
    const { id, call } = await submit('A-3');
    const [base, token] = call.callbackUrl.split('/api/callbacks/') as [string, string];
    const [body] = token.split('.');
    const forgedMac = `${base}/api/callbacks/${body}.${Buffer.alloc(32, 7).toString('base64url')}`;
    const wrongSecret = `${base}/api/callbacks/${signCallback('not-the-secret', { runId: 'x', attempt: 1, expiresAt: Date.now() + 60_000 })}`;
    for (const url of [forgedMac, wrongSecret, `${base}/api/callbacks/garbage`]) {
      const res = await post(url, { data: { price: 5 } });
      expect(res.status, url).to.equal(401);
      expect(res.body.error?.code).to.equal('CONVEYOR_ERR_CALLBACK_TOKEN');
    }
    const runs = await t.engine.store.listStepRuns(id);
    expect(runs.map((r) => r.status)).to.deep.equal(['waiting']);
    await post(call.callbackUrl, { data: { price: 5 } });
    expect(await t.engine.waitForEnd(id, 5000)).to.equal('completed');
  });

  it('refuses an expired token with 410', async () => {
    const expired = signCallback(t.engine.callbacks.secret, { runId: 'r', attempt: 1, expiresAt: Date.now() - 1 });
    const res = await post(`${t.url}/api/callbacks/${expired}`, { data: {} });
    expect(res.status).to.equal(410);
    expect(res.body.error?.code).to.equal('CONVEYOR_ERR_CALLBACK_EXPIRED');
  });

  it('rejects a callback body that is neither {data} nor {error}', async () => {
    const { call } = await submit('A-4');
    for (const body of [{}, { data: 1, error: {} }, [1]]) {
      expect((await post(call.callbackUrl, body)).status).to.equal(400);
    }
    await post(call.callbackUrl, { data: null });
  });

  it('fails the step for good when the callback reports a non-retryable error', async () => {
    const { id, call } = await submit('A-5');
    expect((await post(call.callbackUrl, { error: { message: 'sku unknown', code: 'SKU' } })).status).to.equal(200);
    expect(await t.engine.waitForEnd(id, 5000)).to.equal('error_stop');
    const req = await t.api<{ error: { code: string; message: string; stepId: string } }>('GET', `/api/requests/${id}`);
    expect(req.body.error).to.include({ code: 'SKU', message: 'sku unknown', stepId: 'slow-job' });
  });

  it('times the attempt out when no callback comes in time, retries it, and refuses the old token', async () => {
    const { id, call } = await submit('A-6');
    // callbackTimeout is 1.5 s: the sweeper fails attempt 1 (retryable) and attempt 2 is sent.
    const second = await until(() => mod.calls.find((c) => c.params.sku === 'A-6' && c.attempt === 2), 8000);
    expect(second.idempotencyKey).to.equal(call.idempotencyKey);
    const runs = await t.engine.store.listStepRuns(id);
    expect(runs[0]).to.include({ attempt: 1, status: 'failed' });
    expect((runs[0]!.error as { code: string }).code).to.equal('CONVEYOR_ERR_TIMEOUT');
    const late = await post(call.callbackUrl, { data: { price: 1 } });
    expect([409, 410]).to.include(late.status);
    expect((await post(second.callbackUrl, { data: { price: 2 } })).status).to.equal(200);
    expect(await t.engine.waitForEnd(id, 5000)).to.equal('completed');
  });
});
