/**
 * Evaluation of compiled conditions and the seed's routing rule. Pure: no I/O, no parsing at
 * evaluation time (paths and patterns were prepared by `compileCondition`).
 */
import type { CompiledCondition } from './types';
import { evaluateOperation } from './operations';
import { getPath } from './path';

/**
 * Whether one entry holds on `context`: reads `field`, compares it with `value` or with the
 * value at `valueField`, and applies the `!|` negation. A negated comparison on a missing
 * field holds (`'!|eq'` on `undefined` is `true`), as the plain reading of "not equal" says.
 */
export function evaluateCondition(condition: CompiledCondition, context: unknown): boolean {
  const actual = getPath(context, condition.field);
  const expected = condition.valueField ? getPath(context, condition.valueField) : condition.value;
  const holds = evaluateOperation(condition.operation, actual, expected, condition.pattern);
  return condition.negate ? !holds : holds;
}

/**
 * Finds the route a step's `condition` list yields on `context` (seed 002's rule):
 *
 * - entries are tried in order;
 * - an entry that holds and has a `result` returns it;
 * - an entry that holds and has `success` searches those entries the same way, depth first;
 *   if they yield a route it wins, otherwise the search goes on with the next sibling;
 * - `undefined` when no entry yields a route: the caller then takes the step's `next`.
 *
 * An empty `result: []` is a route, and it means "end this branch"; do not confuse it with
 * `undefined`. The returned array is the compiled one: callers must not mutate it.
 */
export function findRoute(conditions: readonly CompiledCondition[], context: unknown): string[] | undefined {
  for (const condition of conditions) {
    if (!evaluateCondition(condition, context)) continue;
    if (condition.result) return condition.result;
    if (condition.success) {
      const route = findRoute(condition.success, context);
      if (route) return route;
    }
  }
  return undefined;
}

/** True when one entry holds (siblings are "or", nested `success` entries are "and"). */
export function anyHolds(entries: readonly CompiledCondition[], context: Record<string, unknown>): boolean {
  return entries.some((c) => evaluateCondition(c, context) && (!c.success || anyHolds(c.success, context)));
}
