/**
 * Which params an operator's `resume` may replace: those the failed step lists in `resumable`
 * (seed 000 §8: the administrator may fix parameters, never ignore the rules). Pure.
 */
import type { CompiledStep } from '../pipeline/types';

/**
 * The names in a resume's `params` that the step may not have replaced: every name not in its
 * `resumable` list (all of them for a step that lists none, or that is not a module step).
 */
export function unresumableParams(step: CompiledStep | undefined, params: Record<string, unknown> | undefined): string[] {
  if (!params) return [];
  const allowed = step?.kind === 'module' ? step.resumable ?? [] : [];
  return Object.keys(params).filter((name) => !allowed.includes(name));
}
