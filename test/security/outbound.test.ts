/**
 * Outbound safety through the API and at start (docs/operations-security.md). With
 * `CONVEYOR_OUTBOUND_ALLOW` unset, a `callbackUrl` on loopback in any spelling is refused at
 * submit with a 422 and nothing is stored. Only loopback spellings are used here: the other
 * refused ranges are covered by the table test (test/unit/outbound.test.ts), and no test lets a
 * request with such a URL run. A receiver on 127.0.0.1 proves that nothing was sent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { Engine } from '../../src/engine';
import { PipelineValidationError } from '../../src/errors';
import type { ErrorBody, TestEngine } from '../support/engine';
import { settle } from '../support/poll';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { sleep, startIntakeEngine, startReceiver, type Receiver } from '../intake/helpers';

describe('outbound safety: callback URLs refused at submit (no CONVEYOR_OUTBOUND_ALLOW)', function () {
  this.timeout(30_000);
  let rx: Receiver;
  let t: TestEngine;
  before(async () => {
    rx = await startReceiver();
    t = await startIntakeEngine({ engine: { outboundAllow: '' } });
  });
  after(async () => {
    await t.close();
    await rx.close();
  });

  const port = (): string => new URL(rx.url).port;
  const spellings = (): string[] => [
    `http://127.0.0.1:${port()}/cb`, `http://2130706433:${port()}/cb`, `http://0x7f.1:${port()}/cb`, `http://0177.0.0.1:${port()}/cb`,
    `http://127.1:${port()}/cb`, `http://[::1]:${port()}/cb`, `http://[::ffff:127.0.0.1]:${port()}/cb`, `http://localhost:${port()}/cb`,
    `http://0.0.0.0:${port()}/cb`,
  ];

  it('answers 422 CONVEYOR_ERR_OUTBOUND_REFUSED for every loopback spelling, by query or header, and stores nothing', async () => {
    const before = await t.countRows();
    for (const url of spellings()) {
      const q = await t.api<ErrorBody>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(url)}`, { body: { n: 1 } });
      expect(q.status, url).to.equal(422);
      expect(q.body.error.code).to.equal('CONVEYOR_ERR_OUTBOUND_REFUSED');
      expect(q.body.error.message, url).to.match(/^callbackUrl refused: .* is a (loopback|unspecified) address; callbacks go to public addresses/);
      const h = await t.api<ErrorBody>('POST', '/api/pipelines/in-plain/requests', { body: { n: 1 }, headers: { 'x-callback-url': url } });
      expect(h.status, url).to.equal(422);
    }
    expect(await t.countRows()).to.deep.equal(before);
  });

  it('refuses the line, not the file, in a bulk envelope', async () => {
    const lines = [
      JSON.stringify({ payload: { n: 1 }, callbackUrl: `http://0x7f.1:${port()}/cb` }),
      JSON.stringify({ payload: { n: 2 } }),
    ].join('\n');
    const r = await t.api<string>('POST', '/api/pipelines/in-plain/requests/bulk?envelope=1', { raw: lines, headers: { 'content-type': 'application/x-ndjson' } });
    const out = r.text.trim().split('\n').map((l) => JSON.parse(l) as { line: number; id?: string; error?: { code: string } });
    expect(out[0]!.error!.code).to.equal('CONVEYOR_ERR_OUTBOUND_REFUSED');
    expect(out[1]!.id).to.be.a('string');
  });

  it('sent nothing to the refused URLs', async () => {
    await sleep(300);
    expect(rx.hits).to.have.length(0);
  });
});

describe('outbound safety: with CONVEYOR_OUTBOUND_ALLOW', function () {
  this.timeout(30_000);
  after(() => cleanupTmpDirs());

  it('accepts a loopback callback URL the list covers, and delivers to it', async () => {
    const rx = await startReceiver();
    const t = await startIntakeEngine({ engine: { outboundAllow: '127.0.0.0/8' } });
    try {
      const r = await t.api<{ id: string }>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(`http://2130706433:${new URL(rx.url).port}/cb`)}`, { body: { n: 1 } });
      expect(r.status).to.equal(202);
      await settle(() => rx.hits.length, (n) => n !== 0, { timeoutMs: 15_000, everyMs: 50 });
      expect(rx.hits).to.have.length(1);
      expect(rx.hits[0]!.headers['x-conveyor-request-id']).to.equal(r.body.id);
      const refused = await t.api<ErrorBody>('POST', `/api/pipelines/in-plain/requests?callbackUrl=${encodeURIComponent(`http://[::1]:${new URL(rx.url).port}/cb`)}`, { body: { n: 1 } });
      expect(refused.status).to.equal(422);
      expect(refused.body.error.message).to.include('not in CONVEYOR_OUTBOUND_ALLOW');
    } finally {
      await t.close();
      await rx.close();
    }
  });

  it('refuses to start when a module URL, the admin webhook or a pipeline callback URL is outside the rule, or the list is malformed', async () => {
    const dir = tmpDir('outbound');
    fs.mkdirSync(path.join(dir, 'modules'));
    fs.mkdirSync(path.join(dir, 'pipelines'));
    fs.writeFileSync(path.join(dir, 'modules', 'remote.module.json'), JSON.stringify({ name: 'remote', transport: { kind: 'http', url: 'http://127.0.0.1:9/x' } }));
    fs.writeFileSync(path.join(dir, 'pipelines', 'cb.pipeline.json'), JSON.stringify({ id: 'cb', start: 'a', intake: { callbackUrl: 'http://0x7f.1/cb' }, steps: { a: { subsystem: 'remote' } } }));
    const open = async (allow: string): Promise<string> => {
      try {
        const e = await Engine.create({ databaseUrl: `sqlite:${path.join(dir, `db-${Math.random()}.db`)}`, pipelinesDir: path.join(dir, 'pipelines'), modulesDir: path.join(dir, 'modules'), outboundAllow: allow });
        await e.stop();
        return 'started';
      } catch (err) {
        expect(err).to.be.instanceOf(PipelineValidationError);
        return (err as Error).message;
      }
    };
    const unset = await open('');
    expect(unset).to.include('intake.callbackUrl').and.include('loopback');
    expect(unset).to.not.include('remote.module.json');
    const set = await open('*.example.com');
    expect(set).to.include('http://127.0.0.1:9/x is refused by the outbound rule');
    process.env.CONVEYOR_ADMIN_WEBHOOK = 'http://127.0.0.1:9/alert';
    try {
      expect(await open('127.0.0.1/32')).to.equal('started');
      expect(await open('127.0.0.2/32,127.0.0.1:9')).to.include('"127.0.0.1:9" is neither');
      expect(await open('127.0.0.2/32')).to.include('CONVEYOR_ADMIN_WEBHOOK').and.include('http://127.0.0.1:9/alert is refused');
    } finally {
      delete process.env.CONVEYOR_ADMIN_WEBHOOK;
    }
    expect(await open('127.0.0.0/8')).to.equal('started');
    expect(await open('127.0.0.0/8, not a host')).to.include('"not a host" is neither a CIDR');
  });
});
