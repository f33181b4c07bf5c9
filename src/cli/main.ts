/** `conveyor <command>`: the command-line entry. */
import { Engine, loadProject } from '../engine';
import { formatIssue, PipelineValidationError } from '../errors';
import { toMermaid } from '../pipeline/graph';
import { serve } from './server';

const HELP = `Usage: conveyor <command> [options]

Commands:
  start                 run the engine and the API in one process (what \`npm start\` runs)
  validate              check every pipeline and module; prints each problem, exits 1 if any
  graph <pipeline>      print the pipeline's graph as Mermaid text
  help                  show this text

Environment: PORT, HOST, DATABASE_URL, CONVEYOR_API_KEYS, CONVEYOR_PIPELINES_DIR,
CONVEYOR_MODULES_DIR, LOG_LEVEL (see README.md).`;

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

async function start(): Promise<void> {
  let engine: Engine;
  try {
    engine = await Engine.create();
  } catch (e) {
    if (e instanceof PipelineValidationError) {
      err('conveyor: refusing to start, the configuration is invalid:');
      for (const issue of e.issues) err(`  ${formatIssue(issue)}`);
      process.exit(1);
    }
    throw e;
  }
  await engine.start();
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 3000);
  const server = await serve(engine, host, port, out);
  engine.logger.info('conveyor started', { url: server.url, pipelines: engine.catalog.list().map((p) => `${p.pipeline.id}@${p.version}`), store: engine.store.dialect });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    engine.logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void server.close().then(() => engine.stop()).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

function validate(): void {
  const { issues, pipelines, registry } = loadProject();
  if (issues.length > 0) {
    for (const issue of issues) err(formatIssue(issue));
    err(`${issues.length} problem(s) found`);
    process.exit(1);
  }
  out(`ok: ${pipelines.length} pipeline(s) (${pipelines.map((p) => p.id).join(', ')}), ${registry.all().length} module(s)`);
}

function graph(id: string | undefined): void {
  if (!id) {
    err('usage: conveyor graph <pipeline>');
    process.exit(2);
  }
  const { pipelines, issues } = loadProject();
  const p = pipelines.find((x) => x.id === id);
  if (!p) {
    err(issues.length > 0 ? issues.map(formatIssue).join('\n') : `unknown pipeline "${id}"`);
    process.exit(1);
  }
  out(toMermaid(p));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start();
    case 'validate':
      return validate();
    case 'graph':
      return graph(rest[0]);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return out(HELP);
    default:
      err(`conveyor: unknown command "${command}"\n\n${HELP}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  err(`conveyor: ${(e as Error).message}`);
  process.exit(1);
});
