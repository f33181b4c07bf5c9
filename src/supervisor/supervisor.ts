/**
 * The supervisor's thin stateful shell: it turns events into outcomes, asks the pure core to
 * decide, commits the decision, and only then dispatches what the decision started.
 *
 * Several engine processes may share one database. Every commit carries the request's `rev`;
 * a commit built on a stale view is refused, and the shell reloads and decides again. Runs
 * are claimed with conditional updates, so a timer or a redelivery happens once.
 */
import type { Bus, BusEvents } from '../bus/bus';
import type { Dispatcher } from '../dispatcher/dispatcher';
import { ErrorCodes } from '../errors';
import { newId } from '../ids';
import type { Logger } from '../log/logger';
import { redact } from '../log/redact';
import { noteAccessRows } from './commit-rows';
import { ACTIVE_STATUSES } from '../model';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from '../pipeline/types';
import type { GroupCommitter } from '../store/group-commit';
import type { Store } from '../store/store';
import { applyDecision, decide, idempotencyKeyOf, WAIT_TIMEOUT, type Decision, type DecisionEnv, type OpenRun, type Outcome, type RequestState } from './decide';
import { maskedSecrets, renderValue } from '../templates/render';
import { buildState } from './state';
import { traceCommit, traced, type TraceDeps } from './traces';

/** Finds the compiled pipeline a request is pinned to. */
export interface PipelineSource {
  get(pipelineId: string, version: number): Promise<CompiledPipeline>;
  retryPolicy(pipeline: CompiledPipeline, step: CompiledStep): RetryPolicy;
}

export interface SupervisorDeps {
  store: Store;
  committer: GroupCommitter;
  bus: Bus;
  dispatcher: Dispatcher;
  pipelines: PipelineSource;
  logger: Logger;
}

export interface SupervisorOptions {
  /** How often to look for due timers, expired leases and lost starts. @default 1000 */
  sweepIntervalMs?: number;
  /** Added to a step's timeout to make its lease. @default 10000 */
  leaseGraceMs?: number;
  /** Lease of a run handed to a queue (it may wait there, rate-limited). @default 600000 */
  queueLeaseMs?: number;
  /** Look for requests whose start was lost (only needed when starts travel over Redis). */
  sweepBuffered?: boolean;
  /**
   * Commit new runs as due-now `pending` instead of sending them: for an API-only process,
   * whose decisions (actions, resume) the engines' sweepers then carry out.
   */
  deferDispatch?: boolean;
  /**
   * The admin alert channels configured (`webhook`, `module:<name>`): a commit that stops a
   * request on an error also writes one alert row per channel. @default none
   */
  alertChannels?: string[];
}

/** How an event or command ended: committed, or not news (duplicate, not applicable). */
export type HandleResult = 'committed' | 'ignored' | 'failed';

/** Longest single setTimeout; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How many times a refused commit is decided again before giving up to the sweeper. */
const MAX_ATTEMPTS = 8;
const SWEEP_BATCH = 200;

type RunRef = Pick<OpenRun, 'id' | 'stepId' | 'attempt' | 'causedBy' | 'override'>;

export class Supervisor {
  private readonly states = new Map<string, RequestState>();
  private readonly envs = new WeakMap<CompiledPipeline, DecisionEnv>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Runs sent to a module and not yet answered, in this process. */
  private readonly inFlight = new Set<string>();
  private readonly offs: Array<() => void> = [];
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private stopping = false;
  private readonly o: Required<SupervisorOptions>;
  private readonly traceDeps: TraceDeps;

  constructor(
    private readonly d: SupervisorDeps,
    options: SupervisorOptions = {},
  ) {
    this.traceDeps = { store: d.store, logger: d.logger, transportOf: (step) => d.dispatcher.transportOf(step) };
    this.o = { sweepIntervalMs: 1000, leaseGraceMs: 10_000, queueLeaseMs: 600_000, sweepBuffered: false, deferDispatch: false, alertChannels: [], ...options };
  }

  /** Listens to the local bus and starts the sweeper. */
  start(): void {
    const { bus } = this.d;
    this.offs.push(
      bus.on('NewRequest', ({ requestId }) => void this.startRequest(requestId)),
      bus.on('StepCompleted', (e) => void this.handleResult(e)),
      bus.on('StepFailed', (e) => void this.handleResult(e)),
      bus.on('StepAccepted', (e) => void this.markWaiting(e)),
    );
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepIntervalMs);
  }

  /** Stops taking events; results that arrive later are left for recovery to redeliver. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    for (const off of this.offs.splice(0)) off();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.chains.values()]);
  }

  /** Requests whose state this process keeps in memory (running ones only). */
  get cachedCount(): number {
    return this.states.size;
  }

  /** Runs currently with a module, in this process. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** The runs currently with a module in this process. */
  inFlightIds(): string[] {
    return [...this.inFlight];
  }

  /** Drops what this process cached of these requests (they were changed from outside: a migration). */
  forget(requestIds: string[]): void {
    for (const id of requestIds) this.states.delete(id);
  }

  /** Switches to committing new runs as due `pending` rows (see `deferDispatch`). */
  setDeferDispatch(defer: boolean): void {
    this.o.deferDispatch = defer;
  }

  /** Starts a request that intake released. Resolves once its first step is committed. */
  startRequest(requestId: string): Promise<HandleResult> {
    return this.enqueue(requestId, () => this.handle(requestId, { type: 'start' }));
  }

  /** Takes a module's answer (or an event, or an action). Resolves once it is committed or found to be no news. */
  handleResult(e: BusEvents['StepCompleted'] | BusEvents['StepFailed']): Promise<HandleResult> {
    if (this.stopping) return Promise.resolve('failed');
    this.inFlight.delete(e.runId);
    const outcome: Outcome = 'output' in e
      ? { type: 'completed', runId: e.runId, output: redact(e.output), finishedAt: e.finishedAt, durationMs: e.durationMs, via: e.via, trace: e.trace }
      : { type: 'failed', runId: e.runId, error: e.error, finishedAt: e.finishedAt, durationMs: e.durationMs, trace: e.trace };
    return this.enqueue(e.requestId, () => this.handle(e.requestId, outcome));
  }

  /** An operator's `resume` (optionally with edited params) or `stop`. */
  operate(requestId: string, outcome: Extract<Outcome, { type: 'resume' | 'stop' }>): Promise<HandleResult> {
    return this.enqueue(requestId, () => this.handle(requestId, outcome));
  }

  /** A remote module took the call and will answer at its callback URL by `until`. */
  markWaiting(e: BusEvents['StepAccepted']): Promise<void> {
    this.inFlight.delete(e.runId);
    return this.enqueue(e.requestId, async () => {
      if (!(await this.d.store.markWaiting(e.runId, e.until))) return 'ignored';
      const run = this.states.get(e.requestId)?.open.get(e.runId);
      if (run) run.status = 'waiting';
      this.d.logger.info('step waiting for callback', { requestId: e.requestId, stepId: e.stepId, runId: e.runId, until: new Date(e.until).toISOString() });
      return 'committed';
    }).then(() => undefined);
  }

  /**
   * Single-process recovery: every unfinished request continues from its last committed
   * step. Open runs are sent again (at least once; the idempotency key lets modules drop
   * duplicates) and pending timers are re-armed. With several processes, leases do this.
   */
  async recover(pageSize = 500): Promise<number> {
    let after = '';
    let count = 0;
    for (;;) {
      const ids = await this.d.store.listRequestIds(ACTIVE_STATUSES, pageSize, after);
      if (ids.length === 0) return count;
      await Promise.all(ids.map((id) => this.enqueue(id, async () => {
        await this.resendOpenRuns(id);
        return 'committed' as const;
      })));
      count += ids.length;
      after = ids[ids.length - 1]!;
    }
  }

  /** Serialises work per request in this process; different requests run side by side. */
  private enqueue(requestId: string, work: () => Promise<HandleResult | void>): Promise<HandleResult> {
    const prev = this.chains.get(requestId) ?? Promise.resolve();
    // The chain entry is dropped as the work ends (two promises per event, not four).
    const next: Promise<HandleResult> = prev.then(work).then((r) => {
      if (this.chains.get(requestId) === next) this.chains.delete(requestId);
      return r ?? 'committed';
    }, (err: unknown): HandleResult => {
      if (this.chains.get(requestId) === next) this.chains.delete(requestId);
      this.d.logger.error('supervisor failed', { requestId, error: (err as Error).message });
      return 'failed';
    });
    this.chains.set(requestId, next);
    return next;
  }

  private async load(requestId: string, fresh = false): Promise<RequestState | undefined> {
    if (!fresh) {
      const cached = this.states.get(requestId);
      if (cached) return cached;
    }
    const request = await this.d.store.getRequest(requestId, { callback: true });
    if (!request) return undefined;
    // A request still `buffered` has never started, so it has no step runs to read.
    const state = buildState(request, request.status === 'buffered' ? [] : await this.d.store.listStepRuns(requestId));
    // Only requests with work moving are cached: a waiting request (days, maybe) costs rows only.
    if (request.status === 'running' || request.status === 'buffered') this.states.set(requestId, state);
    else this.states.delete(requestId);
    return state;
  }

  /**
   * The decision env of a pipeline, made once and re-stamped with the time: building five
   * closures per step was measurable. `decide` is synchronous and keeps no reference to it.
   */
  private env(pipeline: CompiledPipeline): DecisionEnv {
    let env = this.envs.get(pipeline);
    if (!env) {
      env = {
        now: 0,
        newId: () => newId(),
        random: Math.random,
        retryPolicy: (step) => this.d.pipelines.retryPolicy(pipeline, step),
        transportOf: (step) => this.d.dispatcher.transportOf(step),
      };
      this.envs.set(pipeline, env);
    }
    env.now = Date.now();
    return env;
  }

  private leaseFor(pipeline: CompiledPipeline, step: CompiledStep | undefined, now: number): number {
    if (step && this.d.dispatcher.transportOf(step) === 'queue') return now + this.o.queueLeaseMs;
    return now + (step ? this.d.dispatcher.timeoutOf(pipeline, step) : 0) + this.o.leaseGraceMs;
  }

  private async handle(requestId: string, outcome: Outcome): Promise<HandleResult> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.stopping; attempt++) {
      const cached = attempt === 0 && this.states.has(requestId);
      // The cached state without an extra await: most events find it.
      const state = (cached ? this.states.get(requestId) : undefined) ?? (await this.load(requestId, attempt > 0));
      if (!state) {
        this.d.logger.warn('event for unknown request dropped', { requestId });
        return 'ignored';
      }
      const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
      const at = outcome.type === 'start' ? await this.firstDispatchAt(pipeline, state) : Date.now();
      if (at === undefined) return 'ignored';
      const env = this.env(pipeline);
      env.now = at;
      const decision = decide(pipeline, state, outcome, env);
      if (!decision) {
        // A cached view may predate the run (another engine inserted it): only the store can
        // tell a duplicate from a result this process has not seen the run of.
        if (cached && outcome.type !== 'start') {
          this.states.delete(requestId);
          continue;
        }
        if ('runId' in outcome) this.d.logger.info('duplicate result dropped', { requestId, runId: outcome.runId });
        return 'ignored';
      }
      const context = { ...state.context };
      for (const o of decision.outputs) context[o.stepId] = o.value;
      if (decision.commit.request.vars) context.vars = decision.commit.request.vars;
      this.prepareRuns(pipeline, decision, context);
      noteAccessRows(pipeline, state, decision, context, outcome.type === 'start');
      let ok: boolean;
      try {
        ok = await this.d.committer.commit(decision.commit);
      } catch (err) {
        // The database failed: the runs stay open there, and leases bring them back.
        this.states.delete(requestId);
        this.d.logger.error('commit failed', { requestId, error: (err as Error).message });
        return 'failed';
      }
      if (ok) {
        const closed = 'runId' in outcome ? state.open.get(outcome.runId) : undefined;
        applyDecision(state, decision);
        this.perform(pipeline, state, decision, closed);
        if (state.request.traceContext) traceCommit(this.traceDeps, pipeline, state, decision, closed, outcome);
        return 'committed';
      }
      // Another process moved the request since we read it: read again and decide again.
      this.states.delete(requestId);
    }
    this.d.logger.warn('commit refused repeatedly; leaving it to the sweeper', { requestId });
    return 'failed';
  }

  /** Fills in what the pure core leaves to the shell: logged params, leases, wait keys, deferral. */
  private prepareRuns(pipeline: CompiledPipeline, decision: Decision, context: Record<string, unknown>): void {
    const now = decision.commit.request.updatedAt;
    for (const run of decision.commit.insertRuns) {
      const step = pipeline.steps[run.stepId];
      if (!step) continue;
      run.params = this.d.dispatcher.loggedParams({ step, context, override: run.override });
      if (step.kind === 'wait' && step.event && !run.waitKey) {
        try {
          run.waitKey = String(renderValue(step.event.key, context, maskedSecrets)).slice(0, 255);
        } catch {
          run.waitKey = '';
        }
      }
      if (run.status === 'dispatched' && this.o.deferDispatch) {
        run.status = 'pending';
        run.availableAt = now;
      }
      if (run.status === 'dispatched') run.leaseUntil = this.leaseFor(pipeline, step, now);
    }
    if (this.o.deferDispatch) {
      decision.schedule.push(...decision.dispatch);
      decision.dispatch.length = 0;
    }
    // Seed 000 §7: the admin is told. The alert is owed from the moment the error_stop is
    // durable, in the same transaction, so no crash can lose it.
    if (decision.finished === 'error_stop' && this.o.alertChannels.length > 0) {
      decision.commit.alerts = this.o.alertChannels.map((channel) => ({ id: newId(now), requestId: decision.commit.requestId, pipelineId: pipeline.id, channel, createdAt: now }));
    }
  }

  /**
   * When a start may dispatch its first step. Under a `rate` policy that moment is claimed in
   * the store, so the limit holds at dispatch across processes; when the window is full the
   * start is tried again as a moment frees up (undefined: not now).
   */
  private async firstDispatchAt(pipeline: CompiledPipeline, state: RequestState): Promise<number | undefined> {
    const now = Date.now();
    const rate = pipeline.intake;
    if (rate.kind !== 'rate' || state.request.status !== 'buffered') return now;
    const slot = await this.d.store.claimFirstDispatch(pipeline.id, state.request.id, { max: rate.max, perMs: rate.perMs }, now);
    if ('at' in slot) return slot.at;
    const id = state.request.id;
    const key = `start:${id}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      void this.startRequest(id);
    }, Math.min(Math.max(0, slot.retryAt - now), MAX_TIMER_MS)));
    return undefined;
  }

  /** The effects of a committed decision: logs, dispatches, timers, the finish event. */
  private perform(pipeline: CompiledPipeline, state: RequestState, d: Decision, closed: OpenRun | undefined): void {
    const { logger, bus } = this.d;
    const requestId = state.request.id;
    const f = d.commit.finishRun;
    if (f && closed) {
      const run = { requestId, pipeline: pipeline.id, runId: f.id, stepId: closed.stepId, attempt: closed.attempt, durationMs: f.durationMs, ...traced(state, f.id) };
      if (f.status === 'completed') logger.info('step completed', { ...run, status: 'completed' });
      else logger.warn('step failed', { ...run, status: 'failed', error: f.error });
      const step = pipeline.steps[closed.stepId];
      bus.emit('StepCommitted', { requestId, pipeline: pipeline.id, stepId: closed.stepId, attempt: closed.attempt, transport: step ? this.d.dispatcher.transportOf(step) : 'engine', status: f.status });
    }
    for (const note of d.notes) logger.info(note.message, { requestId, ...note.fields });
    for (const run of d.dispatch) this.send(pipeline, state, run);
    if (!this.o.deferDispatch) for (const run of d.schedule) this.arm(state.request.id, run.id, run.availableAt ?? 0);
    // A wait that polls again is the same run, pending until its next poll.
    const repoll = d.commit.repollRun;
    if (repoll && !this.o.deferDispatch) this.arm(requestId, repoll.id, repoll.availableAt);
    if (state.request.status === 'waiting') this.states.delete(requestId);
    if (d.finished) {
      this.states.delete(requestId);
      logger.info('request finished', { requestId, pipeline: pipeline.id, status: d.finished });
      if (d.finished === 'error_stop') {
        // Seed 000 §7: the run halts, keeps its state, and the admin is told.
        logger.error('admin notified: request stopped on error', { requestId, pipeline: pipeline.id, error: state.request.error });
      }
      bus.emit('RequestFinished', { requestId, pipeline: pipeline.id, status: d.finished, callback: state.request.hasCallback });
    }
  }

  private send(pipeline: CompiledPipeline, state: RequestState, run: RunRef): void {
    const step = pipeline.steps[run.stepId];
    if (!step) return;
    // Only work done by this process counts as in flight here: a queue run's result may be
    // taken by any engine, so this one might never hear of it and would then refuse to
    // redeliver the run after its lease ran out.
    if (this.d.dispatcher.transportOf(step) !== 'queue') this.inFlight.add(run.id);
    this.d.logger.info('step dispatched', {
      requestId: state.request.id, pipeline: pipeline.id, stepId: run.stepId, runId: run.id, attempt: run.attempt,
      module: step.kind === 'module' ? step.subsystem : null, transport: this.d.dispatcher.transportOf(step), ...traced(state, run.id),
    });
    this.d.dispatcher.dispatch({
      pipeline, request: state.request, step, runId: run.id, attempt: run.attempt,
      idempotencyKey: idempotencyKeyOf(run), context: { ...state.context }, override: run.override,
    });
  }

  /** An in-memory timer for a pending run (the sweeper is the durable fallback). */
  private arm(requestId: string, runId: string, at: number): void {
    clearTimeout(this.timers.get(runId));
    const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS);
    this.timers.set(runId, setTimeout(() => {
      this.timers.delete(runId);
      void this.enqueue(requestId, () => this.fire(requestId, runId, false));
    }, delay));
  }

  /** A pending run is due: claim it (once, across processes), then send it. */
  private async fire(requestId: string, runId: string, claimed: boolean): Promise<void> {
    if (this.stopping) return;
    const state = await this.load(requestId, claimed);
    const run = state?.open.get(runId);
    if (!state || !run || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    if (run.deadlineAt && run.deadlineAt <= Date.now()) {
      // A poll that comes due after the wait's deadline: the wait has timed out.
      return void (await this.timeOut(state, run));
    }
    if (!claimed) {
      if ((run.availableAt ?? 0) > Date.now()) return this.arm(requestId, runId, run.availableAt ?? 0);
      if (!(await this.d.store.claimRun(runId, this.leaseFor(pipeline, pipeline.steps[run.stepId], Date.now())))) return;
    }
    run.status = 'dispatched';
    this.send(pipeline, state, run);
  }

  /** Sends again the run whose lease this process just claimed. */
  private async redeliver(requestId: string, runId: string): Promise<void> {
    if (this.stopping || this.inFlight.has(runId)) return;
    const state = await this.load(requestId, true);
    const run = state?.open.get(runId);
    if (!state || !run || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    this.d.logger.warn('step redelivered after its lease ran out', { requestId, stepId: run.stepId, runId, attempt: run.attempt });
    this.send(pipeline, state, run);
  }

  /** A waiting run passed its deadline (found by the sweeper). */
  private async timeOutWait(requestId: string, runId: string): Promise<void> {
    const state = await this.load(requestId, true);
    const run = state?.open.get(runId);
    if (state && run) await this.timeOut(state, run);
  }

  /**
   * A wait or action step ran out of time: its `onTimeout` route applies. A module that
   * answered 202 and never called back fails that attempt, retryably.
   */
  private timeOut(state: RequestState, run: OpenRun): Promise<HandleResult> {
    const now = Date.now();
    // Only wait and action steps have a deadline; a module run waiting without one is a 202.
    const kind = run.deadlineAt !== null && run.deadlineAt !== undefined ? 'wait' : 'callback';
    return this.handleResult({
      requestId: state.request.id, runId: run.id, stepId: run.stepId, attempt: run.attempt, finishedAt: now, durationMs: 0,
      error: kind === 'wait'
        ? { code: WAIT_TIMEOUT, message: `step "${run.stepId}" waited past its timeout`, retryable: false }
        : { code: ErrorCodes.TIMEOUT, message: `step "${run.stepId}" accepted the call (202) but did not call back in time`, retryable: true },
    });
  }

  /** Reloads a request from the store and sends whatever it still owes (single process). */
  private async resendOpenRuns(requestId: string): Promise<void> {
    if (this.stopping) return;
    const state = await this.load(requestId, true);
    if (!state || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    for (const run of state.open.values()) {
      if (this.inFlight.has(run.id)) continue;
      if (run.status === 'pending') this.arm(requestId, run.id, run.availableAt ?? 0);
      else if (run.status === 'dispatched') {
        this.d.logger.info('step redelivered', { requestId, stepId: run.stepId, runId: run.id, attempt: run.attempt });
        this.send(pipeline, state, run);
      }
    }
  }

  /** The durable timer wheel: due pending runs, expired leases, and lost starts. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const lease = now + this.o.leaseGraceMs;
      for (const c of await this.d.store.claimDueRuns(now, lease, SWEEP_BATCH)) {
        clearTimeout(this.timers.get(c.id));
        this.timers.delete(c.id);
        void this.enqueue(c.requestId, () => this.fire(c.requestId, c.id, true));
      }
      // A queued run may wait long behind a rate limit: re-queueing it is idempotent (job id),
      // so it gets the long queue lease again rather than the short one.
      const leaseFor = (transport: string | null): number => (transport === 'queue' ? now + this.o.queueLeaseMs : lease);
      for (const c of await this.d.store.claimExpiredLeases(now, leaseFor, SWEEP_BATCH)) {
        void this.enqueue(c.requestId, () => this.redeliver(c.requestId, c.id));
      }
      for (const c of await this.d.store.claimExpiredWaits(now, SWEEP_BATCH)) {
        void this.timeOutWait(c.requestId, c.id);
      }
      if (this.o.sweepBuffered) {
        for (const id of await this.d.store.listStaleBuffered(now - 5 * this.o.sweepIntervalMs, SWEEP_BATCH)) void this.startRequest(id);
      }
    } catch (err) {
      this.d.logger.warn('sweep failed', { error: (err as Error).message });
    } finally {
      this.sweeping = false;
    }
  }
}

