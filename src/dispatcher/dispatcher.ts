import type { Bus, BusEvents, ModuleCall } from '../bus/bus';
import { ConveyorError, ErrorCodes, toStepError } from '../errors';
import type { Logger } from '../log/logger';
import type { RequestRecord, Transport } from '../model';
import type { ModuleRegistry } from '../module/registry';
import { moduleOf, type StepModuleCall } from '../pipeline/step-module';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { envSecrets, hasTemplates, maskedSecrets, nullMarkers, renderValue } from '../templates/render';
import { stepTraceparent } from '../tracing/spans';
import type { StepTransport } from '../transports/types';
import type { BrokerPool } from '../brokers/pool';
import { DEFAULT_PUBLISH_TIMEOUT_MS, publishTarget, renderPublish, runPublish } from '../brokers/publish-step';

/** The default per-attempt time limit when neither step, module nor pipeline sets one. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** One run to deliver. */
export interface DispatchJob {
  pipeline: CompiledPipeline;
  request: RequestRecord;
  step: CompiledStep;
  runId: string;
  attempt: number;
  idempotencyKey: string;
  context: Record<string, unknown>;
  /** Params an operator edited on resume: they replace the step's own, key by key. */
  override?: Record<string, unknown> | null;
}

/**
 * Delivers each run to where its work is done: module steps through the module's transport,
 * and the steps the engine does itself (`setData`, `stop`) right here. Results always come
 * back on the bus, so the supervisor has one way in.
 */
export class Dispatcher {
  /**
   * Facts about compiled steps, which never change once compiled: asked on every dispatch,
   * they are worked out once per step (and params object) instead of on each call.
   */
  private readonly calls = new WeakMap<CompiledStep, StepModuleCall | null>();
  private readonly templated = new WeakMap<object, boolean>();

  constructor(
    private readonly bus: Bus,
    private readonly registry: ModuleRegistry,
    private readonly transports: Partial<Record<Exclude<Transport, 'engine'>, StepTransport>>,
    private readonly logger: Logger,
    /** Broker connections for `publish` steps. */
    private readonly brokers?: BrokerPool,
  ) {}

  private moduleCall(step: CompiledStep): StepModuleCall | undefined {
    let call = this.calls.get(step);
    if (call === undefined) {
      call = moduleOf(step) ?? null;
      this.calls.set(step, call);
    }
    return call ?? undefined;
  }

  private hasTemplates(params: Record<string, unknown>): boolean {
    let has = this.templated.get(params);
    if (has === undefined) {
      has = hasTemplates(params);
      this.templated.set(params, has);
    }
    return has;
  }

  /** Which transport a step travels by (decided by deployment, not by the pipeline). */
  transportOf(step: CompiledStep): Transport {
    const call = this.moduleCall(step);
    return call ? (this.registry.get(call.subsystem)?.transport ?? 'event') : 'engine';
  }

  /** The per-attempt time limit of a step: the step's, else its module's, else the pipeline's, else 30 s. */
  timeoutOf(pipeline: CompiledPipeline, step: CompiledStep): number {
    if (step.kind === 'publish') return step.timeoutMs ?? pipeline.defaults.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    const call = this.moduleCall(step);
    if (!call) return DEFAULT_TIMEOUT_MS;
    return (step.kind === 'module' ? step.timeoutMs : undefined) ?? this.registry.get(call.subsystem)?.timeoutMs ?? pipeline.defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The params a run is logged with: rendered, but with every secret masked. */
  loggedParams(job: Pick<DispatchJob, 'step' | 'context' | 'override'>): unknown {
    if (job.step.kind === 'publish') {
      try {
        return { ...publishTarget(job.step), ...renderPublish(job.step, job.context, maskedSecrets) };
      } catch (err) {
        return { template: job.step.body, error: (err as Error).message };
      }
    }
    const call = this.moduleCall(job.step);
    if (!call) return null;
    try {
      const rendered = this.hasTemplates(call.params) ? renderValue(call.params, job.context, maskedSecrets) : call.params;
      return job.override ? { ...(rendered as Record<string, unknown>), ...job.override } : rendered;
    } catch (err) {
      return { template: call.params, error: (err as Error).message };
    }
  }

  /** The result fields of a run done by the engine itself (or refused), finished now. */
  private base(job: DispatchJob, started: number): Omit<BusEvents['StepCompleted'], 'output'> {
    const now = Date.now();
    return { requestId: job.request.id, runId: job.runId, stepId: job.step.id, attempt: job.attempt, finishedAt: now, durationMs: now - started };
  }

  /** A step the engine did itself: its result comes back on the bus, on a later turn. */
  private done(job: DispatchJob, started: number, output: unknown): void {
    setImmediate(() => this.bus.emit('StepCompleted', { ...this.base(job, started), output }));
  }

  dispatch(job: DispatchJob): void {
    const { step } = job;
    const started = Date.now();
    try {
      switch (step.kind) {
        case 'setData':
          return this.done(job, started, nullMarkers(renderValue(step.data, job.context, maskedSecrets)));
        case 'stop':
          return this.done(job, started, { status: step.status, reason: step.reason ?? null });
        case 'delay':
          return this.done(job, started, { delayedMs: step.durationMs });
        case 'publish': {
          const message = { ...renderPublish(step, job.context, envSecrets), messageId: job.idempotencyKey, timeoutMs: this.timeoutOf(job.pipeline, step) };
          void runPublish(this.brokers, step, message).then(
            (output) => this.bus.emit('StepCompleted', { ...this.base(job, started), output }),
            (err: unknown) => this.failed(job, started, err),
          );
          return;
        }
        case 'loop': {
          const previous = Number((job.context[step.id] as { iteration?: unknown } | undefined)?.iteration ?? 0);
          return this.done(job, started, { iteration: previous + 1, max: step.max });
        }
        default:
          break;
      }
      const spec = this.moduleCall(step);
      if (!spec) throw new ConveyorError(ErrorCodes.INTERNAL, `step "${step.id}" (${step.kind}) is held by the engine and is never dispatched`, { retryable: false });
      const mod = this.registry.get(spec.subsystem);
      if (!mod) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `module "${spec.subsystem}" is not available in this deployment`, { retryable: false });
      const transport = this.transports[mod.transport];
      if (!transport) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `transport "${mod.transport}" for module "${mod.name}" is not configured`, { retryable: false });
      const rendered = (this.hasTemplates(spec.params) ? renderValue(spec.params, job.context, envSecrets) : spec.params) as Record<string, unknown>;
      const params = job.override ? { ...rendered, ...job.override } : rendered;
      const call: ModuleCall = {
        requestId: job.request.id,
        pipeline: job.pipeline.id,
        stepId: step.id,
        runId: job.runId,
        attempt: job.attempt,
        idempotencyKey: job.idempotencyKey,
        test: job.request.test,
        module: mod.name,
        params,
        context: job.context,
        timeoutMs: this.timeoutOf(job.pipeline, step),
      };
      if (job.request.traceContext) call.traceparent = stepTraceparent(job.request.traceContext, job.runId);
      transport.send(call, mod);
    } catch (err) {
      this.failed(job, started, err);
    }
  }

  private failed(job: DispatchJob, started: number, err: unknown): void {
    const error = toStepError(err);
    this.logger.warn('step dispatch failed', { requestId: job.request.id, stepId: job.step.id, code: error.code, message: error.message });
    setImmediate(() => this.bus.emit('StepFailed', { ...this.base(job, started), error }));
  }
}
