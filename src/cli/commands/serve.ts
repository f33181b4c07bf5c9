/**
 * The long-running commands: `start`, `api`, `engine` (the same engine with different roles),
 * `worker` and `module-server`, and `validate`, which checks what they would load. Each
 * resolves once it is up; the process then runs until SIGTERM or SIGINT.
 */
import { loadConfig, type Config } from '../../config';
import { Engine, loadProject, parseList, type EngineRoles } from '../../engine';
import { formatIssue, PipelineValidationError } from '../../errors';
import { createLogger } from '../../log/logger';
import { semiSpaceMb } from '../../node-flags';
import { metricsFor } from '../../metrics/metrics';
import { serveMetrics, type MetricsServer } from '../../metrics/server';
import { WorkerMetrics } from '../../metrics/worker-metrics';
import { startTracing, stopTracing, tracingConfig } from '../../tracing/tracing';
import type { ModuleRegistry, RegisteredModule } from '../../module/registry';
import { createModuleServer, listenModuleServer } from '../../transports/module-server';
import { QueueHub, QueueWorker } from '../../transports/queue';
import { serve, type RunningServer } from '../server';
import { CommandError, EXIT, parseArgs, runCommand, UsageError, type Io } from './args';

const ENGINE_ENV = `Environment: PORT, HOST, DATABASE_URL, REDIS_URL, CONVEYOR_API_KEYS, CONVEYOR_PIPELINES_DIR,
CONVEYOR_MODULES_DIR, LOG_LEVEL, CONVEYOR_METRICS_PORT (/metrics of this process), OTEL_* and
CONVEYOR_TRACING (docs/observability.md), and the others of docs/reference.md#environment-variables.`;

export const START_USAGE = `Usage: conveyor start

Runs the engine, the HTTP API, the dashboard and the queue workers in one process (npm start),
on http://HOST:PORT (default http://127.0.0.1:3000); prints where the dashboard is. The first
start without CONVEYOR_API_KEYS creates an admin key and prints it once. Pipeline and module
edits take effect at the next start.

${ENGINE_ENV}`;

export const API_USAGE = `Usage: conveyor api

Runs the HTTP API and the dashboard only, on http://HOST:PORT. Distributed mode: needs
REDIS_URL and a shared DATABASE_URL=mysql://…; "conveyor engine" processes do the work.

${ENGINE_ENV}`;

export const ENGINE_USAGE = `Usage: conveyor engine

Runs the supervisor, the dispatcher and the in-process modules, without the API. Distributed
mode: needs REDIS_URL and a shared DATABASE_URL=mysql://…; run as many as you like.

${ENGINE_ENV}`;

export const WORKER_USAGE = `Usage: conveyor worker --modules <a,b>

Runs the queue jobs of those modules (their steps are sent through bull when the engine's
CONVEYOR_QUEUE_MODULES names them). Needs REDIS_URL.

Options:
  --modules <a,b>             the in-process modules to serve (required)

Environment: REDIS_URL, CONVEYOR_QUEUE_PREFIX, CONVEYOR_QUEUE_LOCK_MS, CONVEYOR_MODULES_DIR.`;

export const MODULE_SERVER_USAGE = `Usage: conveyor module-server [--modules <a,b>] [--port <n>] [--host <h>]

Serves in-process modules over the HTTP module protocol: POST /modules/<name>.

Options:
  --modules <a,b>             the modules to serve (default every in-process module)
  --port <n>                  the port (default PORT, else 8090)
  --host <h>                  the address (default HOST, else 127.0.0.1)`;

export const VALIDATE_USAGE = `Usage: conveyor validate

Checks every pipeline (CONVEYOR_PIPELINES_DIR, default ./pipelines) and module
(CONVEYOR_MODULES_DIR, default ./modules) as the engine does at start, and prints each
problem with its path. Exit code: 0 all valid, 1 any problem.`;

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

/** The process's own `/metrics` port, when `CONVEYOR_METRICS_PORT` is set. */
async function metricsPort(source: Parameters<typeof serveMetrics>[0], config: Config, io: Io): Promise<MetricsServer | undefined> {
  const at = config.metrics;
  if (!at) return undefined;
  const server = await serveMetrics(source, at.host, at.port);
  io.out(`metrics on ${server.url}/metrics`);
  return server;
}

/** Parses a command line that takes only the given valued options; answers `--help`. */
function options(args: string[], valued: string[], usage: string, io: Io): Record<string, string> | undefined {
  const a = parseArgs(args, valued, ['help']);
  if (a.switches.has('help')) {
    io.out(usage);
    return undefined;
  }
  if (a.positional.length > 0) throw new UsageError(`unexpected argument "${a.positional[0]}"`);
  return a.flags;
}

async function createEngine(config: Config): Promise<Engine> {
  try {
    return await Engine.create({ config });
  } catch (e) {
    if (e instanceof PipelineValidationError) throw new CommandError(`refusing to start, the configuration is invalid:\n${e.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    throw e;
  }
}

/** `start`, `api` and `engine`: the same engine with different roles. */
export function engineCommand(name: 'start' | 'api' | 'engine', args: string[], io: Io): Promise<number> {
  const usage = { start: START_USAGE, api: API_USAGE, engine: ENGINE_USAGE }[name];
  const roles: EngineRoles = name === 'start' ? { engine: true, worker: true } : name === 'engine' ? { engine: true, worker: false } : { engine: false, worker: false };
  return runCommand(io, usage, async () => {
    if (!options(args, [], usage, io)) return;
    // Every setting is checked before anything starts: a wrong one names its variable.
    const config = loadConfig(io.env);
    if (name !== 'start' && !config.redisUrl) throw new CommandError(`"${name}" is a distributed-mode role: set REDIS_URL (and DATABASE_URL=mysql://…), or use "start"`);
    await startTracing(tracingConfig(name, io.env));
    const engine = await createEngine(config);
    // Counting starts before the first commit (recovery may commit during start).
    const metricsServer = await metricsPort(metricsFor(engine), config, io);
    await engine.start(roles);
    let serving: Promise<RunningServer> | undefined;
    // Before the port answers: once /healthz does, SIGTERM stops the process cleanly. A
    // SIGTERM while the port is being opened lets that finish, then closes it.
    onShutdown(async () => {
      engine.accepting = false;
      const server = await serving?.catch(() => undefined);
      await server?.close();
      await engine.stop();
      await metricsServer?.close();
      await stopTracing();
    }, (m, f) => engine.logger.info(m, f));
    let server: RunningServer | undefined;
    if (name !== 'engine') {
      serving = serve(engine, config.host, config.port, io.out);
      server = await serving;
      io.out('Conveyor is running:');
      io.out(`  dashboard  ${server.url}/   (sign in with an API key)`);
      io.out(`  API        ${server.url}/api`);
    }
    engine.logger.info('conveyor started', {
      role: name, url: server?.url, store: engine.store.dialect, distributed: engine.distributed,
      pipelines: engine.catalog.list().map((p) => `${p.pipeline.id}@${p.version}`),
      // The young generation node was started with (`npm start` gives it 32; 'default': V8's own).
      semiSpaceMb: semiSpaceMb(process.execArgv, io.env.NODE_OPTIONS) ?? 'default',
    });
  });
}

/** The in-process modules of the project, or a failure naming the configuration problems. */
function projectModules(config: Config): ModuleRegistry {
  const { registry, issues } = loadProject({ config, queueModules: [] });
  if (issues.length > 0) throw new CommandError(`invalid configuration:\n${issues.map(formatIssue).join('\n')}`);
  return registry;
}

export function workerCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, WORKER_USAGE, async () => {
    const flags = options(args, ['modules'], WORKER_USAGE, io);
    if (!flags) return;
    const names = parseList(flags.modules);
    if (names.length === 0) throw new UsageError('--modules is required, e.g. --modules a,b');
    const config = loadConfig(io.env);
    const redisUrl = config.redisUrl;
    if (!redisUrl) throw new CommandError('"worker" needs REDIS_URL');
    const registry = projectModules(config);
    const unknown = names.filter((n) => !registry.get(n)?.def);
    if (unknown.length > 0) throw new CommandError(`no in-process module named ${unknown.map((n) => `"${n}"`).join(', ')} in ${config.modulesDir}`);
    await startTracing(tracingConfig('worker', io.env));
    const logger = createLogger(config.logLevel);
    const hub = new QueueHub(redisUrl, { prefix: config.queuePrefix, lockMs: config.queueLockMs });
    const metrics = new WorkerMetrics();
    const metricsServer = await metricsPort(metrics, config, io);
    const w = new QueueWorker(hub, names.map((n) => registry.get(n)!), logger, metrics.observe);
    // Before `worker started` is logged: from that line on, SIGTERM stops it cleanly.
    onShutdown(async () => {
      await w.stop();
      await metricsServer?.close();
      await stopTracing();
    }, (m, f) => logger.info(m, f));
    w.start();
  });
}

export function moduleServerCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, MODULE_SERVER_USAGE, async () => {
    const flags = options(args, ['modules', 'port', 'host'], MODULE_SERVER_USAGE, io);
    if (!flags) return;
    const config = loadConfig(io.env);
    const port = Number(flags.port ?? (io.env.PORT || 8090));
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a port number');
    const names = parseList(flags.modules);
    const registry = projectModules(config);
    const mods: RegisteredModule[] = names.length > 0
      ? names.map((n) => registry.get(n) ?? (() => { throw new CommandError(`unknown module "${n}"`); })())
      : registry.all().filter((m) => m.def);
    const bad = mods.filter((m) => !m.def);
    if (bad.length > 0) throw new CommandError(`${bad.map((m) => m.name).join(', ')}: not an in-process module`);
    await startTracing(tracingConfig('module-server', io.env));
    const logger = createLogger(config.logLevel);
    const { server, url } = await listenModuleServer(createModuleServer(mods, logger, { bodyLimit: config.bodyLimit }), flags.host ?? config.host, port);
    // Before the line that says it listens: from that line on, SIGTERM stops it cleanly.
    onShutdown(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stopTracing();
    }, (m, f) => logger.info(m, f));
    io.out(`module server on ${url}: ${mods.map((m) => `POST ${url}/modules/${m.name}`).join(', ')}`);
  });
}

export function validateCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, VALIDATE_USAGE, async () => {
    if (!options(args, [], VALIDATE_USAGE, io)) return;
    const { issues, pipelines, registry } = loadProject({ config: loadConfig(io.env) });
    if (issues.length > 0) {
      for (const issue of issues) io.err(formatIssue(issue));
      io.err(`${issues.length} problem(s) found`);
      return EXIT.FAILED;
    }
    io.out(`ok: ${pipelines.length} pipeline(s) (${pipelines.map((p) => p.id).join(', ')}), ${registry.all().length} module(s)`);
  });
}
