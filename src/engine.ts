/**
 * The composition root: it loads modules and pipelines, opens the store, and wires intake,
 * supervisor, dispatcher and transports together. `conveyor start` runs one of these.
 */
import { Intake } from './api/intake';
import { Bus } from './bus/bus';
import { Dispatcher } from './dispatcher/dispatcher';
import { PipelineValidationError, type ValidationIssue } from './errors';
import { createLogger, type Logger } from './log/logger';
import type { RequestRecord, RequestStatus, StepRunRecord } from './model';
import { loadModules, type ModuleRegistry } from './module/registry';
import { PipelineCatalog } from './pipeline/catalog';
import { loadPipelines } from './pipeline/load';
import type { CompiledPipeline } from './pipeline/types';
import { DEFAULT_DATABASE_URL, type StoreOptions } from './store/data-source';
import { GroupCommitter } from './store/group-commit';
import { SqlStore } from './store/store';
import { buildState } from './supervisor/state';
import { Supervisor } from './supervisor/supervisor';
import { EventTransport, ModuleHost } from './transports/event';
import { HttpTransport } from './transports/http';

export interface EngineOptions {
  /** @default process.env.DATABASE_URL ?? 'sqlite:./data/conveyor.db' */
  databaseUrl?: string;
  /** @default process.env.CONVEYOR_PIPELINES_DIR ?? './pipelines' */
  pipelinesDir?: string;
  /** @default process.env.CONVEYOR_MODULES_DIR ?? './modules' */
  modulesDir?: string;
  /** Base for relative paths. @default process.cwd() */
  cwd?: string;
  logger?: Logger;
  sqliteSynchronous?: StoreOptions['sqliteSynchronous'];
}

/** Loads and validates modules and pipelines without touching any database. */
export function loadProject(opts: EngineOptions = {}): { registry: ModuleRegistry; pipelines: CompiledPipeline[]; issues: ValidationIssue[] } {
  const cwd = opts.cwd ?? process.cwd();
  const modules = loadModules(opts.modulesDir ?? process.env.CONVEYOR_MODULES_DIR ?? './modules', cwd);
  const loaded = loadPipelines(opts.pipelinesDir ?? process.env.CONVEYOR_PIPELINES_DIR ?? './pipelines', modules.registry.names(), cwd);
  return { registry: modules.registry, pipelines: loaded.pipelines, issues: [...modules.issues, ...loaded.issues] };
}

export class Engine {
  readonly bus = new Bus();
  readonly intake: Intake;
  readonly supervisor: Supervisor;
  readonly committer: GroupCommitter;
  private readonly moduleHost: ModuleHost;
  private readonly http: HttpTransport;
  private started = false;

  private constructor(
    readonly store: SqlStore,
    readonly catalog: PipelineCatalog,
    readonly registry: ModuleRegistry,
    readonly logger: Logger,
  ) {
    this.committer = new GroupCommitter(store);
    this.http = new HttpTransport(this.bus);
    const dispatcher = new Dispatcher(this.bus, registry, { event: new EventTransport(this.bus), http: this.http }, logger);
    this.supervisor = new Supervisor({ store, committer: this.committer, bus: this.bus, dispatcher, pipelines: catalog, logger });
    this.intake = new Intake(catalog, this.committer, store, this.bus);
    this.moduleHost = new ModuleHost(this.bus, registry, logger);
  }

  /** Loads everything and opens the store. Refuses (throws) on any invalid pipeline or module. */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const logger = opts.logger ?? createLogger();
    const project = loadProject(opts);
    if (project.issues.length > 0) throw new PipelineValidationError(project.issues);
    const store = await SqlStore.open(opts.databaseUrl ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL, { sqliteSynchronous: opts.sqliteSynchronous });
    const catalog = new PipelineCatalog(store, project.registry);
    await catalog.register(project.pipelines);
    return new Engine(store, catalog, project.registry, logger);
  }

  /** Starts processing, then continues whatever a previous run left unfinished. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.moduleHost.start();
    this.supervisor.start();
    const resumed = await this.supervisor.recover();
    const released = await this.intake.releaseBuffered();
    if (resumed + released > 0) this.logger.info('unfinished requests resumed', { running: resumed, buffered: released });
  }

  /** Stops taking events, writes what is pending, and closes the store. Open runs resume on the next start. */
  async stop(): Promise<void> {
    await this.supervisor.stop();
    this.moduleHost.stop();
    await this.committer.drain();
    await this.http.close();
    this.bus.removeAll();
    await this.store.close();
  }

  async getRequest(id: string): Promise<{ request: RequestRecord; runs: StepRunRecord[]; context: Record<string, unknown> } | undefined> {
    const request = await this.store.getRequest(id);
    if (!request) return undefined;
    const runs = await this.store.listStepRuns(id);
    return { request, runs, context: buildState(request, runs).context };
  }

  /** Resolves with the request's final status once it ends, or `undefined` after `timeoutMs`. */
  waitForEnd(requestId: string, timeoutMs: number): Promise<RequestStatus | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (s: RequestStatus | undefined): void => {
        if (settled) return;
        settled = true;
        off();
        clearTimeout(timer);
        resolve(s);
      };
      const off = this.bus.on('RequestFinished', (e) => {
        if (e.requestId === requestId) finish(e.status);
      });
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      // It may have ended before we started listening.
      void this.store.getRequest(requestId).then((r) => {
        if (r && (r.status === 'completed' || r.status === 'stopped' || r.status === 'error_stop')) finish(r.status);
      });
    });
  }
}
