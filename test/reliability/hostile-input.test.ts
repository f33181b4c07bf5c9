/**
 * Hostile input (issue 7), the fast part of `npm run fuzz`: a fixed-seed run of the fuzzer
 * over every route, then the cases that deserve a name of their own: SQL metacharacters in
 * every search filter, prototype pollution through module output, context and templates,
 * unicode that must round-trip, bytes that are not UTF-8, and 60 KB headers.
 *
 * Every refusal is a 4xx `{ error: { code, message } }` without a stack trace, and changes
 * nothing; see `scripts/fuzz/fuzz.ts` for the oracle.
 */
import { expect } from 'chai';
import { ErrorCodes } from '../../src/errors';
import { pct, SQL_METACHARACTERS, type FuzzCase } from '../../scripts/fuzz/cases';
import { formatReport, judgeAnswer, pollutionSince, prototypeNames, runFuzz, startFuzzServer, type FuzzServer } from '../../scripts/fuzz/fuzz';
import { sendRaw } from '../../scripts/fuzz/raw-http';
import type { ErrorBody } from '../support/engine';

const SEED = 20_251_122;

describe('hostile input: every route refuses it with a clear 4xx and changes nothing', function () {
  this.timeout(30_000);
  let s: FuzzServer;
  let protos: ReturnType<typeof prototypeNames>;

  before(async () => {
    protos = prototypeNames();
    s = await startFuzzServer();
  });

  after(async () => {
    await s?.close();
  });

  const rows = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const table of ['requests', 'step_runs', 'audit_events']) {
      const [r] = await s.t.engine.store.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`);
      out.push(Number(r?.n));
    }
    return out;
  };

  it(`survives 600 generated hostile inputs (seed ${SEED}) over every route`, async () => {
    const report = await runFuzz(s, { seed: SEED, iterations: 600, seconds: 15 });
    console.log(formatReport(report).replace(/^/gm, '      '));
    expect(report.failures, formatReport(report)).to.deep.equal([]);
    expect(report.polluted).to.deep.equal([]);
    expect(report.cases).to.be.at.least(300);
    expect(Object.keys(report.byRoute).length, 'every route was hit').to.equal(18);
    expect(report.byStatus['500'] ?? 0).to.equal(0);
  });

  for (const [route, params] of [
    ['/api/requests', { text: ['pipeline', 'businessKey'], strict: ['status', 'test', 'since', 'until', 'limit', 'cursor'] }],
    ['/api/steps', { text: ['pipeline', 'step'], strict: ['status', 'since', 'until', 'limit', 'cursor'] }],
  ] as const) {
    it(`compares SQL metacharacters in every filter of GET ${route}, never interprets them`, async () => {
      const before = await rows();
      for (const param of [...params.text, ...params.strict]) {
        for (const value of SQL_METACHARACTERS) {
          const text = (params.text as readonly string[]).includes(param);
          const c: FuzzCase = {
            n: 0, route, family: 'sql', what: `${param}=${value}`, expect: text ? 'read' : 'reject', emptyItems: text,
            req: { method: 'GET', path: `${route}?${param}=${pct(value)}`, headers: [['authorization', `Bearer ${s.target.key}`]] },
          };
          const u = new URL(s.t.url);
          const res = await sendRaw(u.hostname, Number(u.port), c.req);
          expect(judgeAnswer(c, res), `${param}=${value} → ${res.status} ${res.text.slice(0, 200)}`).to.deep.equal([]);
          expect(res.status, `${param}=${value}`).to.equal(text ? 200 : 400);
        }
      }
      expect(await rows()).to.deep.equal(before);
      // The stored rows are there to be found: a filter that was interpreted would have listed them.
      const all = await s.t.api<{ items: unknown[] }>('GET', route);
      expect(all.body.items.length).to.be.greaterThan(0);
    });
  }

  it('pollutes no prototype when a module returns __proto__, constructor and prototype keys that flow through context and templates', async () => {
    const r = await s.t.api<{ status: string; context: Record<string, Record<string, unknown>> }>('POST', '/api/pipelines/fz-proto/requests?wait=10', { body: { k: 'proto' } });
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status).to.equal('completed');
    const { render, echo, evil } = r.body.context;
    // What the module returned is kept as data: own keys, not prototypes.
    expect(Object.getOwnPropertyNames(evil)).to.include.members(['__proto__', 'constructor', 'prototype', 'ok']);
    // Templates see only own properties: nothing of Object.prototype leaks into a value.
    expect(render!.payloadCtor).to.equal('');
    expect(render!.payloadCtorName).to.equal('x');
    expect(render!.payloadToString).to.equal('x');
    expect(render!.payloadProto).to.equal('');
    expect((echo!.params as Record<string, unknown>).ctor).to.deep.equal({ polluted: 'yes' });
    expect(pollutionSince(protos)).to.deep.equal([]);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('stores and returns unicode edge cases unchanged: lone surrogates, RTL, NUL, BOM, emoji', async () => {
    const payload = { lone: '\ud800x\udfff', rtl: '\u202eevil\u202c مرحبا', nul: 'a\u0000b', bom: '\ufeffbom', emoji: '😀👩‍👩‍👧‍👦', seps: '\u2028\u2029' };
    const r = await s.t.api<{ id: string }>('POST', '/api/pipelines/fz/requests', { body: payload });
    expect(r.status, r.text).to.equal(202);
    const back = await s.t.api<{ context: { payload: unknown } }>('GET', `/api/requests/${r.body.id}`);
    expect(back.body.context.payload).to.deep.equal(payload);
  });

  it('refuses a body whose bytes are not UTF-8 (400), instead of storing U+FFFD', async () => {
    const before = await rows();
    const raw = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const r = await s.t.api<ErrorBody>('POST', '/api/pipelines/fz/requests', { raw });
    expect(r.status).to.equal(400);
    expect(r.body.error).to.include({ code: ErrorCodes.BAD_JSON, message: 'body is not valid UTF-8' });
    expect(await rows()).to.deep.equal(before);
  });

  it('answers a 60 KB header with a JSON 431, not a bare one', async () => {
    const u = new URL(s.t.url);
    const res = await sendRaw(u.hostname, Number(u.port), {
      method: 'POST', path: '/api/pipelines/fz/requests', headers: [['authorization', `Bearer ${s.target.key}`], ['content-type', 'application/json'], ['x-pad', 'p'.repeat(60 * 1024)]], body: Buffer.from('{"k":1}'),
    });
    expect(res.status).to.equal(431);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expect((JSON.parse(res.text) as ErrorBody).error.code).to.equal(ErrorCodes.HEADERS_TOO_LARGE);
  });
});
