/**
 * `conveyor requests migrate <pipeline> --from 3 --to 4 --map OLD=NEW …`: starts a bulk
 * migration through the API (`POST /api/pipelines/:id/migrations`), follows its progress
 * (`GET /api/migrations/:id`) with a bar on a terminal, or a line a second otherwise, and ends
 * with the counts and a table of the requests it refused, with their reasons.
 */
import { SingleBar } from 'cli-progress';
import { ApiClient, CLIENT_FLAGS, CLIENT_OPTIONS, CommandError, EXIT, parseArgs, runCommand, stepPairs, table, takeRepeated, UsageError, type Io } from './args';

export const MIGRATE_REQUESTS_USAGE = `Usage: conveyor requests migrate <pipeline> --from <version> --to <version> [options]

Moves the requests of one version of a pipeline to another (POST /api/pipelines/:id/migrations).
Each request is checked first and moves in one transaction, or is refused, untouched, with the
reason. Steps keep their ids unless mapped. Shows the progress, then the refusals.

Options:
  --from <version>            the version the requests run on now
  --to <version>              the version to move them to
  --map <old=new>             an old step and the step it becomes (repeat for each renamed step)
  --wait <step=keep|rekey>    a wait step whose event changed: keep the old event and key, or re-render them
  --status <status>           only requests in this status (default: every one that has not ended)
  --step <step>               only requests with an open run of this (old) step
  --business-key <key>        only this business key
  --since <time>              created at or after (ISO-8601)
  --until <time>              created before
  --dry-run                   check every request and change nothing
  --progress <mode>           bar, lines or none (default a bar on a terminal, else a line a second)
  --json                      print the final migration as JSON
${CLIENT_OPTIONS}

Exit code: 0 every request moved (or would, with --dry-run); 1 some were refused, or the
migration failed or was refused (409: another runs); 2 bad usage.`;

interface MigrationAnswer {
  id: string;
  status: string;
  dryRun: boolean;
  counts: { total: number; migrated: number; refused: number; left: number };
  refusals: Array<{ requestId: string; problems: Array<{ path: string; message: string }> }>;
  error: string | null;
}

const version = (v: string | undefined, option: string): number => {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) throw new UsageError(`--${option} is a version number (1 or more)`);
  return n;
};

/** The body of `POST /api/pipelines/:id/migrations` from the command line. */
function migrationBody(args: string[]): { pipeline: string; body: Record<string, unknown>; flags: Record<string, string>; json: boolean; progress: string | undefined } {
  const map = takeRepeated(args, 'map');
  const waits = takeRepeated(map.rest, 'wait');
  const a = parseArgs(waits.rest, ['from', 'to', 'status', 'step', 'business-key', 'since', 'until', 'progress', ...CLIENT_FLAGS], ['dry-run', 'json', 'help']);
  const [pipeline, ...extra] = a.positional;
  if (!pipeline || extra.length > 0) throw new UsageError('name exactly one pipeline');
  if (a.flags.progress !== undefined && !['bar', 'lines', 'none'].includes(a.flags.progress)) throw new UsageError('--progress is bar, lines or none');
  const filter: Record<string, string> = {};
  for (const [flag, key] of [['status', 'status'], ['step', 'step'], ['business-key', 'businessKey'], ['since', 'since'], ['until', 'until']] as const) {
    if (a.flags[flag] !== undefined) filter[key] = a.flags[flag];
  }
  const wait = stepPairs(waits.values, 'wait', (v) => v === 'keep' || v === 'rekey');
  const plan = { toVersion: version(a.flags.to, 'to'), mapping: stepPairs(map.values, 'map'), ...(Object.keys(wait).length > 0 ? { waits: wait } : {}) };
  const body = { fromVersion: version(a.flags.from, 'from'), plan, filter, dryRun: a.switches.has('dry-run') };
  return { pipeline, body, flags: a.flags, json: a.switches.has('json'), progress: a.flags.progress };
}

/** Polls the migration until it ends, showing its progress. */
async function follow(client: ApiClient, id: string, mode: string, io: Io): Promise<MigrationAnswer> {
  let bar: SingleBar | undefined;
  let last = '';
  for (;;) {
    const m = (await client.expectOk<MigrationAnswer>('GET', `/api/migrations/${id}`)).body;
    const done = m.counts.migrated + m.counts.refused;
    if (mode === 'bar') {
      bar ??= new SingleBar({ format: 'migrating |{bar}| {percentage}% | {value}/{total} | moved {moved} refused {refused}', barsize: 24, hideCursor: true, stream: process.stderr });
      if (!bar.isActive) bar.start(Math.max(1, m.counts.total), 0, { moved: 0, refused: 0 });
      bar.update(Math.min(done, Math.max(1, m.counts.total)), { moved: m.counts.migrated, refused: m.counts.refused });
    } else if (mode === 'lines') {
      const line = `${m.dryRun ? 'checking' : 'migrating'} ${done}/${m.counts.total} | ${m.dryRun ? 'movable' : 'moved'} ${m.counts.migrated} refused ${m.counts.refused} left ${m.counts.left}`;
      if (line !== last) io.err(line);
      last = line;
    }
    if (m.status !== 'running') {
      bar?.stop();
      return m;
    }
    await new Promise((r) => setTimeout(r, mode === 'lines' ? 1000 : 250));
  }
}

function summary(m: MigrationAnswer, io: Io): void {
  const verb = m.dryRun ? 'would move' : 'moved';
  io.out(`migration ${m.id} ${m.status}${m.dryRun ? ' (dry run: nothing changed)' : ''}: ${verb} ${m.counts.migrated}, refused ${m.counts.refused}, of ${m.counts.total}`);
  if (m.error) io.out(`error: ${m.error}`);
  if (m.refusals.length === 0) return;
  const rows = [['REQUEST', 'PATH', 'REASON']];
  for (const r of m.refusals) for (const p of r.problems) rows.push([r.requestId, p.path, p.message]);
  for (const line of table(rows)) io.out(line);
  if (m.refusals.length < m.counts.refused) io.out(`(${m.counts.refused - m.refusals.length} more: GET /api/migrations/${m.id})`);
}

export function migrateRequestsCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, MIGRATE_REQUESTS_USAGE, async () => {
    if (args.includes('--help')) return void io.out(MIGRATE_REQUESTS_USAGE);
    const { pipeline, body, flags, json, progress } = migrationBody(args);
    const client = new ApiClient(io.env, flags);
    const started = await client.expectOk<MigrationAnswer>('POST', `/api/pipelines/${encodeURIComponent(pipeline)}/migrations`, body);
    const mode = progress ?? (json ? 'none' : process.stderr.isTTY ? 'bar' : 'lines');
    const m = await follow(client, started.body.id, mode, io);
    if (json) io.out(JSON.stringify(m, null, 2));
    else summary(m, io);
    if (m.status === 'failed') throw new CommandError(`migration ${m.id} failed: ${m.error ?? 'unknown error'}`);
    return m.counts.refused > 0 ? EXIT.FAILED : EXIT.OK;
  });
}
