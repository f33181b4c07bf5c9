/**
 * Client commands over the HTTP API: `submit`, `requests`, `steps [--follow]`, `resume`,
 * `stop`. They talk to `--url`, else `CONVEYOR_URL`, else `http://HOST:PORT`, with `--key`, else
 * `CONVEYOR_API_KEY` (or its alias `CONVEYOR_KEY`).
 */
import { readFileSync } from 'node:fs';
import { migrateRequestsCommand } from './requests-migrate';
import { ApiClient, CLIENT_FLAGS, CLIENT_OPTIONS, CommandError, EXIT, parseArgs, requestExit, runCommand, table, UsageError, type Io } from './args';


const FINAL = new Set(['completed', 'stopped', 'error_stop']);

interface RequestSummary {
  id: string;
  pipeline: string;
  status: string;
  businessKey: string | null;
  test: boolean;
  error: { stepId?: string; code?: string; message?: string } | null;
  createdAt: string;
}

interface StepItem {
  id: string;
  stepId: string;
  attempt: number;
  status: string;
  transport: string | null;
  durationMs: number | null;
  error: { code?: string; message?: string } | null;
  startedAt: string;
}

/** Reads `--data`: inline JSON, `-` for stdin, or a file name. */
function readData(value: string | undefined): unknown {
  if (value === undefined) throw new UsageError('--data is required (inline JSON, a file, or - for stdin)');
  const trimmed = value.trim();
  let text: string;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) text = value;
  else {
    try {
      text = readFileSync(value === '-' ? 0 : value, 'utf8');
    } catch (e) {
      throw new CommandError(`cannot read --data ${value}: ${(e as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CommandError(`--data is not valid JSON: ${(e as Error).message}`);
  }
}

export const SUBMIT_USAGE = `Usage: conveyor submit <pipeline> --data <json|file|-> [options]

Submits one request; the data is its payload. Prints the request id and status.

Options:
  --data <json|file|->        the payload: inline JSON, a JSON file, or - for stdin
  --wait <seconds>            wait up to this long (max 60) for the end, and print the final request
  --business-key <key>        X-Business-Key
  --idempotency-key <key>     Idempotency-Key: submitting the same key again answers the first request
  --test                      test mode
  --json                      print the API's answer as JSON
${CLIENT_OPTIONS}

Exit code: 0 accepted (with --wait: completed); 1 refused (with the API's error), or with
--wait ended in error_stop or stopped, or not ended in time; 2 bad usage.`;

export function submitCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, SUBMIT_USAGE, async () => {
    const a = parseArgs(args, ['data', 'wait', 'business-key', 'idempotency-key', ...CLIENT_FLAGS], ['test', 'json', 'help']);
    if (a.switches.has('help')) return void io.out(SUBMIT_USAGE);
    const [pipeline, ...extra] = a.positional;
    if (!pipeline || extra.length > 0) throw new UsageError('name exactly one pipeline');
    const data = readData(a.flags.data);
    const query = new URLSearchParams();
    if (a.flags.wait) query.set('wait', a.flags.wait);
    if (a.switches.has('test')) query.set('test', '1');
    const headers: Record<string, string> = {};
    if (a.flags['business-key']) headers['x-business-key'] = a.flags['business-key'];
    if (a.flags['idempotency-key']) headers['idempotency-key'] = a.flags['idempotency-key'];
    const path = `/api/pipelines/${encodeURIComponent(pipeline)}/requests${query.size ? `?${query}` : ''}`;
    const res = await new ApiClient(io.env, a.flags).expectOk<{ id: string; status: string; error?: { code: string; message: string } | null }>('POST', path, data, headers);
    const r = res.body;
    if (a.switches.has('json')) io.out(JSON.stringify(r, null, 2));
    else io.out(`${r.id}  ${r.status}${r.error ? `  ${r.error.code}: ${r.error.message}` : ''}`);
    if (!a.flags.wait) return EXIT.OK;
    if (!FINAL.has(r.status)) io.err(`conveyor: request ${r.id} is still ${r.status} after ${a.flags.wait} s`);
    return requestExit(r.status);
  });
}

export const REQUESTS_USAGE = `Usage: conveyor requests [options]

Lists requests, newest first (GET /api/requests). To move requests to another version of
their pipeline: conveyor requests migrate --help.

Options:
  --pipeline <id>             only this pipeline
  --status <status>           buffered, running, waiting, completed, stopped or error_stop
  --business-key <key>        only this business key
  --test | --no-test          only test requests, or none
  --since <time>              created at or after (ISO-8601 or epoch ms)
  --until <time>              created before
  --limit <n>                 page size, 1-500 (default 50)
  --cursor <cursor>           the next page (printed after a full page)
  --json                      print { items, nextCursor } as JSON
${CLIENT_OPTIONS}`;

export function requestsCommand(args: string[], io: Io): Promise<number> {
  if (args[0] === 'migrate') return migrateRequestsCommand(args.slice(1), io);
  return runCommand(io, REQUESTS_USAGE, async () => {
    const a = parseArgs(args, ['pipeline', 'status', 'business-key', 'since', 'until', 'limit', 'cursor', ...CLIENT_FLAGS], ['test', 'no-test', 'json', 'help']);
    if (a.switches.has('help')) return void io.out(REQUESTS_USAGE);
    if (a.positional.length > 0) throw new UsageError(`unexpected argument "${a.positional[0]}"`);
    const query = new URLSearchParams();
    const map: Array<[string, string]> = [['pipeline', 'pipeline'], ['status', 'status'], ['business-key', 'businessKey'], ['since', 'since'], ['until', 'until'], ['limit', 'limit'], ['cursor', 'cursor']];
    for (const [flag, param] of map) if (a.flags[flag] !== undefined) query.set(param, a.flags[flag]);
    if (a.switches.has('test')) query.set('test', '1');
    if (a.switches.has('no-test')) query.set('test', '0');
    const res = await new ApiClient(io.env, a.flags).expectOk<{ items: RequestSummary[]; nextCursor: string | null }>('GET', `/api/requests?${query}`);
    if (a.switches.has('json')) return void io.out(JSON.stringify(res.body, null, 2));
    const { items, nextCursor } = res.body;
    if (items.length === 0) return void io.out('no requests');
    const rows = [['ID', 'PIPELINE', 'STATUS', 'CREATED', 'BUSINESS KEY', 'ERROR']];
    for (const r of items) {
      rows.push([r.id, r.pipeline, r.status + (r.test ? ' (test)' : ''), r.createdAt, r.businessKey ?? '-', r.error ? `${r.error.stepId ?? ''} ${r.error.code ?? ''}: ${r.error.message ?? ''}`.trim() : '']);
    }
    for (const line of table(rows)) io.out(line);
    if (nextCursor) io.out(`more: conveyor requests ${args.filter((x) => !x.startsWith('--cursor')).join(' ')} --cursor ${nextCursor}`.replace(/\s+/g, ' '));
  });
}

export const STEPS_USAGE = `Usage: conveyor steps <request-id> [--follow] [options]

Prints the step log of one request: one line per attempt, in the order the steps started.

Options:
  --follow                    keep printing new attempts and status changes until the request ends
  --interval <ms>             how often --follow polls (default 1000)
  --json                      one JSON object per attempt (NDJSON; with --follow, as they change)
${CLIENT_OPTIONS}

Exit code with --follow: 0 when the request completed, 1 when it ended otherwise (error_stop, stopped).`;

function stepLine(s: StepItem): string {
  const duration = s.durationMs === null ? '' : `${s.durationMs} ms`;
  const error = s.error ? `${s.error.code ?? ''}: ${s.error.message ?? ''}` : '';
  return table([[s.startedAt, `${s.stepId}#${s.attempt}`, s.status, s.transport ?? '-', duration, error]])[0]!;
}

export function stepsCommand(args: string[], io: Io, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<number> {
  return runCommand(io, STEPS_USAGE, async () => {
    const a = parseArgs(args, ['interval', ...CLIENT_FLAGS], ['follow', 'json', 'help']);
    if (a.switches.has('help')) return void io.out(STEPS_USAGE);
    const [id, ...extra] = a.positional;
    if (!id || extra.length > 0) throw new UsageError('name exactly one request id');
    const interval = Number(a.flags.interval ?? 1000);
    if (!Number.isFinite(interval) || interval < 50) throw new UsageError('--interval must be at least 50 (ms)');
    const api = new ApiClient(io.env, a.flags);
    const json = a.switches.has('json');
    const shown = new Map<string, string>();
    const print = (items: StepItem[]): void => {
      for (const s of items) {
        const seen = `${s.status}:${s.durationMs ?? ''}`;
        if (shown.get(s.id) === seen) continue;
        shown.set(s.id, seen);
        io.out(json ? JSON.stringify(s) : stepLine(s));
      }
    };
    const path = `/api/requests/${encodeURIComponent(id)}`;
    for (;;) {
      const [request, steps] = await Promise.all([
        api.expectOk<{ status: string }>('GET', path),
        api.expectOk<{ items: StepItem[] }>('GET', `${path}/steps`),
      ]);
      print(steps.body.items);
      if (!a.switches.has('follow')) return EXIT.OK;
      if (FINAL.has(request.body.status)) {
        if (!json) io.out(`request ${id} ${request.body.status}`);
        return requestExit(request.body.status);
      }
      await sleep(interval);
    }
  });
}

const operateUsage = (verb: 'resume' | 'stop'): string => `Usage: conveyor ${verb} <request-id> [options]

${verb === 'resume'
    ? 'Resumes a request in error_stop: its failed step is tried again (POST /api/requests/:id/resume).\n\nOptions:\n  --params <json|file>        replace params the step lists in resumable, for this try'
    : 'Stops a request that has not ended (POST /api/requests/:id/stop).\n\nOptions:\n  --reason <text>             why (kept in the audit trail)'}
  --json                      print the request after it as JSON
${CLIENT_OPTIONS}

Needs a key with the "operate" role.`;

export const RESUME_USAGE = operateUsage('resume');
export const STOP_USAGE = operateUsage('stop');

export function operateCommand(verb: 'resume' | 'stop', args: string[], io: Io): Promise<number> {
  const usage = operateUsage(verb);
  return runCommand(io, usage, async () => {
    const a = parseArgs(args, [verb === 'resume' ? 'params' : 'reason', ...CLIENT_FLAGS], ['json', 'help']);
    if (a.switches.has('help')) return void io.out(usage);
    const [id, ...extra] = a.positional;
    if (!id || extra.length > 0) throw new UsageError('name exactly one request id');
    const body: Record<string, unknown> = {};
    if (a.flags.params !== undefined) body.params = readData(a.flags.params);
    if (a.flags.reason !== undefined) body.reason = a.flags.reason;
    const res = await new ApiClient(io.env, a.flags).expectOk<{ id: string; status: string }>('POST', `/api/requests/${encodeURIComponent(id)}/${verb}`, body);
    if (a.switches.has('json')) return void io.out(JSON.stringify(res.body, null, 2));
    io.out(`${res.body.id}  ${res.body.status}`);
  });
}
