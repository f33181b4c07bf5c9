/** Shared by the intake tests: the fixture engine, a local HTTP receiver, and row readers. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { startTestEngine, type TestEngine, type TestEngineOptions } from '../support/engine';

export const INTAKE_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'intake');
export { sleep } from '../support/poll';

/** An engine on the intake fixtures (`test/fixtures/intake`). */
export function startIntakeEngine(opts: TestEngineOptions = {}): Promise<TestEngine> {
  return startTestEngine({
    pipelinesDir: path.join(INTAKE_FIXTURES, 'pipelines'),
    modulesDir: path.join(INTAKE_FIXTURES, 'modules'),
    ...opts,
    engine: { intake: { pollMs: 50, sweepMs: 200, ...opts.engine?.intake }, ...opts.engine },
  });
}

export interface Row {
  id: string;
  status: string;
  created_at: number;
  release_at: number | null;
  hold: string | null;
  active_key: string | null;
  business_key: string | null;
}

/** The requests of a pipeline in arrival order, with their intake columns. */
export async function rowsOf(t: TestEngine, pipeline: string): Promise<Row[]> {
  const rows = await t.engine.store.query<Row>(
    'SELECT id, status, created_at, release_at, hold, active_key, business_key FROM requests WHERE pipeline_id = ? ORDER BY created_at, id',
    [pipeline],
  );
  return rows.map((r) => ({ ...r, created_at: Number(r.created_at), release_at: r.release_at === null ? null : Number(r.release_at) }));
}

/** When each request's first step started, by request id. */
export async function firstStarts(t: TestEngine, pipeline: string): Promise<Map<string, number>> {
  const rows = await t.engine.store.query<{ request_id: string; s: number }>(
    'SELECT request_id, MIN(started_at) AS s FROM step_runs WHERE pipeline_id = ? GROUP BY request_id',
    [pipeline],
  );
  return new Map(rows.map((r) => [String(r.request_id), Number(r.s)]));
}

/** Polls until `probe` is truthy (test/support/poll.ts). */
export { until } from '../support/poll';

/** The largest number of `times` inside any half-open span `[t, t + spanMs)`. */
export function maxInAnySpan(times: number[], spanMs: number): number {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    while (s[i]! - s[j]! >= spanMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

export interface Receiver {
  url: string;
  hits: Array<{ headers: http.IncomingHttpHeaders; body: string; at: number }>;
  /** Statuses to answer, in order; then 200. */
  script: number[];
  close(): Promise<void>;
}

/** A local HTTP server that records every POST and answers per `script`. */
export async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', hits: [], script: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.hits.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.writeHead(r.script.shift() ?? 200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return r;
}
