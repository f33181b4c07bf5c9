/**
 * Module faults (issue 7): a module that hangs, answers slowly, returns too much or something
 * that is not JSON, closes the connection, or throws something that is not an `Error` gives
 * its step a bounded, clear error, and the request stops on it (`error_stop`) with that
 * error. Meanwhile the engine stays responsive: while 50 requests hang in an in-process
 * module and 50 more in a remote one, a well-behaved pipeline's latency stays within a small
 * factor of the baseline measured in the same test.
 *
 * The engine runs in this process (`startTestEngine`) with the fixtures of
 * `test/fixtures/chaos/faults`; the misbehaving remote module is a raw `http` server here.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { ErrorCodes } from '../../src/errors';
import { startTestEngine, type TestEngine } from '../support/engine';
import { settle } from '../support/poll';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'chaos', 'faults');
const MB = 1024 * 1024;
/** A step error message is cut at 2,000 characters (plus an ellipsis); the HTTP prefix adds a little. */
const MAX_MESSAGE = 2100;
/** The in-process step's and the remote module's time limits (fixtures). */
const TIMEOUT_MS = 500;

interface RequestBody {
  id: string;
  status: string;
  error: { stepId: string; code: string; message: string } | null;
}
interface StepItem {
  stepId: string;
  status: string;
  error: { code: string; message: string; retryable: boolean } | null;
  durationMs: number | null;
}

/** The remote module's misbehaviours, chosen by the call's `params.mode`. */
function startFaultServer(): Promise<{ server: http.Server; url: string; hanging: () => number }> {
  let hanging = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { params: { mode?: string } };
      const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      switch (call.params.mode) {
        case 'slow':
          return void setTimeout(() => json(200, { data: { slow: true } }), 150);
        case 'too-slow':
          return void setTimeout(() => json(200, { data: { late: true } }), 1500);
        case 'hang':
          hanging++;
          res.on('close', () => hanging--);
          return; // never answers
        case 'drip': {
          // Headers at once, then one byte every 50 ms, forever: only a total deadline ends it.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"data":"');
          const t = setInterval(() => res.write('x'), 50);
          res.on('close', () => clearInterval(t));
          return;
        }
        case 'big':
          return json(200, { data: 'x'.repeat(6 * MB) });
        case 'big-chunked': {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"data":"');
          for (let i = 0; i < 6; i++) res.write('x'.repeat(MB));
          return void res.end('"}');
        }
        case 'not-json':
          return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Service Unavailable</body></html>');
        case 'json-without-data':
          return json(200, { result: 1 });
        case 'close':
          return void req.socket.destroy();
        case 'close-mid-body':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
          res.write('{"data": {"half":');
          return void setTimeout(() => req.socket.destroy(), 20);
        case 'huge-error-500':
          return json(500, { error: { message: 'e'.repeat(3 * MB) } });
        case 'huge-error-400':
          return json(400, { error: 'f'.repeat(3 * MB) });
        case 'html-502':
          return void res.writeHead(502, { 'content-type': 'text/html' }).end(`<html>${'<p>bad gateway</p>'.repeat(10_000)}</html>`);
        case 'redirect':
          return void res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' }).end();
        case 'huge-header':
          return void res.writeHead(200, { 'content-type': 'application/json', 'x-junk': 'j'.repeat(64 * 1024) }).end('{"data":{}}');
        default:
          return json(200, { data: { ok: true } });
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fault`, hanging: () => hanging })));
}

/** The healthy neighbour's remote module, on another origin than the faulty one. */
function startOkServer(): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ok":true}}'));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ok` })));
}

interface FaultCase {
  pipeline: 'fault-inproc' | 'fault-http';
  mode: string;
  what: string;
  /** `completed`, or the error code the request stops with. */
  expect: 'completed' | string;
  /** What the message must say. */
  says?: RegExp;
  /** The step's duration is at most this (it is cut off, not left to run). */
  withinMs?: number;
}

const CASES: FaultCase[] = [
  // In-process modules.
  { pipeline: 'fault-inproc', mode: 'hang', what: 'never settles', expect: ErrorCodes.TIMEOUT, says: /timed out after 500 ms/, withinMs: TIMEOUT_MS + 500 },
  { pipeline: 'fault-inproc', mode: 'slow', what: 'answers slowly, within its time limit', expect: 'completed' },
  { pipeline: 'fault-inproc', mode: 'too-slow', what: 'answers after its time limit', expect: ErrorCodes.TIMEOUT, says: /timed out/, withinMs: TIMEOUT_MS + 500 },
  { pipeline: 'fault-inproc', mode: 'big-output', what: 'returns 6 MB', expect: ErrorCodes.MODULE_FAILED, says: /over the 5242880-byte limit/ },
  { pipeline: 'fault-inproc', mode: 'circular-output', what: 'returns a circular object', expect: ErrorCodes.MODULE_FAILED, says: /not JSON-serialisable/ },
  { pipeline: 'fault-inproc', mode: 'bigint-output', what: 'returns a BigInt', expect: ErrorCodes.MODULE_FAILED, says: /not JSON-serialisable/ },
  { pipeline: 'fault-inproc', mode: 'throw-string', what: 'throws a string', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: the module gave up/ },
  { pipeline: 'fault-inproc', mode: 'throw-huge-string', what: 'throws a 1 MB string', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: yyyy/ },
  { pipeline: 'fault-inproc', mode: 'throw-object', what: 'throws a plain object', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: \{"code":42,"reason":"an object"\}/ },
  { pipeline: 'fault-inproc', mode: 'throw-undefined', what: 'throws undefined', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: undefined/ },
  { pipeline: 'fault-inproc', mode: 'throw-null', what: 'throws null', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: null/ },
  { pipeline: 'fault-inproc', mode: 'throw-circular', what: 'throws a circular object', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value/ },
  { pipeline: 'fault-inproc', mode: 'throw-circular-null-proto', what: 'throws a circular object without a prototype', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: \[object\]/ },
  { pipeline: 'fault-inproc', mode: 'throw-symbol', what: 'throws a symbol', expect: ErrorCodes.MODULE_FAILED, says: /non-Error value: Symbol\(boom\)/ },
  { pipeline: 'fault-inproc', mode: 'throw-proxy', what: 'throws a Proxy whose every trap throws', expect: ErrorCodes.MODULE_FAILED, says: /cannot be inspected/ },
  { pipeline: 'fault-inproc', mode: 'throw-huge-error', what: 'throws an Error with a 1 MB message', expect: ErrorCodes.MODULE_FAILED, says: /^zzzz/ },
  { pipeline: 'fault-inproc', mode: 'throw-nonretryable-huge-details', what: 'throws NonRetryableError with 2 MB of details', expect: ErrorCodes.NON_RETRYABLE, says: /^no, and here is why$/ },
  { pipeline: 'fault-inproc', mode: 'throw-sync', what: 'throws synchronously, before any promise', expect: ErrorCodes.MODULE_FAILED, says: /thrown before any promise/ },
  // Remote modules.
  { pipeline: 'fault-http', mode: 'hang', what: 'never answers', expect: ErrorCodes.TIMEOUT, says: /did not answer within 500 ms/, withinMs: TIMEOUT_MS + 1500 },
  { pipeline: 'fault-http', mode: 'slow', what: 'answers slowly, within its time limit', expect: 'completed' },
  { pipeline: 'fault-http', mode: 'too-slow', what: 'answers after its time limit', expect: ErrorCodes.TIMEOUT, says: /did not answer/, withinMs: TIMEOUT_MS + 1500 },
  { pipeline: 'fault-http', mode: 'drip', what: 'drips its body a byte at a time, forever', expect: ErrorCodes.TIMEOUT, says: /did not answer/, withinMs: TIMEOUT_MS + 1500 },
  { pipeline: 'fault-http', mode: 'big', what: 'answers 6 MB (with a Content-Length)', expect: ErrorCodes.HTTP_BAD_RESPONSE, says: /more than 5242880 bytes/ },
  { pipeline: 'fault-http', mode: 'big-chunked', what: 'answers 6 MB (chunked)', expect: ErrorCodes.HTTP_BAD_RESPONSE, says: /more than 5242880 bytes/ },
  { pipeline: 'fault-http', mode: 'not-json', what: 'answers 200 with HTML', expect: ErrorCodes.HTTP_BAD_RESPONSE, says: /without a JSON \{"data": \.\.\.\} body/ },
  { pipeline: 'fault-http', mode: 'json-without-data', what: 'answers 200 with JSON but no data', expect: ErrorCodes.HTTP_BAD_RESPONSE, says: /without a JSON/ },
  { pipeline: 'fault-http', mode: 'close', what: 'closes the connection without an answer', expect: ErrorCodes.HTTP_CONNECTION, says: /could not be reached|connection/ },
  { pipeline: 'fault-http', mode: 'close-mid-body', what: 'closes the connection halfway through its body', expect: ErrorCodes.HTTP_CONNECTION, says: /could not be reached|connection/ },
  { pipeline: 'fault-http', mode: 'huge-error-500', what: 'answers 500 with a 3 MB error message', expect: ErrorCodes.HTTP_STATUS, says: /answered 500: eeee/ },
  { pipeline: 'fault-http', mode: 'huge-error-400', what: 'answers 400 with a 3 MB error string', expect: ErrorCodes.HTTP_STATUS, says: /answered 400: ffff/ },
  { pipeline: 'fault-http', mode: 'html-502', what: 'answers 502 with a large HTML page', expect: ErrorCodes.HTTP_STATUS, says: /answered 502: <html>/ },
  { pipeline: 'fault-http', mode: 'redirect', what: 'answers with a redirect', expect: ErrorCodes.HTTP_STATUS, says: /answered 302/ },
  { pipeline: 'fault-http', mode: 'huge-header', what: 'answers with a 64 KB header', expect: ErrorCodes.HTTP_CONNECTION, says: /could not be reached/ },
];

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

describe('module faults: a bounded, clear step error for each, and a responsive engine', function () {
  this.timeout(30_000);
  let t: TestEngine;
  let faults: Awaited<ReturnType<typeof startFaultServer>>;
  let ok: Awaited<ReturnType<typeof startOkServer>>;

  before(async () => {
    faults = await startFaultServer();
    ok = await startOkServer();
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      modulesDir: path.join(FIXTURES, 'modules'),
      env: { FAULT_HTTP_URL: faults.url, FAULT_OK_URL: ok.url },
    });
  });

  after(async () => {
    await t?.close();
    faults?.server.closeAllConnections();
    ok?.server.closeAllConnections();
    await Promise.all([faults, ok].filter(Boolean).map((s) => new Promise((resolve) => s.server.close(resolve))));
  });

  /** Submits and waits for the end; returns the request and its step log. */
  async function run(pipeline: string, payload: Record<string, unknown>): Promise<{ request: RequestBody; steps: StepItem[] }> {
    const r = await t.api<RequestBody>('POST', `/api/pipelines/${pipeline}/requests?wait=20`, { body: payload });
    expect(r.status, r.text.slice(0, 300)).to.equal(200);
    const steps = await t.api<{ items: StepItem[] }>('GET', `/api/requests/${r.body.id}/steps`);
    return { request: r.body, steps: steps.body.items };
  }

  for (const c of CASES) {
    const outcome = c.expect === 'completed' ? 'completes' : `stops with ${c.expect}`;
    it(`a ${c.pipeline === 'fault-inproc' ? 'module' : 'remote module'} that ${c.what} ${outcome}`, async () => {
      const { request, steps } = await run(c.pipeline, { mode: c.mode });
      const step = steps.find((s) => s.stepId === 's')!;
      if (c.expect === 'completed') {
        expect(request.status, JSON.stringify(request.error)).to.equal('completed');
        expect(step.status).to.equal('completed');
        return;
      }
      expect(request.status).to.equal('error_stop');
      expect(request.error, 'the request keeps the step error').to.include({ stepId: 's', code: c.expect });
      expect(step.status).to.equal('failed');
      expect(step.error!.code).to.equal(c.expect);
      for (const message of [request.error!.message, step.error!.message]) {
        expect(message).to.be.a('string').and.not.equal('');
        expect(message.length, 'the message is bounded').to.be.at.most(MAX_MESSAGE);
        if (c.says) expect(message).to.match(c.says);
        expect(message, 'no stack trace').to.not.match(/\n\s+at /);
      }
      expect(JSON.stringify(step.error).length, 'the whole stored error is bounded').to.be.below(MAX_MESSAGE + 500);
      if (c.withinMs) expect(step.durationMs, 'cut off at the time limit').to.be.at.most(c.withinMs);
    });
  }

  it('keeps a well-behaved pipeline fast while 50 requests hang in-process and 50 on a remote module', async () => {
    const timeOne = async (): Promise<number> => {
      const started = performance.now();
      const r = await t.api<RequestBody>('POST', '/api/pipelines/fault-fast/requests?wait=10', { body: { n: 1 } });
      const ms = performance.now() - started;
      expect(r.status).to.equal(200);
      expect(r.body.status).to.equal('completed');
      return ms;
    };
    const measure = async (n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(await timeOne());
      return out;
    };
    await measure(5); // warm up
    const base = await measure(30);

    const held = await Promise.all(Array.from({ length: 50 }, () => t.api<{ id: string }>('POST', '/api/pipelines/fault-hold/requests', { body: { hold: true } })));
    expect(held.map((r) => r.status)).to.deep.equal(Array(50).fill(202));
    await settle(() => faults.hanging(), (n) => n >= 50, { timeoutMs: 3000, everyMs: 10 });
    expect(faults.hanging(), 'the remote calls are all hanging').to.equal(50);
    // Only samples taken while all 100 steps still hang count (a loaded machine may be slow).
    const loaded: number[] = [];
    while (loaded.length < 30 && faults.hanging() === 50) {
      const ms = await timeOne();
      if (faults.hanging() === 50) loaded.push(ms);
    }
    expect(loaded.length, 'enough samples were taken while everything hung').to.be.at.least(10);

    const [b50, l50] = [percentile(base, 50), percentile(loaded, 50)];
    console.log(
      `      responsiveness: fault-fast p50 ${b50.toFixed(1)} ms alone, ${l50.toFixed(1)} ms with 100 hanging steps ` +
        `(p90 ${percentile(base, 90).toFixed(1)} → ${percentile(loaded, 90).toFixed(1)} ms)`,
    );
    expect(l50, `p50 with the hangs (${l50.toFixed(1)} ms) is within 3x the baseline (${b50.toFixed(1)} ms)`).to.be.at.most(Math.max(3 * b50, b50 + 25));

    // The hanging requests end too, each with a bounded timeout, not left running.
    const ends = await Promise.all(held.map((r) => t.engine.waitForEnd(r.body.id, 10_000)));
    expect(ends).to.deep.equal(Array(50).fill('error_stop'));
    const sample = await t.api<{ items: StepItem[] }>('GET', `/api/requests/${held[0]!.body.id}/steps`);
    const hung = sample.body.items.filter((s) => s.stepId.startsWith('hang-'));
    expect(hung.some((s) => s.status === 'failed' && s.error?.code === ErrorCodes.TIMEOUT), JSON.stringify(hung)).to.equal(true);
  });
});
