/**
 * The supervisor's thin stateful shell: it turns bus events into outcomes, asks the pure core
 * to decide, commits the decision, and only then dispatches what the decision started.
 */
import type { Bus, BusEvents } from '../bus/bus';
import type { Dispatcher } from '../dispatcher/dispatcher';
import { newId } from '../ids';
import type { Logger } from '../log/logger';
import { redact } from '../log/redact';
import { ACTIVE_STATUSES, type StepRunRecord } from '../model';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from '../pipeline/types';
import type { GroupCommitter } from '../store/group-commit';
import type { Store } from '../store/store';
import { applyDecision, decide, idempotencyKeyOf, type Decision, type DecisionEnv, type OpenRun, type Outcome, type RequestState } from './decide';
import { buildState } from './state';

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

/** Longest single setTimeout; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long to wait before reloading a request whose commit failed. */
const RECONCILE_DELAY_MS = 1000;

export class Supervisor {
  private readonly states = new Map<string, RequestState>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Runs sent to a module and not yet answered, in this process. */
  private readonly inFlight = new Set<string>();
  private readonly offs: Array<() => void> = [];
  private stopping = false;

  constructor(private readonly d: SupervisorDeps) {}

  start(): void {
    const { bus } = this.d;
    this.offs.push(
      bus.on('NewRequest', ({ requestId }) => void this.enqueue(requestId, () => this.handle(requestId, { type: 'start' }))),
      bus.on('StepCompleted', (e) => this.onResult(e, { type: 'completed', runId: e.runId, output: redact(e.output), finishedAt: e.finishedAt, durationMs: e.durationMs })),
      bus.on('StepFailed', (e) => this.onResult(e, { type: 'failed', runId: e.runId, error: e.error, finishedAt: e.finishedAt, durationMs: e.durationMs })),
    );
  }

  /** Stops taking events; results that arrive later are left for recovery to redeliver. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const off of this.offs.splice(0)) off();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.chains.values()]);
  }

  /** Runs currently with a module, in this process. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Continues every unfinished request from its last committed step: open runs are sent
   * again (at least once; the idempotency key lets modules drop duplicates) and pending
   * timers are re-armed. Returns how many requests it picked up.
   */
  async recover(pageSize = 500): Promise<number> {
    let after = '';
    let count = 0;
    for (;;) {
      const ids = await this.d.store.listRequestIds(ACTIVE_STATUSES, pageSize, after);
      if (ids.length === 0) return count;
      await Promise.all(ids.map((id) => this.enqueue(id, () => this.reconcile(id))));
      count += ids.length;
      after = ids[ids.length - 1]!;
    }
  }

  private onResult(e: BusEvents['StepCompleted'] | BusEvents['StepFailed'], outcome: Outcome): void {
    if (this.stopping) return;
    this.inFlight.delete(e.runId);
    void this.enqueue(e.requestId, () => this.handle(e.requestId, outcome));
  }

  /** Serialises work per request in this process; different requests run side by side. */
  private enqueue(requestId: string, work: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(requestId) ?? Promise.resolve();
    const next = prev.then(work).catch((err: unknown) => {
      this.d.logger.error('supervisor failed', { requestId, error: (err as Error).message });
    });
    this.chains.set(requestId, next);
    void next.then(() => {
      if (this.chains.get(requestId) === next) this.chains.delete(requestId);
    });
    return next;
  }

  private async load(requestId: string): Promise<RequestState | undefined> {
    const cached = this.states.get(requestId);
    if (cached) return cached;
    const request = await this.d.store.getRequest(requestId);
    if (!request) return undefined;
    const state = buildState(request, await this.d.store.listStepRuns(requestId));
    if (request.status !== 'completed' && request.status !== 'stopped') this.states.set(requestId, state);
    return state;
  }

  private env(pipeline: CompiledPipeline): DecisionEnv {
    return {
      now: Date.now(),
      newId: () => newId(),
      random: Math.random,
      retryPolicy: (step) => this.d.pipelines.retryPolicy(pipeline, step),
      transportOf: (step) => this.d.dispatcher.transportOf(step),
    };
  }

  private async handle(requestId: string, outcome: Outcome): Promise<void> {
    if (this.stopping) return;
    const state = await this.load(requestId);
    if (!state) {
      this.d.logger.warn('result for unknown request dropped', { requestId });
      return;
    }
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    const decision = decide(pipeline, state, outcome, this.env(pipeline));
    if (!decision) {
      if (outcome.type !== 'start') this.d.logger.info('duplicate result dropped', { requestId, runId: outcome.runId });
      return;
    }
    const context = decision.output ? { ...state.context, [decision.output.stepId]: decision.output.value } : state.context;
    for (const run of decision.commit.insertRuns) {
      const step = pipeline.steps[run.stepId];
      if (step) run.params = this.d.dispatcher.loggedParams({ step, context });
    }
    let ok: boolean;
    try {
      ok = await this.d.committer.commit(decision.commit);
    } catch (err) {
      this.d.logger.error('commit failed', { requestId, error: (err as Error).message });
      this.scheduleReconcile(requestId);
      return;
    }
    if (!ok) {
      this.d.logger.warn('commit refused: state changed elsewhere', { requestId });
      this.scheduleReconcile(requestId);
      return;
    }
    const closed = outcome.type === 'start' ? undefined : state.open.get(outcome.runId);
    applyDecision(state, decision);
    this.perform(pipeline, state, decision, closed);
  }

  /** The effects of a committed decision: logs, dispatches, timers, the finish event. */
  private perform(pipeline: CompiledPipeline, state: RequestState, d: Decision, closed: OpenRun | undefined): void {
    const { logger, bus } = this.d;
    const requestId = state.request.id;
    const f = d.commit.finishRun;
    if (f && closed) {
      const run = { requestId, pipeline: pipeline.id, runId: f.id, stepId: closed.stepId, attempt: closed.attempt, durationMs: f.durationMs };
      if (f.status === 'completed') logger.info('step completed', { ...run, status: 'completed' });
      else logger.warn('step failed', { ...run, status: 'failed', error: f.error });
    }
    for (const note of d.notes) logger.info(note.message, { requestId, ...note.fields });
    for (const run of d.dispatch) this.send(pipeline, state, run);
    for (const run of d.schedule) this.arm(pipeline, state, run);
    if (d.finished) {
      this.states.delete(requestId);
      logger.info('request finished', { requestId, pipeline: pipeline.id, status: d.finished });
      if (d.finished === 'error_stop') {
        // Seed 000 §7: the run halts, keeps its state, and the admin is told.
        logger.error('admin notified: request stopped on error', { requestId, pipeline: pipeline.id, error: state.request.error });
      }
      bus.emit('RequestFinished', { requestId, pipeline: pipeline.id, status: d.finished });
    }
  }

  private send(pipeline: CompiledPipeline, state: RequestState, run: Pick<StepRunRecord, 'id' | 'stepId' | 'attempt' | 'causedBy' | 'module' | 'transport' | 'params'>): void {
    const step = pipeline.steps[run.stepId];
    if (!step) return;
    this.inFlight.add(run.id);
    this.d.logger.info('step dispatched', {
      requestId: state.request.id, pipeline: pipeline.id, stepId: run.stepId, runId: run.id, attempt: run.attempt,
      module: run.module, transport: run.transport, params: run.params,
    });
    this.d.dispatcher.dispatch({
      pipeline, request: state.request, step, runId: run.id, attempt: run.attempt,
      idempotencyKey: idempotencyKeyOf(run), context: { ...state.context },
    });
  }

  private arm(pipeline: CompiledPipeline, state: RequestState, run: StepRunRecord | { id: string; availableAt: number | null }): void {
    const requestId = state.request.id;
    const delay = Math.max(0, (run.availableAt ?? 0) - Date.now());
    clearTimeout(this.timers.get(run.id));
    this.timers.set(run.id, setTimeout(() => {
      this.timers.delete(run.id);
      void this.enqueue(requestId, () => this.fire(requestId, run.id));
    }, Math.min(delay, MAX_TIMER_MS)));
    void pipeline;
  }

  /** A timer is due: send its run if it is still open (and its time has really come). */
  private async fire(requestId: string, runId: string): Promise<void> {
    if (this.stopping) return;
    const state = await this.load(requestId);
    const run = state?.open.get(runId);
    if (!state || !run) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    if ((run.availableAt ?? 0) > Date.now()) return this.arm(pipeline, state, run);
    const step = pipeline.steps[run.stepId];
    this.send(pipeline, state, { ...run, module: step?.kind === 'module' ? step.subsystem : null, transport: step ? this.d.dispatcher.transportOf(step) : null, params: null });
  }

  private scheduleReconcile(requestId: string): void {
    this.states.delete(requestId);
    const t = setTimeout(() => void this.enqueue(requestId, () => this.reconcile(requestId)), RECONCILE_DELAY_MS);
    t.unref();
  }

  /** Reloads a request from the store and sends whatever it still owes. */
  private async reconcile(requestId: string): Promise<void> {
    if (this.stopping) return;
    this.states.delete(requestId);
    const state = await this.load(requestId);
    if (!state || (state.request.status !== 'running' && state.request.status !== 'waiting')) return;
    const pipeline = await this.d.pipelines.get(state.request.pipelineId, state.request.version);
    for (const run of state.open.values()) {
      if (this.inFlight.has(run.id)) continue;
      if (run.status === 'pending' && (run.availableAt ?? 0) > Date.now()) this.arm(pipeline, state, run);
      else if (run.status === 'dispatched' || run.status === 'pending') {
        const step = pipeline.steps[run.stepId];
        this.d.logger.info('step redelivered', { requestId, stepId: run.stepId, runId: run.id, attempt: run.attempt });
        this.send(pipeline, state, { ...run, module: step?.kind === 'module' ? step.subsystem : null, transport: step ? this.d.dispatcher.transportOf(step) : null, params: null });
      }
    }
  }
}
