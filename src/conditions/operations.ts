/**
 * The semantics of every condition operation. Pure: no I/O, no state.
 */
import isEqual from 'lodash/isEqual';
import isPlainObject from 'lodash/isPlainObject';
import type { BaseOperation } from './types';

// A strict decimal literal. Number() alone would also accept '', ' ', '0x1f' and 'Infinity',
// which would make `'' < 5` true: not what anyone writing a pipeline means.
const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : value;
  if (typeof value === 'string' && NUMERIC.test(value)) return Number(value);
  return undefined;
}

/**
 * Orders two values the way `gt`/`gte`/`lt`/`lte`/`between` do: numerically when both sides
 * are numbers or numeric strings, lexically when both are (non-numeric) strings, so ISO-8601
 * dates compare correctly. Anything else is not comparable and yields `undefined`.
 */
export function compareValues(a: unknown, b: unknown): number | undefined {
  const x = toNumber(a);
  const y = toNumber(b);
  if (x !== undefined && y !== undefined) return x === y ? 0 : x < y ? -1 : 1;
  if (typeof a === 'string' && typeof b === 'string') return a === b ? 0 : a < b ? -1 : 1;
  return undefined;
}

/**
 * Whether a value is "empty": `undefined`, `null`, `''`, `[]`, or a plain object with no own
 * keys.
 *
 * Unlike PHP's `empty()` (which the seed's orchestrator used), `0`, `'0'` and `false` are
 * NOT empty: a module that answers `{ count: 0 }` has answered, and routing it as "no answer"
 * would be a silent bug. Test for those explicitly with `eq`.
 */
export function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (isPlainObject(value)) return Object.keys(value as object).length === 0;
  return false;
}

function contains(actual: unknown, expected: unknown): boolean {
  if (typeof actual === 'string') return typeof expected === 'string' && actual.includes(expected);
  if (Array.isArray(actual)) return actual.some((item) => isEqual(item, expected));
  return false;
}

function between(actual: unknown, range: unknown): boolean {
  if (!Array.isArray(range) || range.length !== 2) return false;
  const low = compareValues(actual, range[0]);
  const high = compareValues(actual, range[1]);
  return low !== undefined && high !== undefined && low >= 0 && high <= 0;
}

function matches(actual: unknown, expected: unknown, pattern: RegExp | undefined): boolean {
  if (typeof actual !== 'string') return false;
  if (pattern) {
    // A compiled pattern never has the g or y flag (compileCondition builds it without
    // flags), so test() keeps no lastIndex state between requests.
    return pattern.test(actual);
  }
  // Slow path for direct callers that did not precompile; compiled conditions never get here.
  if (typeof expected !== 'string') return false;
  try {
    return new RegExp(expected).test(actual);
  } catch {
    return false;
  }
}

/**
 * Applies one (un-negated) operation. `actual` is the value at the condition's `field`;
 * `expected` is its `value`, or the value at its `valueField`; `pattern` is the precompiled
 * regular expression for `regex`.
 *
 * - `empty`: see {@link isEmpty} (`0` and `false` are not empty, unlike PHP).
 * - `exists`: `actual !== undefined` (so `null` exists).
 * - `eq` / `ne`: deep equality without type coercion (`1` is not `'1'`).
 * - `gt` / `gte` / `lt` / `lte`: see {@link compareValues}; not comparable → `false`.
 * - `in`: `expected` is an array holding an element deep-equal to `actual`.
 * - `contains`: a string holding the substring `expected`, or an array holding an element
 *   deep-equal to `expected`.
 * - `startsWith` / `endsWith`: strings only.
 * - `regex`: `actual` is a string matched by the pattern.
 * - `between`: `expected` is `[low, high]`, inclusive, compared as `gte`/`lte` do.
 * - `isString`, `isNumber` (finite numbers only), `isBoolean`, `isArray`, `isObject` (a plain
 *   object: not `null`, not an array), `isNull` (`null` only).
 */
export function evaluateOperation(op: BaseOperation, actual: unknown, expected: unknown, pattern?: RegExp): boolean {
  switch (op) {
    case 'empty':
      return isEmpty(actual);
    case 'exists':
      return actual !== undefined;
    case 'eq':
      return isEqual(actual, expected);
    case 'ne':
      return !isEqual(actual, expected);
    case 'gt':
      return (compareValues(actual, expected) ?? 0) > 0;
    case 'gte': {
      const order = compareValues(actual, expected);
      return order !== undefined && order >= 0;
    }
    case 'lt':
      return (compareValues(actual, expected) ?? 0) < 0;
    case 'lte': {
      const order = compareValues(actual, expected);
      return order !== undefined && order <= 0;
    }
    case 'in':
      return Array.isArray(expected) && expected.some((item) => isEqual(item, actual));
    case 'contains':
      return contains(actual, expected);
    case 'startsWith':
      return typeof actual === 'string' && typeof expected === 'string' && actual.startsWith(expected);
    case 'endsWith':
      return typeof actual === 'string' && typeof expected === 'string' && actual.endsWith(expected);
    case 'regex':
      return matches(actual, expected, pattern);
    case 'between':
      return between(actual, expected);
    case 'isString':
      return typeof actual === 'string';
    case 'isNumber':
      return typeof actual === 'number' && Number.isFinite(actual);
    case 'isBoolean':
      return typeof actual === 'boolean';
    case 'isArray':
      return Array.isArray(actual);
    case 'isObject':
      return isPlainObject(actual);
    case 'isNull':
      return actual === null;
  }
}
