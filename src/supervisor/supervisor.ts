/**
 * The supervisor's thin stateful shell: it turns inbox messages into outcomes, asks the pure
 * core to decide, commits the decision, and only then sends what the decision started.
 * Everything enters through `receive` (the inbox's port, `src/inbox/`) and leaves through
 * the outbox (`outbox.ts`); its clocks are in `timers.ts`, what it adds to a decision before
 * the commit in `prepare.ts`.
 *
 * Several engine processes may share one database. Every commit carries the request's `rev`;
 * a commit built on a stale view is refused, and the shell reloads and decides again. Runs
 * are claimed with conditional updates, so a timer or a redelivery happens once.
 */
import { logsAt } from '../log/logger';
import { Admission, type AdmissionCounts } from './admission';
import { markRunWaiting, noteAccessRows, noteMoved, placeOpenRun, runsInRows } from './commit-rows';
import type { RequestRecord } from '../model';
import { deliveryOf } from '../pipeline/delivery';
import type { CompiledPipeline } from '../pipeline/types';
import { applyDecision, decide, type Decision, type OpenRun, type Outcome, type RequestState } from './decide';
import { DecisionEnvs } from './envs';
import { outcomeOf, type HandleResult, type InboxMessage, type StepResult } from './messages';
import type { SupervisorDeps, SupervisorOptions } from './options';
import { Outbox } from './outbox';
import { timeoutError } from './poll';
import { leaseFor, prepareRuns } from './prepare';
import { buildState, copyRequest } from './state';
import { decideNewStart } from './start-new';
import { MovedStates, StateCache } from './state-cache';
import { recoverAll, SupervisorTimers } from './timers';
import { traceCommit, traced, type TraceDeps } from './traces';

export type { HandleResult, InboxMessage } from './messages';
export type { PipelineSource, SupervisorDeps, SupervisorOptions } from './options';

/** How many times a refused commit is decided again before giving up to the sweeper. */
const MAX_ATTEMPTS = 8;

export class Supervisor {
  private readonly states = new StateCache();
  private readonly envs: DecisionEnvs;
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Rows admission pulled, until their start reads them (once). */
  private readonly pulled = new Map<string, RequestRecord>();
  private readonly outbox: Outbox;
  /** Runs sent to a module and not yet answered, in this process (kept by the outbox). */
  private readonly inFlight: Set<string>;
  private readonly timers: SupervisorTimers;
  private readonly admission: Admission;
  private readonly moved: MovedStates;
  private stopping = false;
  private readonly o: Required<SupervisorOptions>;
  private readonly traceDeps: TraceDeps;

  constructor(
    private readonly d: SupervisorDeps,
    options: SupervisorOptions = {},
  ) {
    this.traceDeps = { store: d.store, logger: d.logger };
    this.envs = new DecisionEnvs(d.pipelines);
    this.o = { sweepIntervalMs: 1000, leaseGraceMs: 10_000, queueLeaseMs: 600_000, sweepBuffered: false, deferDispatch: false, alertChannels: [], maxInFlight: 4000, maxBacklog: 0, staleCheckMs: 5000, ...options };
    this.outbox = new Outbox(d, (r) => void this.takeResult(r));
    this.inFlight = this.outbox.inFlight;
    this.timers = new SupervisorTimers(d.store, d.logger, this.o, (m) => void this.receive(m));
    this.admission = new Admission(this.o.maxInFlight > 0 ? this.o.maxInFlight : Number.POSITIVE_INFINITY, {
      cached: () => this.states.size, backlog: () => d.committer.pendingCommits,
      listStartable: (before, limit) => d.store.listStaleBuffered(before, limit),
      start: (ids) => this.startPulled(ids), logger: d.logger,
    }, this.o.maxBacklog > 0 ? this.o.maxBacklog : Number.POSITIVE_INFINITY);
    d.committer.onAnswered(() => this.admission.freed());
    // Drops the states of requests that another engine carried on.
    this.moved = new MovedStates({ cache: this.states, pipelineOf: (r) => d.pipelines.cached?.(r.pipelineId, r.version), read: (ids) => d.store.getRequests(ids), dropped: () => this.admission.freed(), logger: d.logger }, this.o.staleCheckMs);
  }

  /** Starts the sweeper (the inbox feeds everything else). */
  start(): void {
    this.timers.start();
    this.admission.start();
    this.moved.start();
  }

  /** Stops taking messages; results that arrive later are left for recovery to redeliver. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.timers.stop();
    this.admission.stop();
    this.moved.stop();
    await Promise.allSettled([...this.chains.values()]);
  }

  /** Requests whose state this process keeps in memory (running ones only; `state-cache.ts`). */
  get cachedCount(): number { return this.states.size; }

  /** Requests in flight in this process (admission control), and starts it deferred to the store or pulled back. */
  get admitted(): AdmissionCounts { return { inFlight: this.admission.inFlight, waitingForStore: this.admission.waitingForStore, ...this.admission.stats }; }

  /** Runs currently with a module, in this process. */
  get inFlightCount(): number { return this.inFlight.size; }

  /** The runs currently with a module in this process, and those of them open in their requests' rows (handed back at shutdown). */
  handedBack(): { ids: string[]; inRows: Array<{ id: string; requestId: string }> } {
    return { ids: [...this.inFlight], inRows: runsInRows(this.states, this.inFlight) };
  }

  /** Switches to committing new runs as due `pending` rows (see `deferDispatch`). */
  setDeferDispatch(defer: boolean): void {
    this.o.deferDispatch = defer;
  }

  /**
   * The one way in. Resolves once the message is committed or found to be no news (a start:
   * once the first step is committed).
   */
  receive(m: InboxMessage): Promise<HandleResult> {
    const id = m.requestId;
    switch (m.type) {
      case 'start':
        // Beyond the cap the request stays buffered in the store, pulled back as others end.
        if (!this.admission.admit(id)) return Promise.resolve('ignored');
        return this.enqueue(id, () => this.handle(id, { type: 'start' })).finally(() => this.admission.started(id));
      case 'result':
        return this.takeResult(m.result);
      case 'accepted':
        return this.markWaiting(m.accepted);
      case 'resume':
        return this.enqueue(id, () => this.handle(id, { type: 'resume', params: m.params, maxSteps: m.maxSteps }));
      case 'stop':
        return this.enqueue(id, () => this.handle(id, { type: 'stop', reason: m.reason }));
      case 'due':
        return this.enqueue(id, () => this.fire(id, m.runId, m.claimed));
      case 'lease-expired':
        return this.enqueue(id, () => this.redeliver(id, m.runId));
      case 'wait-expired':
        return this.timeOutWait(id, m.runId);
      case 'resend':
        return this.enqueue(id, () => this.resendOpenRuns(id));
      case 'migrated':
        // In line behind whatever this request is doing: the next message reads it afresh.
        return this.enqueue(id, async () => {
          this.states.delete(id);
          return 'ignored';
        });
    }
  }

  /**
   * A new request intake has not stored yet, started in the transaction that stores it
   * (`start-new.ts`). Resolves with the stored request (a copy), or `undefined`: it takes the
   * usual way (stored `buffered`, then a start). Rejects when the write failed; nothing is stored.
   */
  async startNew(record: RequestRecord): Promise<RequestRecord | undefined> {
    if (this.stopping || !this.admission.hasRoom() || !this.admission.admit(record.id)) return undefined;
    try {
      const pipeline = await this.d.pipelines.get(record.pipelineId, record.version).catch(() => undefined);
      const start = pipeline && !this.stopping ? decideNewStart(pipeline, record, this.envs.of(pipeline), this.o) : undefined;
      if (!pipeline || !start) return undefined;
      const { state, decision } = start;
      await this.d.committer.insertRequest(start.started, undefined, decision.commit.insertRuns, decision.commit.openRow ?? undefined);
      const stored = copyRequest(start.started);
      applyDecision(state, decision);
      this.states.set(record.id, state);
      this.perform(pipeline, state, decision, undefined);
      if (state.request.traceContext) traceCommit(this.traceDeps, pipeline, state, decision, undefined, { type: 'start' });
      return stored;
    } finally {
      this.admission.started(record.id);
    }
  }

  /** A module's answer (or an event, or an action). */
  private takeResult(e: StepResult): Promise<HandleResult> {
    if (this.stopping) return Promise.resolve('failed');
    this.inFlight.delete(e.runId);
    const outcome = outcomeOf(e);
    return this.enqueue(e.requestId, () => this.handle(e.requestId, outcome));
  }

  /** A remote module took the call and will answer at its callback URL by `until`. */
  private markWaiting(e: Extract<InboxMessage, { type: 'accepted' }>['accepted']): Promise<HandleResult> {
    this.inFlight.delete(e.runId);
    return this.enqueue(e.requestId, async () => {
      if (!(await this.d.store.markWaiting(e.runId, e.until, e.requestId))) return 'ignored';
      const run = this.states.get(e.requestId)?.open.get(e.runId);
      if (run) markRunWaiting(run, e.until);
      this.d.logger.info('step waiting for callback', { requestId: e.requestId, stepId: e.stepId, runId: e.runId, until: new Date(e.until).toISOString() });
      return 'committed';
    });
  }

  /** Starts what admission pulled: admitted now, rows read in one query (if that fails, each `load` reads its own). */
  private startPulled(ids: string[]): void {
    const admitted = ids.filter((id) => this.admission.admit(id, true));
    if (admitted.length > 0) void this.d.store.getRequests(admitted).catch(() => []).then((rows) => {
      for (const r of rows) this.pulled.set(r.id, r);
      for (const id of admitted) void this.receive({ type: 'start', requestId: id }).finally(() => this.pulled.delete(id));
    });
  }

  /** Single-process recovery (`recoverAll` in `timers.ts`): every unfinished request continues. */
  recover(pageSize = 500): Promise<number> {
    return recoverAll(this.d.store, (m) => this.receive(m), pageSize);
  }

  /** Serialises work per request in this process; different requests run side by side. */
  private enqueue(requestId: string, work: () => Promise<HandleResult | void>): Promise<HandleResult> {
    const prev = this.chains.get(requestId) ?? Promise.resolve();
    // The chain entry is dropped as the work ends (two promises per event, not four).
    const next: Promise<HandleResult> = prev.then(work).then((r) => {
      if (this.chains.get(requestId) === next) this.chains.delete(requestId);
      this.admission.freed();
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
    const pulled = fresh ? undefined : this.pulled.get(requestId);
    this.pulled.delete(requestId);
    const request = pulled ?? (await this.d.store.getRequest(requestId, { callback: true }));
    if (!request) return undefined;
    // A request still `buffered` has never started, so it has no step runs to read.
    const state = buildState(request, request.status === 'buffered' ? [] : await this.d.store.listStepRuns(requestId));
    // Only requests with work moving are cached: a waiting request (days, maybe) costs rows only.
    if (request.status === 'running' || request.status === 'buffered') {
      this.states.set(requestId, state);
      // Now counted among the cached: no longer also among the starts under way.
      this.admission.started(requestId);
    } else this.states.delete(requestId);
    return state;
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
      // Without an `await` when the pinned version is compiled already (nearly every step).
      const pipeline = this.d.pipelines.cached?.(state.request.pipelineId, state.request.version) ?? (await this.d.pipelines.get(state.request.pipelineId, state.request.version));
      const at = outcome.type === 'start' ? await this.firstDispatchAt(pipeline, state) : Date.now();
      if (at === undefined) return 'ignored';
      const env = this.envs.of(pipeline);
      env.now = at;
      const decision = decide(pipeline, state, outcome, env);
      if (!decision) {
        // A cached view may predate the run (another engine inserted it): only the store can
        // tell a duplicate from a result this process has not seen the run of. A start of a
        // request another engine started is not held here: not kept, nor counted in flight.
        if (cached !== (outcome.type === 'start')) this.states.delete(requestId);
        if (cached && outcome.type !== 'start') continue;
        if ('runId' in outcome) this.d.logger.info('duplicate result dropped', { requestId, runId: outcome.runId });
        return 'ignored';
      }
      // The context with this decision's outputs and vars, as the core left it (not a copy per step).
      const context = decision.context;
      prepareRuns(pipeline, decision, context, this.o);
      noteAccessRows(pipeline, state, decision, context, outcome.type === 'start');
      noteMoved(state, decision);
      placeOpenRun(state, decision);
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
    if (!this.stopping) this.d.logger.warn('commit refused repeatedly; leaving it to the sweeper', { requestId });
    return 'failed';
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
    this.timers.retryStart(state.request.id, slot.retryAt);
    return undefined;
  }

  /** The effects of a committed decision: logs, dispatches, timers, the finish event. */
  private perform(pipeline: CompiledPipeline, state: RequestState, d: Decision, closed: OpenRun | undefined): void {
    const { logger, bus } = this.d;
    const requestId = state.request.id;
    const f = d.commit.finishRun;
    // The `info` lines' fields are built only when `info` is written (a line per step).
    const info = logsAt(logger, 'info');
    if (f && closed) {
      if (f.status !== 'completed' || info) {
        const run = { requestId, pipeline: pipeline.id, runId: f.id, stepId: closed.stepId, attempt: closed.attempt, durationMs: f.durationMs, ...traced(state, f.id) };
        if (f.status === 'completed') logger.info('step completed', { ...run, status: 'completed' });
        else logger.warn('step failed', { ...run, status: 'failed', error: f.error });
      }
      bus.emit('StepCommitted', { requestId, pipeline: pipeline.id, stepId: closed.stepId, attempt: closed.attempt, transport: deliveryOf(pipeline, closed.stepId).transport, status: f.status });
    }
    if (info) for (const note of d.notes) logger.info(note.message, { requestId, ...note.fields });
    for (const run of d.dispatch) this.outbox.send(pipeline, state, run);
    if (!this.o.deferDispatch) for (const run of d.schedule) this.timers.arm(state.request.id, run.id, run.availableAt ?? 0);
    // A wait that polls again is the same run, pending until its next poll.
    const repoll = d.commit.repollRun;
    if (repoll && !this.o.deferDispatch) this.timers.arm(requestId, repoll.id, repoll.availableAt);
    if (state.request.status === 'waiting') this.states.delete(requestId);
    if (d.finished) {
      this.states.delete(requestId);
      if (info) logger.info('request finished', { requestId, pipeline: pipeline.id, status: d.finished });
      if (d.finished === 'error_stop') {
        // Seed 000 §7: the run halts, keeps its state, and the admin is told.
        logger.error('admin notified: request stopped on error', { requestId, pipeline: pipeline.id, error: state.request.error });
      }
      bus.emit('RequestFinished', { requestId, pipeline: pipeline.id, status: d.finished, callback: state.request.hasCallback });
    }
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
      if ((run.availableAt ?? 0) > Date.now()) return this.timers.arm(requestId, runId, run.availableAt ?? 0);
      if (!(await this.d.store.claimRun(runId, leaseFor(pipeline, pipeline.steps[run.stepId], Date.now(), this.o)))) return;
    }
    run.status = 'dispatched';
    this.outbox.send(pipeline, state, run);
  }

  /** Sends again the run whose lease this process just claimed. */
  private async redeliver(requestId: string, runId: string): Promise<void> {
    if (this.stopping || this.inFlight.has(runId)) return;
    const state = await this.load(requestId, true);
    const run = state?.open.get(runId);
    if (!state || !run || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    this.d.logger.warn('step redelivered after its lease ran out', { requestId, stepId: run.stepId, runId, attempt: run.attempt });
    this.outbox.send(pipeline, state, run);
  }

  /** A waiting run passed its deadline (found by the sweeper). */
  private async timeOutWait(requestId: string, runId: string): Promise<HandleResult> {
    const state = await this.load(requestId, true);
    const run = state?.open.get(runId);
    return state && run ? this.timeOut(state, run) : 'ignored';
  }

  /** A wait or action step ran out of time (`timeoutError`): its `onTimeout` route applies. */
  private timeOut(state: RequestState, run: OpenRun): Promise<HandleResult> {
    const { id: runId, stepId, attempt } = run;
    return this.takeResult({ requestId: state.request.id, runId, stepId, attempt, finishedAt: Date.now(), durationMs: 0, error: timeoutError(run) });
  }

  /** Reloads a request from the store and sends whatever it still owes (single process). */
  private async resendOpenRuns(requestId: string): Promise<void> {
    if (this.stopping) return;
    const state = await this.load(requestId, true);
    if (!state || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    for (const run of state.open.values()) {
      if (this.inFlight.has(run.id)) continue;
      if (run.status === 'pending') this.timers.arm(requestId, run.id, run.availableAt ?? 0);
      else if (run.status === 'dispatched') {
        this.d.logger.info('step redelivered', { requestId, stepId: run.stepId, runId: run.id, attempt: run.attempt });
        this.outbox.send(pipeline, state, run);
      }
    }
  }
}
