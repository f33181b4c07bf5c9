/**
 * How each step of a compiled pipeline is delivered: its transport, its per-attempt time
 * limit and its retry policy. They depend on the deployment (which modules run where, their
 * own timeouts and retries), so they are resolved once, when the catalog loads a pipeline,
 * and kept on it (`pipeline.delivery`). The supervisor then commits a step's run with its
 * lease and transport without asking the dispatcher anything.
 */
import type { Transport } from '../model';
import { moduleOf } from './step-module';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from './types';

/** The default per-attempt time limit when neither step, module nor pipeline sets one. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** A publish step's default time limit (the broker's confirmation). */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
/** When no step, module or pipeline says otherwise: three attempts, 1 s then 2 s apart. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0.2 };

export interface StepDelivery {
  /** Which transport the step travels by (`engine`: the engine does it itself). */
  transport: Transport;
  /** The per-attempt time limit: the step's, else its module's, else the pipeline's, else 30 s. */
  timeoutMs: number;
  retry: RetryPolicy;
}

/**
 * What delivery needs of the module registry (`ModuleRegistry` fits it): each module's
 * transport and its own timeout and retry. Narrow, so this layer does not import `module/`.
 */
export interface ModuleDelivery {
  get(name: string): { transport: Transport; timeoutMs?: number; retry?: RetryPolicy } | undefined;
}

type Modules = ModuleDelivery;

export function transportOf(step: CompiledStep, modules: Modules): Transport {
  const call = moduleOf(step);
  return call ? (modules.get(call.subsystem)?.transport ?? 'event') : 'engine';
}

export function timeoutOf(pipeline: CompiledPipeline, step: CompiledStep, modules: Modules): number {
  if (step.kind === 'publish') return step.timeoutMs ?? pipeline.defaults.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
  const call = moduleOf(step);
  if (!call) return DEFAULT_TIMEOUT_MS;
  return (step.kind === 'module' ? step.timeoutMs : undefined) ?? modules.get(call.subsystem)?.timeoutMs ?? pipeline.defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
}

export function retryPolicyOf(pipeline: CompiledPipeline, step: CompiledStep, modules: Modules): RetryPolicy {
  if (step.kind === 'publish') return step.retry ?? pipeline.defaults.retry ?? DEFAULT_RETRY;
  if (step.kind !== 'module') return { ...DEFAULT_RETRY, attempts: 1 };
  return step.retry ?? modules.get(step.subsystem)?.retry ?? pipeline.defaults.retry ?? DEFAULT_RETRY;
}

/** Resolves every step's delivery into `pipeline.delivery` (once; the registry does not change). */
export function resolveDelivery(pipeline: CompiledPipeline, modules: Modules): CompiledPipeline {
  const delivery: Record<string, StepDelivery> = {};
  for (const step of Object.values(pipeline.steps)) {
    delivery[step.id] = { transport: transportOf(step, modules), timeoutMs: timeoutOf(pipeline, step, modules), retry: retryPolicyOf(pipeline, step, modules) };
  }
  pipeline.delivery = delivery;
  return pipeline;
}

const NO_MODULES: Modules = { get: () => undefined };

/**
 * A step's resolved delivery. A pipeline the catalog never resolved (built by hand) gets the
 * step's and the pipeline's own settings, as if no module set any.
 */
export function deliveryOf(pipeline: CompiledPipeline, stepId: string): StepDelivery {
  const resolved = pipeline.delivery?.[stepId];
  if (resolved) return resolved;
  const step = pipeline.steps[stepId];
  if (!step) return { transport: 'engine', timeoutMs: DEFAULT_TIMEOUT_MS, retry: { ...DEFAULT_RETRY, attempts: 1 } };
  return { transport: transportOf(step, NO_MODULES), timeoutMs: timeoutOf(pipeline, step, NO_MODULES), retry: retryPolicyOf(pipeline, step, NO_MODULES) };
}
