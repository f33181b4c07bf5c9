/** Two small pure rules of the decision core: retry backoff, and whether a `when` holds. */
import { evaluateCondition } from '../conditions';
import type { CompiledCondition, RetryPolicy } from '../pipeline/types';

/** Computes the delay before attempt `nextAttempt` (2 for the first retry). */
export function computeBackoff(policy: RetryPolicy, nextAttempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.backoffMs * policy.factor ** Math.max(0, nextAttempt - 2));
  const spread = base * policy.jitter * (2 * random - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(base + spread)));
}

/** True when one entry holds (siblings are "or", nested `success` entries are "and"). */
export function anyHolds(entries: readonly CompiledCondition[], context: Record<string, unknown>): boolean {
  return entries.some((c) => evaluateCondition(c, context) && (!c.success || anyHolds(c.success, context)));
}
