/**
 * Every command of `conveyor`, by name: its one-line summary, its usage (what `--help`
 * prints) and its handler. `src/cli/main.ts` only dispatches here; each command parses its
 * own options, refuses unknown ones (exit 2) and answers `--help` (exit 0).
 */
import { processIo, type Io } from './args';
import { graphCommand, GRAPH_USAGE } from './graph';
import { importCommand, IMPORT_USAGE } from './import';
import { keysCommand, KEYS_USAGE } from './keys';
import { migrateCommand, MIGRATE_USAGE } from './migrate';
import { pruneCommand, PRUNE_USAGE } from './prune';
import { operateCommand, requestsCommand, REQUESTS_USAGE, RESUME_USAGE, stepsCommand, STEPS_USAGE, STOP_USAGE, submitCommand, SUBMIT_USAGE } from './requests';
import { API_USAGE, ENGINE_USAGE, engineCommand, MODULE_SERVER_USAGE, moduleServerCommand, START_USAGE, validateCommand, VALIDATE_USAGE, WORKER_USAGE, workerCommand } from './serve';
import { simulateCommand, SIMULATE_USAGE } from './simulate';

export type CommandHandler = (args: string[], io?: Io) => Promise<number>;

export interface Command {
  summary: string;
  usage: string;
  run: CommandHandler;
}

const command = (summary: string, usage: string, run: (args: string[], io: Io) => Promise<number>): Command => ({ summary, usage, run: (args, io = processIo) => run(args, io) });

/** Every command, in the order `conveyor help` lists them. */
export const COMMANDS: Record<string, Command> = {
  start: command('the engine, API, dashboard and queue workers in one process (npm start)', START_USAGE, (a, io) => engineCommand('start', a, io)),
  api: command('the HTTP API and dashboard only (distributed mode: needs REDIS_URL)', API_USAGE, (a, io) => engineCommand('api', a, io)),
  engine: command('supervisor, dispatcher and in-process modules only (distributed mode)', ENGINE_USAGE, (a, io) => engineCommand('engine', a, io)),
  worker: command('runs those modules\' queue jobs (needs REDIS_URL)', WORKER_USAGE, workerCommand),
  'module-server': command('serves modules over the HTTP module protocol', MODULE_SERVER_USAGE, moduleServerCommand),
  validate: command('checks every pipeline and module; exits 1 on any problem', VALIDATE_USAGE, validateCommand),
  graph: command('prints a pipeline\'s graph as Mermaid text; draws SVG/PNG with Chromium', GRAPH_USAGE, graphCommand),
  simulate: command('dry-runs a pipeline in memory with mocked module outputs', SIMULATE_USAGE, simulateCommand),
  import: command('streams an NDJSON or CSV file into a pipeline (bulk intake), resumable', IMPORT_USAGE, importCommand),
  submit: command('submits a request; --wait waits for its end', SUBMIT_USAGE, submitCommand),
  requests: command('lists requests, newest first; requests migrate moves them to another version', REQUESTS_USAGE, requestsCommand),
  steps: command('prints a request\'s step log; --follow tails it until the end', STEPS_USAGE, stepsCommand),
  resume: command('retries the failed step of a request in error_stop', RESUME_USAGE, (a, io) => operateCommand('resume', a, io)),
  stop: command('stops a request', STOP_USAGE, (a, io) => operateCommand('stop', a, io)),
  keys: command('manages stored API keys (on DATABASE_URL)', KEYS_USAGE, keysCommand),
  migrate: command('applies pending schema migrations to DATABASE_URL', MIGRATE_USAGE, migrateCommand),
  prune: command('deletes requests that ended before then, with their step logs', PRUNE_USAGE, pruneCommand),
};

/** The commands that end by themselves (the others serve until stopped), for tests. */
const SERVING = new Set(['start', 'api', 'engine', 'worker', 'module-server']);
export const OPS_COMMANDS: Record<string, CommandHandler> = Object.fromEntries(Object.entries(COMMANDS).filter(([n]) => !SERVING.has(n)).map(([n, c]) => [n, c.run]));
export const OPS_USAGE: Record<string, string> = Object.fromEntries(Object.entries(COMMANDS).filter(([n]) => !SERVING.has(n)).map(([n, c]) => [n, c.usage]));

/** The synopsis of a command: the first line of its usage, without `Usage: conveyor `. */
export const synopsis = (name: string): string => COMMANDS[name]!.usage.split('\n', 1)[0]!.replace(/^Usage: conveyor /, '');

/** What `conveyor help` prints. */
export function mainHelp(): string {
  const lines = ['Usage: conveyor <command> [options]', '', 'Commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) {
    const syn = synopsis(name);
    if (syn.length <= 30) lines.push(`  ${syn.padEnd(31)}${c.summary}`);
    else lines.push(`  ${syn}`, `  ${''.padEnd(31)}${c.summary}`);
  }
  lines.push(
    '  help                           this text',
    '',
    'Every command takes --help, which lists its options.',
    'Client commands (import, submit, requests, steps, resume, stop) call --url, else CONVEYOR_URL,',
    'else http://HOST:PORT (http://127.0.0.1:3000), with --key, else CONVEYOR_API_KEY (alias CONVEYOR_KEY).',
    'Exit codes: 0 done (a request completed), 1 failed (a request ended in error_stop or stopped), 2 bad usage.',
    'Reference: docs/reference.md#commands',
  );
  return lines.join('\n');
}
