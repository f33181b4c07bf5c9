/**
 * Prometheus metrics of one engine process (prom-client, a registry of its own).
 *
 * Counters and the step duration histogram are fed by bus events as they happen in this
 * process: `StepAnswered` (every result the inbox took, from the bus or, in distributed mode,
 * from `conveyor:results`, and every engine step), `StepCommitted`, `RequestFinished`. Gauges are read when
 * Prometheus scrapes, from cheap queries (the open request statuses only, by index, and bull's
 * job counts), cached for `cacheMs` so that several scrapers cost one query.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus, BusEvents } from '../bus/bus';
import type { RequestStatus } from '../model';
import type { ModuleRegistry } from '../module/registry';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { SqlStore } from '../store/store';
import type { AdmissionCounts } from '../supervisor/admission';
import { MODULE_QUEUE_PREFIX, REQUESTS_QUEUE, RESULTS_QUEUE, type QueueHub } from '../transports/queue';

/** What metrics read: the bus they listen to, and the few sources of their gauges. */
export interface MetricsSource {
  readonly bus: Bus;
  readonly store: Pick<SqlStore, 'runLabels' | 'countRequestsByStatus' | 'ping'>;
  readonly catalog: Pick<PipelineCatalog, 'list'>;
  readonly registry: Pick<ModuleRegistry, 'all'>;
  /** The bull queues (distributed mode). */
  readonly hub: QueueHub | undefined;
  /** Step attempts sent to a module by this process and not answered yet. */
  readonly inFlightCount: number;
  /** Admission control: requests in flight in this process, starts it left in the store, starts it took back. */
  readonly admitted: AdmissionCounts;
}

/** Request statuses counted by the `conveyor_requests` gauge: the ones that stay few. */
export const GAUGED_STATUSES: readonly RequestStatus[] = ['buffered', 'running', 'waiting', 'error_stop'];

/** Step durations, in seconds: from in-process steps (ms) to slow remote ones (minutes). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface MetricsOptions {
  /** How long gauges read from the database and Redis are reused. @default 5000 */
  cacheMs?: number;
  /** Also export prom-client's process and Node.js metrics (`process_*`, `nodejs_*`). @default true */
  defaultMetrics?: boolean;
}

type StepResult = BusEvents['StepAnswered'];

/** The metrics of one engine. Get it with {@link metricsFor}. */
export class EngineMetrics {
  readonly registry = new Registry();
  private readonly requests: Gauge<'pipeline' | 'status'>;
  private readonly buffered: Gauge;
  private readonly waiting: Gauge;
  private readonly errorStop: Gauge;
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly inFlight: Gauge;
  private readonly requestsInFlight: Gauge;
  private readonly waitingForStore: Gauge;
  private readonly deferred: Counter;
  private deferredSeen = 0;
  private readonly finished: Counter<'pipeline' | 'status'>;
  private readonly duration: Histogram<'pipeline' | 'step' | 'transport' | 'outcome'>;
  private readonly retries: Counter<'pipeline' | 'step'>;
  private readonly steps: Counter<'pipeline' | 'step' | 'transport' | 'outcome'>;
  private readonly lost: Counter;
  private readonly cacheMs: number;
  private refreshedAt = 0;
  private refreshing: Promise<void> | undefined;
  private pending: StepResult[] = [];
  private flushing = false;
  private readonly offs: Array<() => void> = [];

  constructor(
    private readonly engine: MetricsSource,
    opts: MetricsOptions = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 5000;
    const registers = [this.registry];
    this.requests = new Gauge({ name: 'conveyor_requests', help: 'Requests in an open status (buffered, running, waiting, error_stop), by pipeline and status.', labelNames: ['pipeline', 'status'], registers });
    this.buffered = new Gauge({ name: 'conveyor_buffered_requests', help: 'Requests accepted and not started yet (the intake buffer depth).', registers });
    this.waiting = new Gauge({ name: 'conveyor_waiting_requests', help: 'Requests waiting for an event, an action or a callback.', registers });
    this.errorStop = new Gauge({ name: 'conveyor_error_stop_requests', help: 'Requests halted in error_stop, waiting for an operator.', registers });
    this.queueJobs = new Gauge({ name: 'conveyor_queue_jobs', help: 'Jobs in the bull queues (distributed mode), by queue and state.', labelNames: ['queue', 'state'], registers });
    this.inFlight = new Gauge({ name: 'conveyor_steps_in_flight', help: 'Step attempts sent to a module by this process and not answered yet.', registers });
    this.requestsInFlight = new Gauge({ name: 'conveyor_requests_in_flight', help: 'Requests in flight in this process (admission control: at most CONVEYOR_MAX_IN_FLIGHT).', registers });
    this.waitingForStore = new Gauge({ name: 'conveyor_requests_waiting_for_store', help: 'Requests of this process waiting for the store: step commits not answered yet, and starts under way (admission control: no new start at CONVEYOR_MAX_BACKLOG).', registers });
    this.deferred = new Counter({ name: 'conveyor_starts_deferred_total', help: 'Starts this process left buffered in the store because CONVEYOR_MAX_IN_FLIGHT requests were in flight, or CONVEYOR_MAX_BACKLOG waited for the store.', registers });
    this.finished = new Counter({ name: 'conveyor_requests_finished_total', help: 'Requests that ended, by pipeline and final status, seen by this process.', labelNames: ['pipeline', 'status'], registers });
    this.duration = new Histogram({
      name: 'conveyor_step_duration_seconds',
      help: 'Duration of step attempts, by pipeline, step, transport and outcome (completed or failed).',
      labelNames: ['pipeline', 'step', 'transport', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.retries = new Counter({ name: 'conveyor_step_retries_total', help: 'Step attempts after the first (retries), by pipeline and step.', labelNames: ['pipeline', 'step'], registers });
    this.steps = new Counter({
      name: 'conveyor_steps_total',
      help: 'Step attempts whose result this process committed to the step log, by pipeline, step, transport and outcome. Summed over every process, it is the step log.',
      labelNames: ['pipeline', 'step', 'transport', 'outcome'],
      registers,
    });
    this.lost = new Counter({ name: 'conveyor_metrics_unlabelled_results_total', help: 'Step results not counted because their run could not be looked up.', registers });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.attach();
  }

  private attach(): void {
    const { bus } = this.engine;
    this.offs.push(
      bus.on('StepAnswered', (e) => this.onResult(e)),
      bus.on('RequestFinished', (e) => this.finished.inc({ pipeline: e.pipeline, status: e.status })),
      bus.on('StepCommitted', (e) => this.steps.inc({ pipeline: e.pipeline, step: e.stepId, transport: e.transport, outcome: e.status })),
    );
  }

  /** Stops listening. */
  detach(): void {
    for (const off of this.offs.splice(0)) off();
  }

  private onResult(e: StepResult): void {
    this.pending.push(e);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  /** Labels a tick's results with one query (pipeline and transport by run id), then counts them. */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const labels = await this.engine.store.runLabels([...new Set(batch.map((e) => e.runId))], [...new Set(batch.map((e) => e.requestId))]);
      for (const e of batch) {
        const l = labels.get(e.runId);
        if (!l) {
          this.lost.inc();
          continue;
        }
        const outcome = 'output' in e ? 'completed' : 'failed';
        this.duration.observe({ pipeline: l.pipeline, step: e.stepId, transport: l.transport ?? 'engine', outcome }, Math.max(0, e.durationMs) / 1000);
        if (e.attempt > 1) this.retries.inc({ pipeline: l.pipeline, step: e.stepId });
      }
    } catch {
      // The store is closing (shutdown): these results go uncounted.
      this.lost.inc(batch.length);
    } finally {
      this.flushing = false;
      // Results that arrived during the lookup go in the next batch.
      if (this.pending.length > 0) this.scheduleFlush();
    }
  }

  /** Re-reads the gauges when the cached values are older than `cacheMs`. */
  private refresh(): Promise<void> {
    if (Date.now() - this.refreshedAt < this.cacheMs) return Promise.resolve();
    this.refreshing ??= this.readGauges().finally(() => {
      this.refreshedAt = Date.now();
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async readGauges(): Promise<void> {
    const counts = await this.engine.store.countRequestsByStatus(GAUGED_STATUSES);
    this.requests.reset();
    // Known pipelines show a zero rather than no series, so alerts on them work from the start.
    for (const { pipeline } of this.engine.catalog.list()) for (const status of GAUGED_STATUSES) this.requests.set({ pipeline: pipeline.id, status }, 0);
    const total: Partial<Record<string, number>> = {};
    for (const c of counts) {
      this.requests.set({ pipeline: c.pipeline, status: c.status }, c.n);
      total[c.status] = (total[c.status] ?? 0) + c.n;
    }
    this.buffered.set(total.buffered ?? 0);
    this.waiting.set(total.waiting ?? 0);
    this.errorStop.set(total.error_stop ?? 0);
    this.inFlight.set(this.engine.inFlightCount);
    const admitted = this.engine.admitted;
    this.requestsInFlight.set(admitted.inFlight);
    this.waitingForStore.set(admitted.waitingForStore);
    if (admitted.deferred > this.deferredSeen) this.deferred.inc(admitted.deferred - this.deferredSeen);
    this.deferredSeen = admitted.deferred;
    await this.readQueues();
  }

  private async readQueues(): Promise<void> {
    const hub = this.engine.hub;
    if (!hub) return;
    // This engine's own results queue too (`conveyor:results:<engine id>`): the answers waiting for it.
    const own = hub.replyQueue ? [hub.replyQueue] : [];
    const names = [REQUESTS_QUEUE, RESULTS_QUEUE, ...own, ...this.engine.registry.all().filter((m) => m.transport === 'queue').map((m) => MODULE_QUEUE_PREFIX + m.name)];
    this.queueJobs.reset();
    await Promise.all(names.map(async (name) => {
      const c = await hub.queue(name).getJobCounts();
      for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.queueJobs.set({ queue: name, state }, c[state] ?? 0);
    }));
  }

  /** The exposition text (`text/plain; version=0.0.4`). */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const byEngine = new WeakMap<MetricsSource, EngineMetrics>();

/** The one {@link EngineMetrics} of `engine`, created (and listening) on first use. */
export function metricsFor(engine: MetricsSource, opts?: MetricsOptions): EngineMetrics {
  let m = byEngine.get(engine);
  if (!m) byEngine.set(engine, (m = new EngineMetrics(engine, opts)));
  return m;
}

/** The outcome of a readiness check, by part: `ok`, `failed`, or `not used`. */
export interface Readiness {
  ready: boolean;
  checks: { database: 'ok' | 'failed'; redis: 'ok' | 'failed' | 'not used' };
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Checks the database (`SELECT 1`) and, in distributed mode, Redis (`PING`), each within `timeoutMs`. */
export async function checkReadiness(engine: MetricsSource, timeoutMs = 2000, onError?: (part: string, err: Error) => void): Promise<Readiness> {
  const check = async (part: string, probe: () => Promise<unknown>): Promise<'ok' | 'failed'> => {
    try {
      await within(probe(), timeoutMs);
      return 'ok';
    } catch (err) {
      onError?.(part, err as Error);
      return 'failed';
    }
  };
  const hub = engine.hub;
  const [database, redis] = await Promise.all([
    check('database', () => engine.store.ping()),
    hub ? check('redis', () => hub.queue(REQUESTS_QUEUE).client.ping()) : Promise.resolve('not used' as const),
  ]);
  return { ready: database === 'ok' && redis !== 'failed', checks: { database, redis } };
}
