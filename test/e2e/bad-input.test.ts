/**
 * Bad input over real HTTP (DESIGN.md "Guarantees"): each mistake gets a clear 4xx with
 * `{ error: { code, message } }`, no stack trace (neither in the answer nor in the server's
 * log), and changes nothing in the store.
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import winston from 'winston';
import { ErrorCodes } from '../../src/errors';
import { startTestEngine, type ApiCallOptions, type ApiResponse, type ErrorBody, type TestEngine } from '../support/engine';

const SUBMIT = '/api/pipelines/hello/requests';
const A_REQUEST_ID = '01a20187-df0f-7000-b8ea-bf397f8d5898';

/** Every log line the engine writes during the suite, as parsed JSON. */
const logLines: Array<Record<string, unknown>> = [];

function createRecordingLogger(): winston.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
}

/** One bad call and what it must get back. */
interface BadCase {
  name: string;
  method?: string;
  path?: string;
  /** Which key to send; `null` for none. @default 'admin' */
  as?: 'admin' | 'submit' | 'read' | null;
  call?: Omit<ApiCallOptions, 'key'>;
  /** Sends the call some other way (e.g. a chunked body) and answers what came back. */
  send?: (t: TestEngine) => Promise<ApiResponse<ErrorBody>>;
  status: number;
  code: string;
  /** Part of the message a client needs to fix the call. */
  says?: string | RegExp;
}

const json = (raw: string | Buffer): Omit<ApiCallOptions, 'key'> => ({ raw });
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** A body over the limit streamed in chunks, without a Content-Length, as a client that does not know its size would. */
function sendChunked(t: TestEngine, bytes: number): Promise<ApiResponse<ErrorBody>> {
  return new Promise((resolve, reject) => {
    const u = new URL(t.url);
    const req = http.request(
      { host: u.hostname, port: u.port, method: 'POST', path: SUBMIT, headers: { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, body: JSON.parse(text) as ErrorBody, headers: res.headers as Record<string, string> }));
      },
    );
    // The server may answer and close before the whole body is written: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    const chunk = Buffer.alloc(64 * 1024, ' ');
    chunk.write('{"a":"');
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

const CASES: BadCase[] = [
  // The body.
  { name: 'malformed JSON', call: json('{"email": nope}'), status: 400, code: ErrorCodes.BAD_JSON, says: 'not valid JSON' },
  { name: 'truncated JSON', call: json('{"email": "a@b.c", "name": "Tr'), status: 400, code: ErrorCodes.BAD_JSON, says: 'not valid JSON' },
  { name: 'an empty body', call: json(''), status: 400, code: ErrorCodes.BAD_JSON, says: 'empty' },
  { name: 'a body of whitespace', call: json('  \n '), status: 400, code: ErrorCodes.BAD_JSON, says: 'empty' },
  { name: 'a JSON array body', call: json('[{"name":"x"}]'), status: 400, code: ErrorCodes.BAD_BODY, says: 'JSON object' },
  { name: 'a JSON string body', call: json('"hello"'), status: 400, code: ErrorCodes.BAD_BODY, says: 'JSON object' },
  { name: 'a JSON number body', call: json('42'), status: 400, code: ErrorCodes.BAD_BODY, says: 'JSON object' },
  { name: 'a JSON null body', call: json('null'), status: 400, code: ErrorCodes.BAD_BODY, says: 'JSON object' },
  { name: 'content type text/plain', call: { raw: '{"name":"x"}', headers: { 'content-type': 'text/plain' } }, status: 415, code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE, says: 'application/json' },
  { name: 'no content type', call: { raw: '{"name":"x"}', headers: { 'content-type': '' } }, status: 415, code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE },
  { name: 'a form-encoded body', call: { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, status: 415, code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE },
  {
    name: 'a body over 1 MiB (declared in Content-Length)',
    call: json(`{"name":"${'x'.repeat(1024 * 1024)}"}`),
    status: 413,
    code: ErrorCodes.BODY_TOO_LARGE,
    says: 'limit',
  },
  { name: 'a body over 1 MiB (chunked, no Content-Length)', send: (t) => sendChunked(t, 2 * 1024 * 1024), status: 413, code: ErrorCodes.BODY_TOO_LARGE, says: 'limit' },
  // Keys that reach into prototypes.
  { name: 'a top-level __proto__ key', call: json('{"__proto__": {"polluted": "yes"}}'), status: 400, code: ErrorCodes.FORBIDDEN_KEY, says: '__proto__' },
  { name: 'a nested __proto__ key', call: json('{"a": [{"b": {"__proto__": {"polluted": "yes"}}}]}'), status: 400, code: ErrorCodes.FORBIDDEN_KEY, says: '$.a[0].b' },
  { name: 'a __proto__ key written with a unicode escape', call: json('{"\\u005f_proto__": {"polluted": "yes"}}'), status: 400, code: ErrorCodes.FORBIDDEN_KEY, says: '__proto__' },
  { name: 'a constructor key', call: json('{"constructor": {"prototype": {"polluted": "yes"}}}'), status: 400, code: ErrorCodes.FORBIDDEN_KEY, says: 'constructor' },
  { name: 'a nested prototype key', call: json('{"x": {"prototype": {"polluted": "yes"}}}'), status: 400, code: ErrorCodes.FORBIDDEN_KEY, says: 'prototype' },
  { name: 'objects nested 10,000 deep', call: json(nested(10_000)), status: 400, code: ErrorCodes.TOO_DEEP },
  { name: 'arrays nested 10,000 deep', call: json(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), status: 400, code: ErrorCodes.TOO_DEEP },
  { name: 'objects nested 65 deep (one over the limit)', call: json(nested(65)), status: 400, code: ErrorCodes.TOO_DEEP, says: '64' },
  // Names that do not exist.
  { name: 'an unknown pipeline', path: '/api/pipelines/no-such-pipeline/requests', call: { body: { name: 'x' } }, status: 404, code: ErrorCodes.UNKNOWN_PIPELINE, says: 'no-such-pipeline' },
  { name: 'an unknown request id', method: 'GET', path: `/api/requests/${A_REQUEST_ID}`, status: 404, code: ErrorCodes.UNKNOWN_REQUEST },
  { name: 'the steps of an unknown request', method: 'GET', path: `/api/requests/${A_REQUEST_ID}/steps`, status: 404, code: ErrorCodes.UNKNOWN_REQUEST },
  { name: 'a request id that is a path (../../etc/passwd)', method: 'GET', path: `/api/requests/${encodeURIComponent('../../etc/passwd')}`, status: 404, code: ErrorCodes.UNKNOWN_REQUEST },
  { name: 'an unknown pipeline id read', method: 'GET', path: '/api/pipelines/no-such-pipeline', status: 404, code: ErrorCodes.UNKNOWN_PIPELINE },
  { name: 'an unknown route', method: 'GET', path: '/api/no-such-thing', status: 404, code: ErrorCodes.NOT_FOUND },
  { name: 'an unknown route outside /api', method: 'GET', path: '/no-such-thing', as: null, status: 404, code: ErrorCodes.NOT_FOUND },
  { name: 'a wrong method (DELETE a request)', method: 'DELETE', path: `/api/requests/${A_REQUEST_ID}`, status: 405, code: ErrorCodes.METHOD_NOT_ALLOWED },
  { name: 'a wrong method (GET the submit route)', method: 'GET', path: SUBMIT, status: 405, code: ErrorCodes.METHOD_NOT_ALLOWED },
  // Who is calling.
  { name: 'no Authorization header', as: null, call: { body: { name: 'x' } }, status: 401, code: ErrorCodes.UNAUTHORIZED, says: 'API key' },
  { name: 'a wrong key', as: null, call: { body: { name: 'x' }, headers: { authorization: 'Bearer not-a-key-of-this-server' } }, status: 401, code: ErrorCodes.UNAUTHORIZED },
  { name: 'a malformed Authorization header (Basic)', as: null, call: { body: { name: 'x' }, headers: { authorization: 'Basic dXNlcjpwYXNz' } }, status: 401, code: ErrorCodes.UNAUTHORIZED, says: 'Bearer' },
  { name: 'a malformed Authorization header (Bearer without a key)', as: null, call: { body: { name: 'x' }, headers: { authorization: 'Bearer ' } }, status: 401, code: ErrorCodes.UNAUTHORIZED },
  { name: 'a read-only key submitting', as: 'read', call: { body: { name: 'x' } }, status: 403, code: ErrorCodes.FORBIDDEN, says: 'submit' },
  // Without `read`, a request the key takes no part in is not found (issue 12: ids do not leak).
  { name: 'a submit-only key reading a request (unknown, or one it takes no part in: the same answer)', as: 'submit', method: 'GET', path: `/api/requests/${A_REQUEST_ID}`, status: 404, code: ErrorCodes.UNKNOWN_REQUEST, says: 'unknown request' },
  { name: 'a submit-only key listing pipelines', as: 'submit', method: 'GET', path: '/api/pipelines', status: 403, code: ErrorCodes.FORBIDDEN, says: 'read' },
  // Query and headers.
  { name: '?wait=abc', path: `${SUBMIT}?wait=abc`, call: { body: { name: 'x' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: 'wait' },
  { name: '?wait=-1', path: `${SUBMIT}?wait=-1`, call: { body: { name: 'x' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: 'wait' },
  { name: '?wait over the maximum', path: `${SUBMIT}?wait=3600`, call: { body: { name: 'x' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: 'wait' },
  { name: '?wait given twice', path: `${SUBMIT}?wait=1&wait=2`, call: { body: { name: 'x' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: 'wait' },
  { name: '?test=maybe', path: `${SUBMIT}?test=maybe`, call: { body: { name: 'x' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: 'test' },
  { name: 'an Idempotency-Key with a control character', call: { body: { name: 'x' }, headers: { 'idempotency-key': 'key\twith-a-tab' } }, status: 400, code: ErrorCodes.BAD_PARAM, says: /idempotency-key/i },
  { name: 'an Idempotency-Key of 256 characters', call: { body: { name: 'x' }, headers: { 'idempotency-key': 'k'.repeat(256) } }, status: 400, code: ErrorCodes.BAD_PARAM, says: /idempotency-key/i },
  { name: 'an X-Business-Key of 256 characters', call: { body: { name: 'x' }, headers: { 'x-business-key': 'b'.repeat(256) } }, status: 400, code: ErrorCodes.BAD_PARAM, says: /business-key/i },
];

describe('bad input over HTTP: a clear 4xx, no stack trace, nothing changed', function () {
  this.timeout(20_000);
  let t: TestEngine;

  before(async () => {
    t = await startTestEngine({ logger: createRecordingLogger() });
  });

  after(async () => {
    await t?.close();
  });

  for (const c of CASES) {
    it(`answers ${c.status} ${c.code} to ${c.name}`, async () => {
      const before = await t.countRows();
      const logsBefore = logLines.length;
      const key = c.as === null ? null : t.keys[c.as ?? 'admin'];
      const r = c.send ? await c.send(t) : await t.api<ErrorBody>(c.method ?? 'POST', c.path ?? SUBMIT, { ...c.call, key });

      expect(r.status, r.text).to.equal(c.status);
      expect(r.headers['content-type']).to.match(/^application\/json/);
      expect(r.body).to.be.an('object');
      expect(Object.keys(r.body)).to.deep.equal(['error']);
      expect(r.body.error.code).to.equal(c.code);
      expect(r.body.error.message).to.be.a('string').and.not.equal('');
      if (c.says instanceof RegExp) expect(r.body.error.message).to.match(c.says);
      else if (c.says) expect(r.body.error.message).to.contain(c.says);
      expect(Object.keys(r.body.error)).to.satisfy((keys: string[]) => keys.every((k) => ['code', 'message', 'details'].includes(k)));
      // No stack trace, in any form.
      expect(r.text).to.not.contain('"stack"');
      expect(r.text).to.not.contain('    at ');
      expect(r.text).to.not.match(/\bat .+\.(ts|js):\d+/);
      expect(r.text.length, 'the answer does not echo a large input').to.be.below(2000);
      if (c.status === 405) expect(r.headers.allow).to.be.a('string').and.not.equal('');

      expect(await t.countRows()).to.deep.equal(before);
      const logged = logLines.slice(logsBefore);
      expect(logged.filter((l) => l.level === 'error'), 'a client mistake is not a server error').to.deep.equal([]);
      expect(JSON.stringify(logged)).to.not.contain('    at ');
    });
  }

  it('leaves Object.prototype unpolluted after every payload that tried', async () => {
    const attempts = [
      '{"__proto__": {"polluted": "yes"}}',
      '{"constructor": {"prototype": {"polluted": "yes"}}}',
      '{"a": {"__proto__": {"polluted": "yes"}}}',
      '{"\\u005f_proto__": {"polluted": "yes"}}',
    ];
    for (const raw of attempts) {
      const r = await t.api<ErrorBody>('POST', SUBMIT, { raw });
      expect(r.status, raw).to.equal(400);
    }
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect((Object.prototype as Record<string, unknown>).polluted).to.equal(undefined);
    expect(Object.getOwnPropertyNames(Object.prototype)).to.not.include('polluted');
  });

  it('still serves, and stores, a good request after all of that', async () => {
    const before = await t.countRows();
    const r = await t.api<{ status: string; context: Record<string, unknown> }>('POST', `${SUBMIT}?wait=10`, { body: { name: 'Ada' }, key: t.keys.submit });
    expect(r.status, r.text).to.equal(200);
    expect(r.body.status).to.equal('completed');
    expect(r.body.context.greet).to.deep.equal({ greeting: 'Hello, Ada' });
    const after = await t.countRows();
    expect(after.requests).to.equal(before.requests + 1);
    expect(after.stepRuns).to.equal(before.stepRuns + 1);
  });
});
