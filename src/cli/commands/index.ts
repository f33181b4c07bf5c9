/**
 * The operations commands of `conveyor`, by name. `src/cli/main.ts` hands these over before
 * its own switch, so each parses its own options and answers its own `--help`.
 */
import { processIo, type Io } from './args';
import { graphCommand, GRAPH_USAGE } from './graph';
import { keysCommand, KEYS_USAGE } from './keys';
import { migrateCommand, MIGRATE_USAGE } from './migrate';
import { operateCommand, requestsCommand, REQUESTS_USAGE, RESUME_USAGE, stepsCommand, STEPS_USAGE, STOP_USAGE, submitCommand, SUBMIT_USAGE } from './requests';

export type OpsCommand = (args: string[], io?: Io) => Promise<number>;

/** Command name → handler; each resolves to the exit code. */
export const OPS_COMMANDS: Record<string, OpsCommand> = {
  submit: (args, io = processIo) => submitCommand(args, io),
  requests: (args, io = processIo) => requestsCommand(args, io),
  steps: (args, io = processIo) => stepsCommand(args, io),
  resume: (args, io = processIo) => operateCommand('resume', args, io),
  stop: (args, io = processIo) => operateCommand('stop', args, io),
  keys: (args, io = processIo) => keysCommand(args, io),
  migrate: (args, io = processIo) => migrateCommand(args, io),
  graph: (args, io = processIo) => graphCommand(args, io),
};

/** The usage text of each, for tests and docs. */
export const OPS_USAGE: Record<string, string> = {
  submit: SUBMIT_USAGE, requests: REQUESTS_USAGE, steps: STEPS_USAGE, resume: RESUME_USAGE, stop: STOP_USAGE,
  keys: KEYS_USAGE, migrate: MIGRATE_USAGE, graph: GRAPH_USAGE,
};

/** The lines `conveyor help` shows for these commands. */
export const OPS_HELP = `  graph <pipeline> [--svg f] [--png f]
                                 prints the pipeline's graph as Mermaid text; draws SVG/PNG with Chromium
  submit <pipeline> --data <json|file|-> [--wait s]
                                 submits a request (CONVEYOR_URL, CONVEYOR_KEY)
  requests [--pipeline p] [--status s] [--limit n]
                                 lists requests, newest first
  steps <request-id> [--follow]  prints a request's step log; --follow tails it until the end
  resume <request-id> [--params json]
                                 retries the failed step of a request in error_stop
  stop <request-id> [--reason r] stops a request
  keys create --name n --roles a+b | keys list | keys revoke <id>
                                 manages stored API keys (on DATABASE_URL)
  migrate                        applies pending schema migrations to DATABASE_URL
  Every command takes --help; client commands and keys/migrate take --json.`;
