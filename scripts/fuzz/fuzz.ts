/**
 * The hostile-input fuzzer (issue 7): sends generated hostile inputs (`cases.ts`) to every
 * route of a running API, one at a time, and checks after each one:
 *
 * - never a 5xx, and never no answer;
 * - a refusal is a 4xx with exactly `{ error: { code, message, details? } }`, a
 *   `CONVEYOR_ERR_*` code, and a short answer that echoes no large input;
 * - no stack trace in any answer, and no `error`-level log line for a client's mistake;
 * - no change of state: the row counts of requests, step runs, audit events and API keys;
 * - no prototype polluted in the server's process.
 *
 * Bounded by `iterations` and `seconds`. The same seed gives the same cases.
 */
import { Writable } from 'node:stream';
import * as path from 'node:path';
import winston from 'winston';
import { signCallback } from '../../src/http/callback-token';
import { newId } from '../../src/ids';
import { startTestEngine, type TestEngine } from '../../test/support/engine';
import { generateCase, type FuzzCase, type FuzzTarget } from './cases';
import { sendRaw, type RawResponse } from './raw-http';

export const FUZZ_FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'chaos', 'fuzz');

export interface FuzzFailure {
  n: number;
  route: string;
  family: string;
  what: string;
  status: number;
  problems: string[];
  answer: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  elapsedMs: number;
  byRoute: Record<string, number>;
  byFamily: Record<string, number>;
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  failures: FuzzFailure[];
  /** Own property names added to a built-in prototype during the run. */
  polluted: string[];
}

export interface FuzzOptions {
  seed: number;
  /** @default 2000 */
  iterations?: number;
  /** Stop after this long even if iterations remain. @default 60 */
  seconds?: number;
  /** Only these routes (names as in `cases.ts`). */
  routes?: string[];
  log?: (line: string) => void;
}

/** A running API to fuzz, with a request waiting at an action, one in `error_stop`, and a recording log. */
export interface FuzzServer {
  t: TestEngine;
  target: FuzzTarget;
  /** Every log line the engine wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ level: 'raw', message: line });
        }
      }
      done();
    },
  });
  const logger = winston.createLogger({ level: 'warn', format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
  const t = await startTestEngine({ pipelinesDir: path.join(FUZZ_FIXTURES, 'pipelines'), modulesDir: path.join(FUZZ_FIXTURES, 'modules'), logger });
  try {
    const waiting = await t.api<{ id: string }>('POST', '/api/pipelines/fz/requests', { body: { k: 'seed-waiting' } });
    const failed = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/fz-fail/requests?wait=10', { body: { k: 'seed-failed' } });
    if (waiting.status !== 202 || failed.body.status !== 'error_stop') throw new Error(`could not seed the fuzz target: ${waiting.text} ${failed.text}`);
    await t.engine.waitForEnd(waiting.body.id, 300); // lets it reach its action step
    const target: FuzzTarget = {
      key: t.keys.admin,
      pipeline: 'fz',
      waitingId: waiting.body.id,
      errorStopId: failed.body.id,
      callbackToken: signCallback(t.engine.callbacks.secret, { runId: newId(), attempt: 1, expiresAt: Date.now() + 3_600_000 }),
      event: 'fz-go',
    };
    return { t, target, logs, close: () => t.close() };
  } catch (err) {
    await t.close();
    throw err;
  }
}

const PROTOTYPES: Array<[string, object]> = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
];

function prototypeNames(): Map<string, Set<string>> {
  return new Map(PROTOTYPES.map(([name, p]) => [name, new Set(Object.getOwnPropertyNames(p))]));
}

/** What was added to a built-in prototype since `before`, plus the classic probes. */
export function pollutionSince(before: Map<string, Set<string>>): string[] {
  const found: string[] = [];
  for (const [name, p] of PROTOTYPES) {
    for (const k of Object.getOwnPropertyNames(p)) if (!before.get(name)!.has(k)) found.push(`${name}.${k}`);
  }
  const probe = {} as Record<string, unknown>;
  for (const k of ['polluted', 'isAdmin']) if (probe[k] !== undefined) found.push(`({}).${k}`);
  return found;
}

export { prototypeNames };

async function countState(t: TestEngine): Promise<string> {
  const counts: number[] = [];
  for (const table of ['requests', 'step_runs', 'audit_events', 'api_keys']) {
    const [row] = await t.engine.store.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`);
    counts.push(Number(row?.n));
  }
  return counts.join('/');
}

const STACK = [/\n\s+at /, /"stack"/, /\bat [^\s]+ \([^)]*\.(ts|js):\d+:\d+\)/, /node:internal/];

/** The problems with one answer, as the oracle sees them. */
export function judgeAnswer(c: FuzzCase, res: RawResponse): string[] {
  const problems: string[] = [];
  if (res.status === 0) return [`no answer (${res.error ?? 'connection closed'})`];
  if (res.status >= 500) problems.push(`answered ${res.status}`);
  for (const re of STACK) if (re.test(res.text)) problems.push(`a stack trace in the answer (${re})`);
  const refused = res.status >= 400;
  if (refused) problems.push(...judgeErrorBody(res));
  else if (c.expect === 'reject') problems.push(`accepted a hostile input (${res.status})`);
  else if (c.expect === 'read' && c.emptyItems) {
    try {
      const items = (JSON.parse(res.text) as { items?: unknown[] }).items;
      if (!Array.isArray(items)) problems.push('a 200 without items');
      else if (items.length > 0) problems.push(`a hostile filter matched ${items.length} items: it was interpreted, not compared`);
    } catch {
      problems.push('a 200 that is not JSON');
    }
  } else if (c.expect === 'bulk') {
    const lines = res.text.split('\n').filter(Boolean);
    for (const line of lines) {
      let v: { line?: unknown; id?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        v = JSON.parse(line) as typeof v;
      } catch {
        problems.push(`a bulk answer line that is not JSON: ${line.slice(0, 80)}`);
        break;
      }
      if (v.id !== undefined) problems.push(`bulk accepted a hostile line: ${line.slice(0, 120)}`);
      else if (typeof v.error?.code !== 'string' || typeof v.error.message !== 'string') problems.push(`a bulk line without { error: { code, message } }: ${line.slice(0, 120)}`);
      if (problems.length > 0) break;
    }
  }
  return problems;
}

function judgeErrorBody(res: RawResponse): string[] {
  const problems: string[] = [];
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) problems.push(`a ${res.status} that is not JSON (content-type ${res.headers['content-type'] ?? 'none'})`);
  let body: { error?: { code?: unknown; message?: unknown } } | undefined;
  try {
    body = JSON.parse(res.text) as typeof body;
  } catch {
    return [...problems, `a ${res.status} whose body is not JSON: ${JSON.stringify(res.text.slice(0, 80))}`];
  }
  if (!body || typeof body !== 'object' || Object.keys(body).join() !== 'error') return [...problems, 'the answer is not exactly { error }'];
  const e = body.error!;
  if (typeof e.code !== 'string' || !/^CONVEYOR_ERR_[A-Z_]+$/.test(e.code)) problems.push(`error.code ${JSON.stringify(e.code)} is not a CONVEYOR_ERR_* code`);
  if (typeof e.message !== 'string' || e.message === '') problems.push('error.message is missing');
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'details'].includes(k));
  if (extra.length > 0) problems.push(`error has other keys: ${extra.join(', ')}`);
  if (res.text.length > 4000) problems.push(`the answer is ${res.text.length} characters: it echoes the input`);
  return problems;
}

/** Runs the cases of `seed` against `server`, one at a time. */
export async function runFuzz(server: FuzzServer, o: FuzzOptions): Promise<FuzzReport> {
  const iterations = o.iterations ?? 2000;
  const deadline = Date.now() + (o.seconds ?? 60) * 1000;
  const u = new URL(server.t.url);
  const report: FuzzReport = { seed: o.seed, cases: 0, elapsedMs: 0, byRoute: {}, byFamily: {}, byStatus: {}, byCode: {}, failures: [], polluted: [] };
  const inc = (m: Record<string, number>, k: string): void => void (m[k] = (m[k] ?? 0) + 1);
  const protos = prototypeNames();
  const started = Date.now();
  let state = await countState(server.t);
  for (let n = 0; n < iterations * 20 && report.cases < iterations && Date.now() < deadline; n++) {
    const c = generateCase(o.seed, n, server.target);
    if (o.routes && !o.routes.includes(c.route)) continue;
    const logsBefore = server.logs.length;
    const res = await sendRaw(u.hostname, Number(u.port), c.req);
    report.cases++;
    inc(report.byRoute, c.route);
    inc(report.byFamily, c.family);
    inc(report.byStatus, String(res.status));
    try {
      const code = (JSON.parse(res.text) as { error?: { code?: string } }).error?.code;
      if (code) inc(report.byCode, code);
    } catch {
      // not JSON: judged below
    }
    const problems = judgeAnswer(c, res);
    const now = await countState(server.t);
    if (now !== state) problems.push(`state changed: rows ${state} → ${now} (requests/step_runs/audit_events/api_keys)`);
    state = now;
    const logged = server.logs.slice(logsBefore);
    const errors = logged.filter((l) => l.level === 'error');
    if (errors.length > 0) problems.push(`logged at error level: ${JSON.stringify(errors[0]).slice(0, 200)}`);
    if (logged.some((l) => STACK.some((re) => re.test(JSON.stringify(l))))) problems.push('a stack trace in the log');
    if (problems.length > 0) {
      report.failures.push({ n: c.n, route: c.route, family: c.family, what: c.what, status: res.status, problems, answer: res.text.slice(0, 300) });
      o.log?.(`fuzz: case ${c.n} (${c.route}, ${c.family}: ${c.what}) → ${res.status}: ${problems.join('; ')}`);
    }
    if (report.cases % 500 === 0) o.log?.(`fuzz: ${report.cases} cases, ${report.failures.length} failures, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  report.polluted = pollutionSince(protos);
  report.elapsedMs = Date.now() - started;
  return report;
}

export function formatReport(r: FuzzReport): string {
  const sorted = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `fuzz: seed ${r.seed}, ${r.cases} hostile inputs in ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `  routes    ${sorted(r.byRoute)}`,
    `  families  ${sorted(r.byFamily)}`,
    `  statuses  ${sorted(r.byStatus)}`,
    `  codes     ${sorted(r.byCode)}`,
    `  polluted  ${r.polluted.length === 0 ? 'nothing' : r.polluted.join(', ')}`,
    r.failures.length === 0 && r.polluted.length === 0
      ? '  verdict   OK: never a 5xx, every refusal a JSON 4xx with a CONVEYOR_ERR code, no stack trace, no state change, no prototype polluted'
      : `  verdict   FAILED: ${r.failures.length} cases\n${r.failures.slice(0, 20).map((f) => `    - #${f.n} ${f.route} ${f.family} (${f.what}) → ${f.status}: ${f.problems.join('; ')} | ${f.answer.slice(0, 160)}`).join('\n')}`,
  ].join('\n');
}
