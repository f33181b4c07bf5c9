/**
 * Validation and compilation of condition entries, from untrusted data (a `.pipeline.json`
 * may hold anything) into {@link CompiledCondition}s that evaluate without any parsing.
 * Pure: no I/O.
 */
import isPlainObject from 'lodash/isPlainObject';
import type { ValidationIssue } from '../errors';
import { OPERATIONS, type BaseOperation, type CompiledCondition, type ConditionDef } from './types';
import { parsePath } from './path';

/** The seed's negation prefix: `'!|empty'` holds when `empty` does not. */
export const NEGATION_PREFIX = '!|';

const ENTRY_KEYS: ReadonlySet<string> = new Set(['field', 'operation', 'value', 'valueField', 'success', 'result']);

/** Operations that test the field alone and take neither `value` nor `valueField`. */
const UNARY: ReadonlySet<BaseOperation> = new Set([
  'empty', 'exists', 'isString', 'isNumber', 'isBoolean', 'isArray', 'isObject', 'isNull',
]);
const ORDERING: ReadonlySet<BaseOperation> = new Set(['gt', 'gte', 'lt', 'lte']);
const KNOWN: ReadonlySet<string> = new Set(OPERATIONS);

/** Renders a bad value for a message, short enough for one line. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** Whether `value` is a dotted path with no empty segment (`a.b`, not `a..b` or `.a`). */
export function isDottedPath(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && !value.split('.').includes('');
}

/**
 * Splits `'!|empty'` into `{ negate: true, operation: 'empty' }`; `undefined` when the base
 * operation is not one of {@link OPERATIONS}.
 */
export function parseOperation(text: string): { negate: boolean; operation: BaseOperation } | undefined {
  const negate = text.startsWith(NEGATION_PREFIX);
  const base = negate ? text.slice(NEGATION_PREFIX.length) : text;
  return KNOWN.has(base) ? { negate, operation: base as BaseOperation } : undefined;
}

type Report = (path: string, message: string) => void;

/**
 * Checks the operand against the operation: unary operations take none, the others need
 * exactly one of `value`/`valueField`, with a literal of the right shape. Returns the
 * precompiled pattern for `regex`.
 */
function checkOperand(op: BaseOperation, entry: Record<string, unknown>, at: string, report: Report): RegExp | undefined {
  const hasValue = entry.value !== undefined;
  const hasField = entry.valueField !== undefined;
  if (UNARY.has(op)) {
    if (hasValue) report(`${at}.value`, `"${op}" takes no value`);
    if (hasField) report(`${at}.valueField`, `"${op}" takes no valueField`);
    return undefined;
  }
  if (hasField && !isDottedPath(entry.valueField)) {
    report(`${at}.valueField`, `must be a dotted path (got ${describeValue(entry.valueField)})`);
  }
  if (op === 'regex') {
    // The pattern is compiled once here; a pattern read from the context would have to be
    // compiled on every evaluation, and could be supplied by a caller (ReDoS).
    if (hasField) report(`${at}.valueField`, '"regex" takes a literal pattern in value, not a valueField');
    if (typeof entry.value !== 'string') {
      report(`${at}.value`, `"regex" needs a pattern string (got ${describeValue(entry.value)})`);
      return undefined;
    }
    try {
      return new RegExp(entry.value);
    } catch (err) {
      report(`${at}.value`, `invalid regular expression: ${(err as Error).message}`);
      return undefined;
    }
  }
  if (hasValue && hasField) {
    report(`${at}.valueField`, 'give either value or valueField, not both');
    return undefined;
  }
  if (!hasValue && !hasField) {
    report(at, `"${op}" needs a value or a valueField`);
    return undefined;
  }
  if (hasValue) checkLiteral(op, entry.value, `${at}.value`, report);
  return undefined;
}

function isOrderable(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'number' && !Number.isNaN(value));
}

function checkLiteral(op: BaseOperation, value: unknown, at: string, report: Report): void {
  if (ORDERING.has(op) && !isOrderable(value)) {
    report(at, `"${op}" compares with a number or a string (got ${describeValue(value)})`);
  } else if ((op === 'startsWith' || op === 'endsWith') && typeof value !== 'string') {
    report(at, `"${op}" needs a string (got ${describeValue(value)})`);
  } else if (op === 'in' && !Array.isArray(value)) {
    report(at, `"in" needs an array (got ${describeValue(value)})`);
  } else if (op === 'between' && !(Array.isArray(value) && value.length === 2 && value.every(isOrderable))) {
    report(at, `"between" needs [low, high] of numbers or strings (got ${describeValue(value)})`);
  }
}

/** Checks `result`/`success`: exactly one of them, of the right shape. */
function checkOutcome(entry: Record<string, unknown>, at: string, source: string, issues: ValidationIssue[], report: Report) {
  const { result, success } = entry;
  if (result !== undefined && success !== undefined) {
    report(at, 'give either result or success, not both');
  } else if (result === undefined && success === undefined) {
    report(at, 'needs a result or a success list');
  }
  let compiledResult: string[] | undefined;
  if (result !== undefined) {
    if (!Array.isArray(result)) {
      report(`${at}.result`, `must be a list of step ids (got ${describeValue(result)})`);
    } else {
      result.forEach((target, i) => {
        if (typeof target !== 'string' || target === '') {
          report(`${at}.result[${i}]`, `must be a step id (got ${describeValue(target)})`);
        }
      });
      compiledResult = result.map(String);
    }
  }
  let compiledSuccess: CompiledCondition[] | undefined;
  if (success !== undefined) {
    if (!Array.isArray(success) || success.length === 0) {
      report(`${at}.success`, `must be a non-empty list of condition entries (got ${describeValue(success)})`);
    } else {
      compiledSuccess = success.map((child, i) => compileCondition(child, `${at}.success[${i}]`, source, issues));
    }
  }
  return { result: compiledResult, success: compiledSuccess };
}

/**
 * Validates one condition entry (and, depth first, its `success` entries) and compiles it:
 * the `!|` prefix becomes `negate`, fields become path segments, and a `regex` pattern is
 * compiled once. Every problem is pushed to `issues` with its exact path (`at` is the entry's
 * own path, e.g. `steps.get-bitrix-deal.condition[1]`); nothing is thrown. The result is
 * only meaningful when no issue was pushed.
 *
 * Step ids in `result` are checked for shape only: whether they exist is the pipeline
 * compiler's business, since only it knows the steps.
 */
export function compileCondition(def: ConditionDef | unknown, at: string, source: string, issues: ValidationIssue[]): CompiledCondition {
  const report: Report = (path, message) => issues.push({ source, path, message });
  if (!isPlainObject(def)) {
    report(at, `must be a condition entry object (got ${describeValue(def)})`);
    return { field: [], negate: false, operation: 'exists' };
  }
  const entry = def as Record<string, unknown>;
  for (const key of Object.keys(entry)) {
    if (!ENTRY_KEYS.has(key)) report(`${at}.${key}`, `unknown key "${key}"`);
  }
  if (!isDottedPath(entry.field)) {
    report(`${at}.field`, entry.field === undefined ? 'is required' : `must be a dotted path (got ${describeValue(entry.field)})`);
  }
  let parsed: ReturnType<typeof parseOperation>;
  if (typeof entry.operation !== 'string') {
    report(`${at}.operation`, entry.operation === undefined ? 'is required' : `must be a string (got ${describeValue(entry.operation)})`);
  } else {
    parsed = parseOperation(entry.operation);
    if (!parsed) report(`${at}.operation`, `unknown operation "${entry.operation}"`);
  }
  const pattern = parsed ? checkOperand(parsed.operation, entry, at, report) : undefined;
  const { result, success } = checkOutcome(entry, at, source, issues, report);

  const compiled: CompiledCondition = {
    field: typeof entry.field === 'string' ? parsePath(entry.field) : [],
    negate: parsed?.negate ?? false,
    operation: parsed?.operation ?? 'exists',
  };
  if (entry.value !== undefined) compiled.value = entry.value;
  if (typeof entry.valueField === 'string') compiled.valueField = parsePath(entry.valueField);
  if (pattern) compiled.pattern = pattern;
  if (success) compiled.success = success;
  if (result) compiled.result = result;
  return compiled;
}
