/**
 * The composition root: it loads modules and pipelines, opens the store, and wires intake,
 * supervisor, dispatcher and transports together. Embedded (no `REDIS_URL`), one process does
 * everything over an in-process bus. Distributed, starts and results travel through bull on
 * Redis, and any number of api, engine and worker processes share one database.
 */
import { Intake, type IntakeOptions } from './intake/intake';
import { loadConfig, type Config } from './config';
import { Bus } from './bus/bus';
import { Dispatcher } from './dispatcher/dispatcher';
import { PipelineValidationError, type ValidationIssue } from './errors';
import { createLogger, type Logger } from './log/logger';
import type { RequestRecord, RequestStatus, StepRunRecord } from './model';
import { loadModules, type ModuleRegistry } from './module/registry';
import { AdminNotifier, checkAdminNotifier } from './notify/admin-notifier';
import { PipelineCatalog } from './pipeline/catalog';
import { loadPipelines } from './pipeline/load';
import type { CompiledPipeline } from './pipeline/types';
import type { StoreOptions } from './store/data-source';
import { GroupCommitter } from './store/group-commit';
import { SqlStore } from './store/store';
import { RetentionJob } from './housekeeping/retention';
import { Migrations } from './migration/service';
import { MigrationRunner, type MigrationRunnerOptions } from './migration/runner';
import { buildState } from './supervisor/state';
import { Supervisor, type SupervisorOptions } from './supervisor/supervisor';
import { SQLITE_MAX_BACKLOG } from './supervisor/options';
import type { AdmissionCounts } from './supervisor/admission';
import { EventTransport, ModuleHost } from './transports/event';
import { randomBytes } from 'node:crypto';
import { BrokerPool } from './brokers/pool';
import { SourceRunner, type SourceRunnerOptions } from './sources/runner';
import { HttpTransport, type CallbackConfig } from './transports/http';
import { checkOutboundUrl, parseOutboundAllow, type OutboundPolicy } from './transports/outbound';
import { QueueHub, QueueTransport, QueueWorker } from './transports/queue';
import { applyHeapGrowing } from './heap';
import { LocalInbox, type Inbox } from './inbox/inbox';
import { RedisInbox } from './inbox/redis-inbox';
import { resultMessage, type HandleResult, type InboxMessage, type StepResult } from './supervisor/messages';

export interface EngineOptions {
  /**
   * The configuration read from the environment; the options below override its fields.
   * @default `loadConfig()` of the environment, read when the engine is created
   */
  config?: Config;
  /** @default config.databaseUrl (`DATABASE_URL`) */
  databaseUrl?: string;
  /** Distributed mode when set. @default config.redisUrl (`REDIS_URL`) */
  redisUrl?: string;
  /** Modules sent through their bull queue instead of run in-process. @default config.queueModules (`CONVEYOR_QUEUE_MODULES`) */
  queueModules?: string[];
  /** @default config.pipelinesDir (`CONVEYOR_PIPELINES_DIR`) */
  pipelinesDir?: string;
  /** @default config.modulesDir (`CONVEYOR_MODULES_DIR`) */
  modulesDir?: string;
  /** Base for relative paths. @default process.cwd() */
  cwd?: string;
  logger?: Logger;
  sqliteSynchronous?: StoreOptions['sqliteSynchronous'];
  supervisor?: SupervisorOptions;
  /** The API's base URL as remote modules reach it, for `202` callbacks. @default config.publicUrl ?? http://HOST:PORT */
  publicUrl?: string;
  /** Redis key prefix for the queues (tests isolate themselves with it). @default config.queuePrefix ?? 'bull' */
  queuePrefix?: string;
  /** Distributed: how often this engine says it is alive (`RedisInboxOptions.heartbeatMs`; tests shorten it). @default `CONVEYOR_HEARTBEAT_MS`, 10000 */
  heartbeatMs?: number;
  /** Intake loop timings and callback retries (tests shorten them). */
  intake?: IntakeOptions;
  /** Where outbound HTTP may go: host patterns and CIDRs, comma-separated. @default config.outboundAllow */
  outboundAllow?: string;
  /** Broker source timings (tests shorten them). */
  sources?: SourceRunnerOptions;
  /** Bulk migration batches and leases. @default config.migrations (`CONVEYOR_MIGRATION_*`) */
  migrations?: MigrationRunnerOptions;
}

/** Which parts this process runs. */
export interface EngineRoles {
  /** Supervisor, dispatcher, in-process modules; consumes starts and results. */
  engine: boolean;
  /** Runs the queue-transport modules it has code for (distributed mode). */
  worker: boolean;
}

export { parseList } from './config';

/** Loads and validates modules and pipelines without touching any database. */
export function loadProject(opts: EngineOptions = {}): { registry: ModuleRegistry; pipelines: CompiledPipeline[]; issues: ValidationIssue[] } {
  const cwd = opts.cwd ?? process.cwd();
  const config = opts.config ?? loadConfig();
  const modules = loadModules(opts.modulesDir ?? config.modulesDir, cwd);
  const issues = [...modules.issues];
  for (const name of opts.queueModules ?? config.queueModules) {
    const mod = modules.registry.get(name);
    if (!mod) issues.push({ source: 'CONVEYOR_QUEUE_MODULES', path: name, message: `unknown module "${name}"` });
    else if (mod.transport === 'http') issues.push({ source: 'CONVEYOR_QUEUE_MODULES', path: name, message: `module "${name}" is a remote HTTP module; only in-process modules can move to a queue` });
    else mod.transport = 'queue';
  }
  const loaded = loadPipelines(opts.pipelinesDir ?? config.pipelinesDir, modules.registry.names(), cwd);
  return { registry: modules.registry, pipelines: loaded.pipelines, issues: [...issues, ...loaded.issues] };
}

/**
 * Compiles `CONVEYOR_OUTBOUND_ALLOW` and checks the URLs the operator declared against it:
 * module URLs and the admin webhook when a list is set, pipelines' `intake.callbackUrl` always.
 */
function outboundIssues(project: ReturnType<typeof loadProject>, raw: string | undefined, adminWebhook: string | undefined): { policy: OutboundPolicy; issues: ValidationIssue[] } {
  const { policy, errors } = parseOutboundAllow(raw);
  const issues: ValidationIssue[] = errors.map((message) => ({ source: 'CONVEYOR_OUTBOUND_ALLOW', path: '', message }));
  const check = (kind: 'module' | 'callback', url: string | undefined, source: string, path: string): void => {
    const verdict = url ? checkOutboundUrl(kind, policy, url) : { ok: true as const };
    if (!verdict.ok) issues.push({ source, path, message: `${url} is refused by the outbound rule: ${verdict.reason}` });
  };
  for (const m of project.registry.all()) check('module', m.url, m.source ?? `modules/${m.name}`, 'transport.url');
  check('module', adminWebhook, 'CONVEYOR_ADMIN_WEBHOOK', '');
  for (const p of project.pipelines) check('callback', p.intakeOptions?.callbackUrl, `pipelines/${p.id}`, 'intake.callbackUrl');
  return { policy, issues };
}

export class Engine {
  readonly bus = new Bus();
  readonly intake: Intake;
  readonly supervisor: Supervisor;
  /** The supervisor's one way in (in-process, or over Redis when distributed). */
  readonly inbox: Inbox;
  readonly committer: GroupCommitter;
  readonly hub: QueueHub | undefined;
  /** Broker connections (publish steps and sources), one per URL, closed at stop. */
  readonly brokers: BrokerPool;
  /** The pipelines' broker sources, run by engine processes. */
  readonly sources: SourceRunner;
  /** Moving running requests to another version of their pipeline (issue 15). */
  readonly migrations: Migrations;
  /** Works bulk migrations in the background (engine processes). */
  private readonly migrationRunner: MigrationRunner;
  private readonly moduleHost: ModuleHost;
  /** Seed 000 §7: alerts the administrator (webhook and/or module) when a request stops on an error. */
  private readonly adminNotifier: AdminNotifier;
  private readonly http: HttpTransport;
  private worker: QueueWorker | undefined;
  private started = false;

  private constructor(
    readonly store: SqlStore,
    readonly catalog: PipelineCatalog,
    readonly registry: ModuleRegistry,
    readonly logger: Logger,
    opts: EngineOptions,
    redisUrl: string | undefined,
    readonly callbacks: CallbackConfig,
    /** The outbound rule (`CONVEYOR_OUTBOUND_ALLOW`), checked at submit and at every connection. */
    readonly outbound: OutboundPolicy,
    /** The configuration this engine was composed from. */
    readonly config: Config,
  ) {
    // MySQL: two batches in flight, so one fills while the other waits on its round trips
    // (+10% steps/s in `npm run bench`; more only split the batches, the server's CPU being the limit).
    this.committer = new GroupCommitter(store, 2000, store.dialect === 'mysql' ? 2 : 1);
    this.http = new HttpTransport(this.bus, callbacks, outbound);
    this.hub = redisUrl ? new QueueHub(redisUrl, { prefix: opts.queuePrefix ?? config.queuePrefix, lockMs: config.queueLockMs }) : undefined;
    const transports = { event: new EventTransport(this.bus), http: this.http, queue: this.hub ? new QueueTransport(this.hub, logger) : undefined };
    this.brokers = new BrokerPool(logger);
    const dispatcher = new Dispatcher(this.bus, registry, transports, logger, this.brokers);
    this.adminNotifier = new AdminNotifier({ bus: this.bus, store, registry, logger, baseUrl: () => this.callbacks.baseUrl, outbound }, config.admin);
    this.supervisor = new Supervisor(
      { store, committer: this.committer, bus: this.bus, dispatcher, pipelines: catalog, logger },
      // One process alone (no Redis) carries every request itself: no state of its goes stale elsewhere.
      { sweepBuffered: Boolean(this.hub), ...(this.hub ? {} : { staleCheckMs: 0 }), ...(store.dialect === 'sqlite' ? { maxBacklog: SQLITE_MAX_BACKLOG } : {}), alertChannels: this.adminNotifier.channelNames, ...config.supervisor, ...opts.supervisor },
    );
    this.inbox = this.hub ? new RedisInbox(this.supervisor, this.bus, this.hub, logger, { heartbeatMs: opts.heartbeatMs ?? config.heartbeatMs }) : new LocalInbox(this.supervisor, this.bus);
    const notify = (requestId: string): void => void this.inbox.post({ type: 'start', requestId });
    const startNew = (record: RequestRecord): Promise<RequestRecord | undefined> => this.inbox.startNew(record);
    this.intake = new Intake({ catalog, committer: this.committer, store, bus: this.bus, logger, notify, startNew }, { callbackSecret: config.requestCallbacks.secret, ...opts.intake, callbacks: { outbound, attempts: config.requestCallbacks.attempts, backoffMs: config.requestCallbacks.backoffMs, ...opts.intake?.callbacks } });
    this.sources = new SourceRunner({ catalog, intake: this.intake, store: store.sources, pool: this.brokers, logger }, opts.sources);
    this.moduleHost = new ModuleHost(this.bus, registry, logger);
    const migrationDeps = { store: store.migrations, pipelines: catalog, logger, moved: (ids: string[]) => void Promise.all(ids.map((requestId) => this.inbox.ask({ type: 'migrated', requestId }))) };
    this.migrations = new Migrations(migrationDeps);
    this.migrationRunner = new MigrationRunner(migrationDeps, this.migrations, { ...config.migrations, ...opts.migrations });
  }

  /** Looks for bulk migration work now (after one was stored). */
  kickMigrations(): void {
    if (this.started && this.migrationsRunning) this.migrationRunner.kick();
  }

  private migrationsRunning = false;

  /** Loads everything and opens the store. Refuses (throws) on any invalid pipeline or module. */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const config = opts.config ?? loadConfig();
    applyHeapGrowing(config.heapGrowingPercent);
    const logger = opts.logger ?? createLogger(config.logLevel);
    const redisUrl = opts.redisUrl ?? config.redisUrl;
    const project = loadProject({ ...opts, config });
    if (!redisUrl && project.registry.all().some((m) => m.transport === 'queue')) {
      project.issues.push({ source: 'CONVEYOR_QUEUE_MODULES', path: '', message: 'the queue transport needs REDIS_URL' });
    }
    project.issues.push(...checkAdminNotifier(project.registry, config.admin));
    const outbound = outboundIssues(project, opts.outboundAllow ?? config.outboundAllow, config.admin.webhookUrl);
    project.issues.push(...outbound.issues);
    if (project.issues.length > 0) throw new PipelineValidationError(project.issues);
    // The store's settings come from the configuration checked above (the store reads the
    // environment itself only when opened without one, as the CLI's tools do).
    const store = await SqlStore.open(opts.databaseUrl ?? config.databaseUrl, {
      sqliteSynchronous: opts.sqliteSynchronous ?? config.sqliteSynchronous, sqliteCacheMb: config.sqliteCacheMb, sqliteCheckpoint: config.sqliteCheckpoint,
    });
    const catalog = new PipelineCatalog(store, project.registry);
    await catalog.register(project.pipelines);
    // Every process must sign and check callback tokens with the same secret: take it from
    // the environment, or from the shared database (made once, by the first process).
    const secret = config.callbackSecret || (await store.ensureSetting('callback_secret', randomBytes(32).toString('hex')));
    const baseUrl = (opts.publicUrl ?? config.publicUrl ?? `http://${config.host}:${config.port}`).replace(/\/+$/, '');
    return new Engine(store, catalog, project.registry, logger, opts, redisUrl, { baseUrl, secret, defaultTtlMs: 3_600_000 }, outbound.policy, config);
  }

  get distributed(): boolean {
    return this.hub !== undefined;
  }

  /** Starts processing, then continues whatever a previous run left unfinished. */
  async start(roles: EngineRoles = { engine: true, worker: true }): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (roles.worker && this.hub) {
      const queued = this.registry.all().filter((m) => m.transport === 'queue' && m.def);
      if (queued.length > 0) {
        this.worker = new QueueWorker(this.hub, queued, this.logger);
        this.worker.start();
      }
    }
    if (!roles.engine) {
      // An API-only process still decides actions and operator commands; the engines'
      // sweepers send what those decisions start.
      this.supervisor.setDeferDispatch(true);
      return;
    }
    this.moduleHost.start();
    this.supervisor.start();
    this.inbox.start();
    this.adminNotifier.start();
    const maxAgeMs = this.config.retentionMs;
    if (maxAgeMs) {
      this.retention = new RetentionJob(this.store, { maxAgeMs }, this.logger);
      this.retention.start();
    }
    await this.intake.start();
    this.sources.start();
    this.migrationRunner.start();
    this.migrationsRunning = true;
    // Distributed, any engine takes any start and any result from the inbox's queues.
    if (this.hub) return;
    const resumed = await this.supervisor.recover();
    const released = await this.intake.releaseBuffered();
    if (resumed + released > 0) this.logger.info('unfinished requests resumed', { running: resumed, buffered: released });
  }

  private retention: RetentionJob | undefined;

  /** False once shutdown began: the API refuses new work with 503. */
  accepting = true;

  /**
   * Graceful stop. New work is refused; steps already with a module get until `deadlineMs`
   * to answer and commit, while anything they would start is committed as due `pending`
   * runs instead of sent. Runs still out at the deadline are handed back (their lease is
   * expired, so another engine, or this one's next start, sends them again). Then pending
   * writes are flushed and the store closed. Nothing is lost either way.
   */
  async stop(opts: { deadlineMs?: number } = {}): Promise<void> {
    this.accepting = false;
    this.supervisor.setDeferDispatch(true);
    const end = Date.now() + (opts.deadlineMs ?? this.config.shutdownDeadlineMs);
    while (this.supervisor.inFlightCount > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    this.retention?.stop();
    await this.migrationRunner.stop();
    // Messages already taken are stored and acknowledged before intake stops.
    await this.sources.stop();
    await this.intake.stop();
    await this.inbox.stop();
    await this.supervisor.stop();
    // Taken once nothing more can be sent: the sweep runs until the supervisor stops, and the
    // queues' last answers are taken before that.
    const handedBack = this.supervisor.handedBack();
    await this.adminNotifier.stop();
    if (handedBack.ids.length > 0) {
      await this.store.expireLeases(handedBack.ids, handedBack.inRows).catch(() => undefined);
      this.logger.warn('steps handed back at shutdown', { count: handedBack.ids.length });
    }
    this.moduleHost.stop();
    await this.worker?.stop();
    await this.hub?.close();
    await this.brokers.close();
    await this.committer.drain();
    await this.http.close();
    this.bus.removeAll();
    await this.store.close();
  }

  /**
   * Hands a module's late answer (a callback) to whichever engine will commit it. Resolves
   * `false` when it could not be taken (the caller should try again).
   */
  deliverResult(result: StepResult): Promise<boolean> {
    return this.inbox.post(resultMessage(result));
  }

  /** A command decided by this process (an action, an event, resume, stop): resolves with the reply. */
  ask(message: InboxMessage): Promise<HandleResult> {
    return this.inbox.ask(message);
  }

  /** Runs currently with a module, in this process. */
  get inFlightCount(): number {
    return this.supervisor.inFlightCount;
  }

  /** Admission control: requests in flight here, starts deferred to the store and pulled back. */
  get admitted(): AdmissionCounts {
    return this.supervisor.admitted;
  }

  async getRequest(id: string): Promise<{ request: RequestRecord; runs: StepRunRecord[]; context: Record<string, unknown> } | undefined> {
    const request = await this.store.getRequest(id);
    if (!request) return undefined;
    const runs = await this.store.listStepRuns(id);
    return { request, runs, context: buildState(request, runs).context };
  }

  /**
   * Resolves with the request's final status once it ends, or `undefined` after `timeoutMs`.
   * It listens on the local bus and also polls the store, since in distributed mode another
   * process may finish the request.
   */
  waitForEnd(requestId: string, timeoutMs: number): Promise<RequestStatus | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (s: RequestStatus | undefined): void => {
        if (settled) return;
        settled = true;
        off();
        clearTimeout(timer);
        clearInterval(poll);
        resolve(s);
      };
      const off = this.bus.on('RequestFinished', (e) => {
        if (e.requestId === requestId) finish(e.status);
      });
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const check = (): void => {
        void this.store.getRequest(requestId).then((r) => {
          if (r && (r.status === 'completed' || r.status === 'stopped' || r.status === 'error_stop')) finish(r.status);
        }, () => undefined);
      };
      const poll = setInterval(check, this.hub ? 200 : 2000);
      check();
    });
  }
}
