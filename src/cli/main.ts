/** `conveyor <command>`: the command-line entry. */
import { Engine, loadProject, parseList, type EngineRoles } from '../engine';
import { formatIssue, PipelineValidationError } from '../errors';
import { createLogger } from '../log/logger';
import { metricsFor } from '../metrics/metrics';
import { metricsListenEnv, serveMetrics, type MetricsServer } from '../metrics/server';
import { WorkerMetrics } from '../metrics/worker-metrics';
import { startTracing, stopTracing, tracingConfig } from '../tracing/tracing';
import { createModuleServer, listenModuleServer } from '../transports/module-server';
import { QueueHub, QueueWorker } from '../transports/queue';
import { importCommand } from './commands/import';
import { pruneCommand } from './commands/prune';
import { serve, type RunningServer } from './server';
import { OPS_COMMANDS, OPS_HELP } from './commands/index';
import { simulateCommand } from './commands/simulate';

const HELP = `Usage: conveyor <command> [options]

Commands:
  start                          the engine, API and queue workers in one process (\`npm start\`)
  api                            the HTTP API only (distributed mode: needs REDIS_URL)
  engine                         supervisor + dispatcher only (distributed mode: needs REDIS_URL)
  worker --modules a,b           runs those modules' queue jobs (needs REDIS_URL)
  module-server --modules a,b [--port N] [--host H]
                                 serves modules over the HTTP module protocol
  validate                       checks every pipeline and module; exits 1 on any problem
${OPS_HELP}
  prune --older-than 30d [--archive f.ndjson] [--dry-run]
                                 deletes requests that ended before then, with their step logs
  import <file.ndjson|file.csv> --pipeline <id> [--id-column c] [--batch N] [--no-resume]
                                 streams a file into a pipeline (bulk intake), resumable
  simulate <pipeline> --input in.json --mock step=out.json [--action step=code[:data.json]] [--event step=data.json] [--mode m] [--json]
                                 dry-runs a pipeline in memory with mocked module outputs
  help                           this text

Environment: PORT, HOST, DATABASE_URL, REDIS_URL, CONVEYOR_API_KEYS, CONVEYOR_QUEUE_MODULES,
CONVEYOR_QUEUE_PREFIX, CONVEYOR_QUEUE_LOCK_MS, CONVEYOR_SWEEP_MS, CONVEYOR_LEASE_GRACE_MS,
CONVEYOR_QUEUE_LEASE_MS, CONVEYOR_PIPELINES_DIR, CONVEYOR_MODULES_DIR, LOG_LEVEL (see docs/reference.md);
CONVEYOR_METRICS_PORT, CONVEYOR_METRICS_HOST (/metrics of any process), OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, CONVEYOR_TRACING (docs/observability.md).`;

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** Reads `--name value` options; anything else is positional. */
function parseArgs(args: string[]): { flags: Record<string, string>; positional: string[] } {
  const flags: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
      flags[name] = inline ?? (args[i + 1] && !args[i + 1]!.startsWith('--') ? args[++i]! : 'true');
    } else positional.push(a);
  }
  return { flags, positional };
}

function fail(message: string, code = 1): never {
  err(`conveyor: ${message}`);
  process.exit(code);
}

/** Stops cleanly on SIGTERM/SIGINT, within a deadline. */
function onShutdown(stop: () => Promise<void>, log: (m: string, f?: Record<string, unknown>) => void): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    void stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function createEngine(): Promise<Engine> {
  try {
    return await Engine.create();
  } catch (e) {
    if (e instanceof PipelineValidationError) {
      err('conveyor: refusing to start, the configuration is invalid:');
      for (const issue of e.issues) err(`  ${formatIssue(issue)}`);
      process.exit(1);
    }
    throw e;
  }
}

/** The process's own `/metrics` port, when `CONVEYOR_METRICS_PORT` is set. */
async function metricsPort(source: Parameters<typeof serveMetrics>[0]): Promise<MetricsServer | undefined> {
  const at = metricsListenEnv();
  if (!at) return undefined;
  const server = await serveMetrics(source, at.host, at.port);
  out(`metrics on ${server.url}/metrics`);
  return server;
}

/** `start`, `api` and `engine`: the same engine with different roles. */
async function run(roles: EngineRoles, withApi: boolean, name: string): Promise<void> {
  if (name !== 'start' && !process.env.REDIS_URL) fail(`"${name}" is a distributed-mode role: set REDIS_URL (and DATABASE_URL=mysql://…), or use "start"`);
  await startTracing(tracingConfig(name));
  const engine = await createEngine();
  // Counting starts before the first commit (recovery may commit during start).
  const metrics = metricsFor(engine);
  const metricsServer = await metricsPort(metrics);
  await engine.start(roles);
  let server: RunningServer | undefined;
  if (withApi) {
    server = await serve(engine, process.env.HOST ?? '127.0.0.1', Number(process.env.PORT ?? 3000), out);
  }
  if (server) {
    out('Conveyor is running:');
    out(`  dashboard  ${server.url}/   (sign in with an API key)`);
    out(`  API        ${server.url}/api`);
  }
  engine.logger.info('conveyor started', {
    role: name, url: server?.url, store: engine.store.dialect, distributed: engine.distributed,
    pipelines: engine.catalog.list().map((p) => `${p.pipeline.id}@${p.version}`),
  });
  onShutdown(async () => {
    engine.accepting = false;
    await server?.close();
    await engine.stop();
    await metricsServer?.close();
    await stopTracing();
  }, (m, f) => engine.logger.info(m, f));
}

async function worker(flags: Record<string, string>): Promise<void> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) fail('"worker" needs REDIS_URL');
  const names = parseList(flags.modules);
  if (names.length === 0) fail('usage: conveyor worker --modules a,b', 2);
  const { registry, issues } = loadProject({ queueModules: [] });
  if (issues.length > 0) fail(`invalid configuration:\n${issues.map(formatIssue).join('\n')}`);
  const unknown = names.filter((n) => !registry.get(n)?.def);
  if (unknown.length > 0) fail(`no in-process module named ${unknown.map((n) => `"${n}"`).join(', ')} in ${process.env.CONVEYOR_MODULES_DIR ?? './modules'}`);
  await startTracing(tracingConfig('worker'));
  const logger = createLogger();
  const hub = new QueueHub(redisUrl, { prefix: process.env.CONVEYOR_QUEUE_PREFIX || undefined });
  const metrics = new WorkerMetrics();
  const metricsServer = await metricsPort(metrics);
  const w = new QueueWorker(hub, names.map((n) => registry.get(n)!), logger, metrics.observe);
  w.start();
  onShutdown(async () => {
    await w.stop();
    await metricsServer?.close();
    await stopTracing();
  }, (m, f) => logger.info(m, f));
}

async function moduleServer(flags: Record<string, string>): Promise<void> {
  const names = parseList(flags.modules);
  const { registry, issues } = loadProject({ queueModules: [] });
  if (issues.length > 0) fail(`invalid configuration:\n${issues.map(formatIssue).join('\n')}`);
  const mods = names.length > 0 ? names.map((n) => registry.get(n) ?? fail(`unknown module "${n}"`)) : registry.all().filter((m) => m.def);
  const bad = mods.filter((m) => !m.def);
  if (bad.length > 0) fail(`${bad.map((m) => m.name).join(', ')}: not an in-process module`);
  await startTracing(tracingConfig('module-server'));
  const logger = createLogger();
  const { server, url } = await listenModuleServer(createModuleServer(mods, logger), flags.host ?? process.env.HOST ?? '127.0.0.1', Number(flags.port ?? process.env.PORT ?? 8090));
  out(`module server on ${url}: ${mods.map((m) => `POST ${url}/modules/${m.name}`).join(', ')}`);
  onShutdown(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await stopTracing();
  }, (m, f) => logger.info(m, f));
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

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== undefined && Object.hasOwn(OPS_COMMANDS, command)) {
    process.exitCode = await OPS_COMMANDS[command]!(rest);
    return;
  }
  if (command === 'simulate') {
    process.exitCode = await simulateCommand(rest);
    return;
  }
  const { flags, positional } = parseArgs(rest);
  if (flags.help) return out(HELP);
  switch (command) {
    case 'start':
      return run({ engine: true, worker: true }, true, 'start');
    case 'api':
      return run({ engine: false, worker: false }, true, 'api');
    case 'engine':
      return run({ engine: true, worker: false }, false, 'engine');
    case 'worker':
      return worker(flags);
    case 'module-server':
      return moduleServer(flags);
    case 'validate':
      return validate();
    case 'prune':
      process.exitCode = await pruneCommand(flags, out);
      return;
    case 'import':
      process.exitCode = await importCommand(positional, flags, out);
      return;
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
