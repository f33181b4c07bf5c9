import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Bus, type ModuleCall } from '../../src/bus/bus';
import type { RegisteredModule } from '../../src/module/registry';
import { HttpTransport } from '../../src/transports/http';
import { freePort } from '../support/ports';

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

/** A stand-in remote module: each test sets what it answers. */
function startModuleServer(): Promise<{ url: string; setHandler(h: Handler): void; received: unknown[]; close(): Promise<void> }> {
  let handler: Handler = (_req, _body, res) => res.end();
  const received: unknown[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      handler(req, body, res);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/module`,
        setHandler: (h) => (handler = h),
        received,
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

const call = (overrides: Partial<ModuleCall> = {}): ModuleCall => ({
  requestId: 'r1', pipeline: 'p', stepId: 's', runId: 'run1', attempt: 1, idempotencyKey: 'run1', test: false,
  module: 'remote', params: { a: 1 }, context: { payload: { x: 1 } }, timeoutMs: 2000, ...overrides,
});

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('HTTP transport (module protocol)', () => {
  let remote: Awaited<ReturnType<typeof startModuleServer>>;
  let transport: HttpTransport;
  let mod: RegisteredModule;

  before(async () => {
    remote = await startModuleServer();
    transport = new HttpTransport(new Bus());
    mod = { name: 'remote', transport: 'http', url: remote.url, source: 'test' };
  });
  after(async () => {
    await transport.close();
    await remote.close();
  });

  it('posts the protocol body with the idempotency key and takes data from a 200', async () => {
    remote.setHandler((req, _b, res) => json(res, 200, { data: { ok: true, key: req.headers['idempotency-key'] } }));
    const res = await transport.call(call(), mod);
    expect(res).to.deep.equal({ ok: true, output: { ok: true, key: 'run1' } });
    const sent = remote.received.at(-1) as Record<string, unknown>;
    expect(sent).to.include({ requestId: 'r1', pipeline: 'p', stepId: 's', attempt: 1, idempotencyKey: 'run1', test: false });
    expect(sent.params).to.deep.equal({ a: 1 });
    expect(sent.context).to.deep.equal({ payload: { x: 1 } });
    expect(sent).to.have.property('callbackUrl');
  });

  it('fails for good on a 4xx, quoting the remote message', async () => {
    remote.setHandler((_r, _b, res) => json(res, 422, { error: { message: 'email is invalid' } }));
    const res = await transport.call(call(), mod);
    expect(res.ok).to.equal(false);
    if (res.ok) return;
    expect(res.error.retryable).to.equal(false);
    expect(res.error.code).to.equal('CONVEYOR_ERR_HTTP_STATUS');
    expect(res.error.message).to.contain('422').and.contain('email is invalid');
  });

  it('fails retryably on a 5xx', async () => {
    remote.setHandler((_r, _b, res) => json(res, 503, { error: 'busy' }));
    const res = await transport.call(call(), mod);
    expect(res).to.deep.include({ ok: false });
    if (!res.ok) expect(res.error).to.include({ code: 'CONVEYOR_ERR_HTTP_STATUS', retryable: true });
  });

  it('treats 429 and 408 as retryable', async () => {
    for (const status of [429, 408]) {
      remote.setHandler((_r, _b, res) => json(res, status, {}));
      const res = await transport.call(call(), mod);
      if (res.ok) expect.fail('should fail');
      else expect(res.error.retryable, String(status)).to.equal(true);
    }
  });

  it('fails retryably with a timeout error when the module is too slow', async () => {
    remote.setHandler((_r, _b, res) => setTimeout(() => json(res, 200, { data: 1 }), 1500));
    const t0 = Date.now();
    const res = await transport.call(call({ timeoutMs: 200 }), mod);
    expect(Date.now() - t0).to.be.lessThan(1400);
    if (res.ok) expect.fail('should time out');
    else expect(res.error).to.include({ code: 'CONVEYOR_ERR_TIMEOUT', retryable: true });
  });

  it('fails retryably when the connection is refused', async () => {
    const port = await freePort();
    const res = await transport.call(call(), { ...mod, url: `http://127.0.0.1:${port}/nobody` });
    if (res.ok) expect.fail('should fail');
    else {
      expect(res.error).to.include({ code: 'CONVEYOR_ERR_HTTP_CONNECTION', retryable: true });
      expect(res.error.message).to.contain('ECONNREFUSED');
    }
  });

  it('fails for good when a 200 has no {data} body or is not JSON', async () => {
    for (const body of ['not json', '{"result": 1}']) {
      remote.setHandler((_r, _b, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      });
      const res = await transport.call(call(), mod);
      if (res.ok) expect.fail(`should reject ${body}`);
      else expect(res.error).to.include({ code: 'CONVEYOR_ERR_HTTP_BAD_RESPONSE', retryable: false });
    }
  });

  it('maps a 200 with {data: null} and a missing data value to null output', async () => {
    remote.setHandler((_r, _b, res) => json(res, 200, { data: null }));
    expect(await transport.call(call(), mod)).to.deep.equal({ ok: true, output: null });
  });

  it('fails retryably when the module closes the connection without answering', async () => {
    remote.setHandler((req) => req.socket.destroy());
    const res = await transport.call(call(), mod);
    if (res.ok) expect.fail('should fail');
    else expect(res.error).to.include({ code: 'CONVEYOR_ERR_HTTP_CONNECTION', retryable: true });
  });
});
