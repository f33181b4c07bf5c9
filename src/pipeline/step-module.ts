/** Which module, if any, a step calls: module steps, and wait steps that poll. Pure. */
import type { CompiledStep } from './types';

export interface StepModuleCall {
  subsystem: string;
  params: Record<string, unknown>;
}

export function moduleOf(step: CompiledStep): StepModuleCall | undefined {
  if (step.kind === 'module') return { subsystem: step.subsystem, params: step.params };
  if (step.kind === 'wait' && step.poll) return { subsystem: step.poll.subsystem, params: step.poll.params };
  return undefined;
}
