/**
 * `npm run demo`: the `bitrix-lead` pipeline (seed 002) on its four routes, end to end.
 *
 * It starts the CRM stand-in on a free port, an engine on a fresh SQLite file in the OS temp
 * dir with the real `pipelines/` and `modules/`, and the HTTP API on a free port. It then
 * submits one request per branch through the API (`?wait=10`), reads each request's step log
 * back through the API, and prints what happened. Everything is shut down and the temp dir
 * removed at the end.
 *
 * Exit code: 0 when every branch completed on its expected route, 1 otherwise.
 * `LOG_LEVEL` sets the engine's log level (default `warn`, so the table stays readable).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import axios from 'axios';
import { KeyRing } from '../src/api/auth';
import { serve, type RunningServer } from '../src/cli/server';
import { Engine } from '../src/engine';
import { createLogger } from '../src/log/logger';
import { BRANCH_PAYLOADS, startCrmStandin, type BranchPayload, type CrmStandin } from './crm-standin';

const ROOT = path.resolve(__dirname, '..');
const PIPELINE = 'bitrix-lead';

interface StepItem {
  stepId: string;
  attempt: number;
  status: string;
  transport: string | null;
  durationMs: number | null;
}

interface BranchResult {
  name: string;
  branch: BranchPayload;
  requestId: string;
  httpStatus: number;
  status: string;
  route: string[];
  transports: string;
  ms: number;
  ok: boolean;
  error?: string;
}

const out = (line = ''): void => void process.stdout.write(`${line}\n`);

/** `event ×3, http ×1`: how the steps travelled, in order of first use. */
function countTransports(items: StepItem[]): string {
  const counts = new Map<string, number>();
  for (const s of items) counts.set(s.transport ?? '?', (counts.get(s.transport ?? '?') ?? 0) + 1);
  return [...counts].map(([t, n]) => `${t} ×${n}`).join(', ');
}

/** Pads cells to column widths; `│` between columns. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' │ ').trimEnd();
  return [line(head), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...rows.map(line)];
}

async function runBranch(api: string, key: string, name: string, branch: BranchPayload): Promise<BranchResult> {
  const headers = { authorization: `Bearer ${key}` };
  const t0 = Date.now();
  const submitted = await axios.post(`${api}/api/pipelines/${PIPELINE}/requests?wait=10`, branch.payload, { headers, validateStatus: () => true });
  const ms = Date.now() - t0;
  const body = submitted.data as { id?: string; status?: string; error?: { stepId?: string; code?: string; message?: string } | null };
  if (!body.id) {
    return { name, branch, requestId: '-', httpStatus: submitted.status, status: `HTTP ${submitted.status}`, route: [], transports: '', ms, ok: false, error: JSON.stringify(submitted.data) };
  }
  const steps = await axios.get(`${api}/api/requests/${body.id}/steps`, { headers, validateStatus: () => true });
  const items = ((steps.data as { items?: StepItem[] }).items ?? []);
  const route = items.map((s) => s.stepId);
  const status = body.status ?? '?';
  const ok = submitted.status === 200 && status === 'completed' && route.join('\n') === branch.expectedRoute.join('\n');
  const error = body.error ? `${body.error.stepId}: ${body.error.code}: ${body.error.message}` : undefined;
  return { name, branch, requestId: body.id, httpStatus: submitted.status, status, route, transports: countTransports(items), ms, ok, error };
}

function printBranch(r: BranchResult): void {
  out(`${r.ok ? '✔' : '✘'} ${r.name}  ${r.branch.label}`);
  out(`    e-mail      ${r.branch.payload.email}`);
  out(`    status      ${r.status}   (HTTP ${r.httpStatus}, ${r.ms} ms, request ${r.requestId})`);
  out(`    route       ${r.route.join(' → ') || '(none)'}`);
  if (!r.ok) out(`    expected    ${r.branch.expectedRoute.join(' → ')}`);
  out(`    transports  ${r.transports || '(none)'}`);
  if (r.error) out(`    error       ${r.error}`);
  out();
}

async function main(): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-demo-'));
  const databaseUrl = `sqlite:${path.join(dir, 'demo.db')}`;
  let crm: CrmStandin | undefined;
  let engine: Engine | undefined;
  let server: RunningServer | undefined;
  try {
    crm = await startCrmStandin({ port: 0, host: '127.0.0.1' });
    // remember-deal.module.json reads ${CRM_BASE_URL} when the engine loads the modules.
    process.env.CRM_BASE_URL = crm.url;
    engine = await Engine.create({
      databaseUrl,
      pipelinesDir: path.join(ROOT, 'pipelines'),
      modulesDir: path.join(ROOT, 'modules'),
      cwd: ROOT,
      logger: createLogger(process.env.LOG_LEVEL ?? 'warn'),
    });
    await engine.start();
    const key = `demo-${randomBytes(12).toString('hex')}`;
    server = await serve(engine, '127.0.0.1', 0, out, { keys: new KeyRing(engine.store, `${key}:submit+read`) });
    const version = engine.catalog.latest(PIPELINE)?.version;

    out(`Conveyor demo: pipeline "${PIPELINE}" v${version}, one request per route (seed 002)`);
    out(`  CRM stand-in  ${crm.url}`);
    out(`  API           ${server.url}`);
    out(`  store         ${databaseUrl}`);
    out();

    const results: BranchResult[] = [];
    for (const [name, branch] of Object.entries(BRANCH_PAYLOADS)) {
      const r = await runBranch(server.url, key, name, branch);
      results.push(r);
      printBranch(r);
    }

    for (const line of table(
      ['branch', 'e-mail', 'status', 'steps', 'transports', 'route'],
      results.map((r) => [r.name, r.branch.payload.email, r.status, String(r.route.length), r.transports, r.ok ? '✔ as expected' : '✘ differs']),
    )) out(`  ${line}`);
    out();
    const state = crm.state;
    out(`CRM afterwards: ${state.leads.length} leads (1 at start), ${state.remembered.length} remembered deals.`);
    const failed = results.filter((r) => !r.ok);
    out(failed.length === 0 ? `All ${results.length} routes as expected.` : `${failed.length} of ${results.length} routes differ: ${failed.map((r) => r.name).join(', ')}.`);
    return failed.length === 0 ? 0 : 1;
  } finally {
    await server?.close().catch(() => {});
    await engine?.stop().catch(() => {});
    await crm?.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
