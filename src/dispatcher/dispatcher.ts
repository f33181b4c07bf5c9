import type { Bus, ModuleCall } from '../bus/bus';
import { ConveyorError, ErrorCodes, toStepError } from '../errors';
import type { Logger } from '../log/logger';
import type { RequestRecord, Transport } from '../model';
import type { ModuleRegistry } from '../module/registry';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { envSecrets, hasTemplates, maskedSecrets, renderValue } from '../templates/render';
import type { StepTransport } from '../transports/types';

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
}

/**
 * Delivers each run to where its work is done: module steps through the module's transport,
 * and the steps the engine does itself (`setData`, `stop`) right here. Results always come
 * back on the bus, so the supervisor has one way in.
 */
export class Dispatcher {
  constructor(
    private readonly bus: Bus,
    private readonly registry: ModuleRegistry,
    private readonly transports: Partial<Record<Exclude<Transport, 'engine'>, StepTransport>>,
    private readonly logger: Logger,
  ) {}

  /** Which transport a step travels by (decided by deployment, not by the pipeline). */
  transportOf(step: CompiledStep): Transport {
    if (step.kind !== 'module') return 'engine';
    return this.registry.get(step.subsystem)?.transport ?? 'event';
  }

  /** The per-attempt time limit of a step: the step's, else its module's, else the pipeline's, else 30 s. */
  timeoutOf(pipeline: CompiledPipeline, step: CompiledStep): number {
    if (step.kind !== 'module') return DEFAULT_TIMEOUT_MS;
    return step.timeoutMs ?? this.registry.get(step.subsystem)?.timeoutMs ?? pipeline.defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The params a run is logged with: rendered, but with every secret masked. */
  loggedParams(job: Pick<DispatchJob, 'step' | 'context'>): unknown {
    if (job.step.kind !== 'module') return null;
    try {
      return hasTemplates(job.step.params) ? renderValue(job.step.params, job.context, maskedSecrets) : job.step.params;
    } catch (err) {
      return { template: job.step.params, error: (err as Error).message };
    }
  }

  dispatch(job: DispatchJob): void {
    const { step } = job;
    const started = Date.now();
    const base = () => ({ requestId: job.request.id, runId: job.runId, stepId: step.id, attempt: job.attempt, finishedAt: Date.now(), durationMs: Date.now() - started });
    try {
      if (step.kind === 'setData') {
        const output = renderValue(step.data, job.context, maskedSecrets);
        setImmediate(() => this.bus.emit('StepCompleted', { ...base(), output }));
        return;
      }
      if (step.kind === 'stop') {
        setImmediate(() => this.bus.emit('StepCompleted', { ...base(), output: { status: step.status, reason: step.reason ?? null } }));
        return;
      }
      const mod = this.registry.get(step.subsystem);
      if (!mod) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `module "${step.subsystem}" is not available in this deployment`, { retryable: false });
      const transport = this.transports[mod.transport];
      if (!transport) throw new ConveyorError(ErrorCodes.UNKNOWN_MODULE, `transport "${mod.transport}" for module "${mod.name}" is not configured`, { retryable: false });
      const params = (hasTemplates(step.params) ? renderValue(step.params, job.context, envSecrets) : step.params) as Record<string, unknown>;
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
      transport.send(call, mod);
    } catch (err) {
      const error = toStepError(err);
      this.logger.warn('step dispatch failed', { requestId: job.request.id, stepId: step.id, code: error.code, message: error.message });
      setImmediate(() => this.bus.emit('StepFailed', { ...base(), error }));
    }
  }
}
