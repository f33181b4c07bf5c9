/**
 * The load test (issue 7): 200 concurrent HTTP clients submit for 60 s to a `conveyor start`
 * process on SQLite (as `npm start` runs it), then the database is checked:
 *
 * - zero failed submits: every call answered 202 with an id;
 * - zero lost requests: every 202 id has a row, and every request completed, each of its
 *   steps committed exactly once;
 *
 * and it prints the submit throughput, the latency percentiles of the submits
 * (p50/p90/p99/max), and how long the engine took to finish the backlog.
 *
 *   npm run load
 *   npx tsx scripts/load/run.ts [--clients 200] [--seconds 60] [--drain 180] [--json out.json]
 *
 * The clients are a small hand-rolled loop over one keep-alive agent (no dependency), in
 * this process; the engine is a child process, so they share the machine's cores.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, sleep, spawnConveyor, stopProc, waitHealthy } from '../../test/fixtures/dist/harness';
import { freePort } from '../../test/support/ports';
import { countByStatus, sqliteDb } from '../chaos/db';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'chaos', 'load');
const PIPELINE = 'load-chain';
const STEPS = 3;

export interface LoadOptions {
  /** @default 200 */
  clients?: number;
  /** @default 60 */
  seconds?: number;
  /** How long the engine may take to finish after the last submit. @default 180 */
  drainSeconds?: number;
  log?: (line: string) => void;
}

export interface LoadSummary {
  clients: number;
  seconds: number;
  submits: number;
  accepted: number;
  failed: number;
  failures: Record<string, number>;
  submitsPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** From the first submit until every accepted request completed. */
  completedAfterS: number;
  completed: number;
  completedPerSec: number;
  lost: number;
  notCompleted: number;
  duplicateSteps: number;
  wrongStepCount: number;
  extraRows: number;
  violations: string[];
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round = (n: number): number => Math.round(n * 10) / 10;

function post(agent: http.Agent, port: number, key: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, method: 'POST', path: `/api/pipelines/${PIPELINE}/requests`, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function runLoad(o: LoadOptions = {}): Promise<LoadSummary> {
  const clients = o.clients ?? 200;
  const seconds = o.seconds ?? 60;
  const log = o.log ?? (() => {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-load-'));
  const file = path.join(dir, 'load.db');
  const key = `load-${randomBytes(12).toString('hex')}`;
  const port = await freePort();
  const engine = spawnConveyor('start', ['start'], {
    DATABASE_URL: `sqlite:${file}`, REDIS_URL: '', HOST: '127.0.0.1', PORT: String(port), CONVEYOR_API_KEYS: `${key}:admin`,
    CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'), LOG_LEVEL: 'warn',
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  const ids: string[] = [];
  const failures: Record<string, number> = {};
  const s: LoadSummary = {
    clients, seconds, submits: 0, accepted: 0, failed: 0, failures, submitsPerSec: 0, latencyMs: { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 },
    completedAfterS: 0, completed: 0, completedPerSec: 0, lost: 0, notCompleted: 0, duplicateSteps: 0, wrongStepCount: 0, extraRows: 0, violations: [],
  };
  try {
    await waitHealthy(`http://127.0.0.1:${port}`, engine, 60_000);
    log(`load: ${clients} clients submitting to ${PIPELINE} (${STEPS} steps) for ${seconds} s on ${file}`);
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let i = 0;
    const client = async (): Promise<void> => {
      while (performance.now() < end) {
        const body = JSON.stringify({ i: i++ });
        const started = performance.now();
        try {
          const res = await post(agent, port, key, body);
          latencies.push(performance.now() - started);
          const id = res.status === 202 ? (JSON.parse(res.text) as { id?: string }).id : undefined;
          if (id) ids.push(id);
          else failures[`http ${res.status}`] = (failures[`http ${res.status}`] ?? 0) + 1;
        } catch (err) {
          const k = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          failures[k] = (failures[k] ?? 0) + 1;
        }
      }
    };
    const progress = setInterval(() => log(`load: ${((performance.now() - t0) / 1000).toFixed(0)} s: ${ids.length} accepted`), 10_000);
    await Promise.all(Array.from({ length: clients }, client));
    clearInterval(progress);
    const submitS = (performance.now() - t0) / 1000;
    s.accepted = ids.length;
    s.failed = Object.values(failures).reduce((a, b) => a + b, 0);
    s.submits = s.accepted + s.failed;
    s.submitsPerSec = round(s.accepted / submitS);
    const sorted = [...latencies].sort((a, b) => a - b);
    s.latencyMs = { p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1] ?? NaN), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
    log(`load: submitting done: ${s.accepted} accepted in ${submitS.toFixed(1)} s; waiting for the engine to finish them`);

    const db = sqliteDb(file);
    const deadline = Date.now() + (o.drainSeconds ?? 180) * 1000;
    while (((await countByStatus(db, 'requests')).completed ?? 0) < ids.length && Date.now() < deadline) await sleep(250);
    s.completedAfterS = round((performance.now() - t0) / 1000);
    await stopProc(engine, 'SIGTERM', 15_000);

    // ---- the verdict, on the file ------------------------------------------------------------
    const rows = new Map((await db.all<{ id: string; status: string }>('SELECT id, status FROM requests')).map((r) => [r.id, r.status]));
    for (const id of ids) {
      const status = rows.get(id);
      if (status === undefined) s.lost++;
      else if (status !== 'completed') s.notCompleted++;
    }
    s.completed = ids.length - s.lost - s.notCompleted;
    s.completedPerSec = round(s.completed / s.completedAfterS);
    s.extraRows = rows.size - new Set(ids).size;
    const [dup] = await db.all<{ n: number }>("SELECT COUNT(*) AS n FROM (SELECT 1 FROM step_runs WHERE status = 'completed' GROUP BY request_id, step_id HAVING COUNT(*) > 1)");
    s.duplicateSteps = Number(dup?.n ?? 0);
    const [wrong] = await db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM (SELECT request_id FROM step_runs WHERE status = 'completed' GROUP BY request_id HAVING COUNT(*) <> ${STEPS})`);
    s.wrongStepCount = Number(wrong?.n ?? 0);

    if (s.failed > 0) s.violations.push(`${s.failed} submits failed: ${JSON.stringify(failures)}`);
    if (s.lost > 0) s.violations.push(`${s.lost} accepted ids have no row`);
    if (s.notCompleted > 0) s.violations.push(`${s.notCompleted} accepted requests did not complete within the drain time`);
    if (s.extraRows !== 0) s.violations.push(`${s.extraRows} rows in the database that no client was answered for`);
    if (s.duplicateSteps > 0) s.violations.push(`${s.duplicateSteps} (request, step) committed more than once`);
    if (s.wrongStepCount > 0) s.violations.push(`${s.wrongStepCount} requests without exactly ${STEPS} committed steps`);
    return s;
  } catch (err) {
    s.violations.push(`the run failed: ${(err as Error).message}`);
    log(engine.output.slice(-20).join('\n'));
    return s;
  } finally {
    agent.destroy();
    await stopProc(engine, 'SIGKILL', 1000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatLoad(s: LoadSummary): string {
  return [
    `load: ${s.clients} concurrent clients, ${s.seconds} s of submits to ${PIPELINE} (${STEPS} in-process steps), one \`conveyor start\` on SQLite`,
    `  submits     ${s.submits} (${s.accepted} accepted, ${s.failed} failed${s.failed ? ` ${JSON.stringify(s.failures)}` : ''})`,
    `  throughput  ${s.submitsPerSec} submits/s accepted; ${s.completedPerSec} requests/s completed (all done ${s.completedAfterS} s after the first submit)`,
    `  latency     p50 ${s.latencyMs.p50} ms, p90 ${s.latencyMs.p90} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms (mean ${s.latencyMs.mean} ms)`,
    `  database    ${s.completed} completed, ${s.lost} lost, ${s.notCompleted} not completed, ${s.duplicateSteps} duplicate step commits, ${s.extraRows} unexpected rows`,
    s.violations.length === 0 ? '  verdict     OK: zero failed submits, zero lost requests' : `  verdict     FAILED:\n${s.violations.map((v) => `    - ${v}`).join('\n')}`,
  ].join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

if (require.main === module) {
  runLoad({
    clients: Number(arg('clients') ?? 200),
    seconds: Number(arg('seconds') ?? 60),
    drainSeconds: Number(arg('drain') ?? 180),
    log: (l) => process.stdout.write(`${l}\n`),
  }).then(
    (s) => {
      process.stdout.write(`${formatLoad(s)}\n`);
      const json = arg('json');
      if (json) fs.writeFileSync(json, `${JSON.stringify(s, null, 2)}\n`);
      process.exit(s.violations.length === 0 ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`load: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
