/** A small pure rule of the decision core: retry backoff. */
import type { RetryPolicy } from '../pipeline/types';

/** Computes the delay before attempt `nextAttempt` (2 for the first retry). */
export function computeBackoff(policy: RetryPolicy, nextAttempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.backoffMs * policy.factor ** Math.max(0, nextAttempt - 2));
  const spread = base * policy.jitter * (2 * random - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(base + spread)));
}
