import type { Bus, BusEvents, ModuleCall } from '../bus/bus';
import { ConveyorError, ErrorCodes, toStepError } from '../errors';
import type { Logger } from '../log/logger';
import type { RequestRecord, Transport } from '../model';
import type { ModuleRegistry } from '../module/registry';
import { timeoutOf, transportOf } from '../pipeline/delivery';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { envSecrets, renderValue } from '../templates/render';
import { stepTraceparent } from '../tracing/spans';
import type { StepTransport } from '../transports/types';
import type { BrokerPool } from '../brokers/pool';
import { renderPublish, runPublish } from '../brokers/publish-step';
import { isTemplated, moduleCallOf } from './params';

export { DEFAULT_TIMEOUT_MS } from '../pipeline/delivery';

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
 * Sends each run to where its work is done: module steps through the module's transport,
 * `publish` steps to their broker. Results come back on the bus (or the Redis results
 * queue) and enter the supervisor through its inbox. The steps the engine does at once
 * (`setData`, `stop`, `delay`, `loop`) never come here: the supervisor does them itself.
 */
export class Dispatcher {
  constructor(
    private readonly bus: Bus,
    private readonly registry: ModuleRegistry,
    private readonly transports: Partial<Record<Exclude<Transport, 'engine'>, StepTransport>>,
    private readonly logger: Logger,
    /** Broker connections for `publish` steps. */
    private readonly brokers?: BrokerPool,
  ) {}

  /** Which transport a step travels by (decided by deployment, not by the pipeline). */
  transportOf(step: CompiledStep): Transport {
    return transportOf(step, this.registry);
  }

  /** The per-attempt time limit of a step: the one resolved at load, else worked out now. */
  private timeoutOf(pipeline: CompiledPipeline, step: CompiledStep): number {
    return pipeline.delivery?.[step.id]?.timeoutMs ?? timeoutOf(pipeline, step, this.registry);
  }

  /** The result fields of a run done by the engine itself (or refused), finished now. */
  private base(job: DispatchJob, started: number): Omit<BusEvents['StepCompleted'], 'output'> {
    const now = Date.now();
    return { requestId: job.request.id, runId: job.runId, stepId: job.step.id, attempt: job.attempt, finishedAt: now, durationMs: now - started };
  }

  dispatch(job: DispatchJob): void {
    const { step } = job;
    const started = Date.now();
    try {
      if (step.kind === 'publish') {
        const message = { ...renderPublish(step, job.context, envSecrets), messageId: job.idempotencyKey, timeoutMs: this.timeoutOf(job.pipeline, step) };
        void runPublish(this.brokers, step, message).then(
          (output) => this.bus.emit('StepCompleted', { ...this.base(job, started), output }),
          (err: unknown) => this.failed(job, started, err),
        );
        return;
      }
      const spec = moduleCallOf(step);
      if (!spec) throw new ConveyorError(ErrorCodes.INTERNAL, `step "${step.id}" (${step.kind}) is held by the engine and is never dispatched`, { retryable: false });
      const mod = this.registry.get(spec.subsystem);
      if (!mod) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `module "${spec.subsystem}" is not available in this deployment`, { retryable: false });
      const transport = this.transports[mod.transport];
      if (!transport) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `transport "${mod.transport}" for module "${mod.name}" is not configured`, { retryable: false });
      const rendered = (isTemplated(spec.params) ? renderValue(spec.params, job.context, envSecrets) : spec.params) as Record<string, unknown>;
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
