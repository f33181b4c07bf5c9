/**
 * Checks shared by every step kind's compiler: route targets, condition lists, objects.
 */
import { compileCondition, describeValue, isDottedPath } from '../conditions/compile';
import { isRecord, report, type IssueSink } from './compile-values';
import type { CompiledCondition } from './types';

/** What a step is checked against. */
export interface StepScope extends IssueSink {
  /** Every key of `steps`, valid or not, so one bad step does not cascade into "unknown step". */
  stepIds: ReadonlySet<string>;
  modules: ReadonlySet<string>;
}

/** The roots a condition field may start with, besides a step id. */
const CONTEXT_ROOTS: ReadonlySet<string> = new Set(['payload', 'request', 'vars']);

/** A list of step ids at `at`; returns the entries naming known steps, with their index. */
export function checkTargets(scope: StepScope, value: unknown, at: string): { id: string; index: number }[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    report(scope, at, `must be a list of step ids (got ${describeValue(value)})`);
    return [];
  }
  const known: { id: string; index: number }[] = [];
  value.forEach((target: unknown, index) => {
    if (typeof target !== 'string' || target === '') {
      report(scope, `${at}[${index}]`, `must be a step id (got ${describeValue(target)})`);
    } else if (!scope.stepIds.has(target)) {
      report(scope, `${at}[${index}]`, `unknown step "${target}"`);
    } else {
      known.push({ id: target, index });
    }
  });
  return known;
}

/** Checks that a condition field reads something the context can hold. */
function checkFieldRoot(scope: StepScope, field: unknown, at: string): void {
  if (!isDottedPath(field)) return; // compileCondition already reported the shape
  const root = field.split('.')[0];
  if (!CONTEXT_ROOTS.has(root) && !scope.stepIds.has(root)) {
    report(scope, at, `"${field}" starts with "${root}", which is not payload, request, vars or a step`);
  }
}

/**
 * Walks raw condition entries for what compileCondition cannot know: whether the steps named
 * in `result` and in `field`/`valueField` exist. Shapes were reported by compileCondition.
 */
function checkConditionRefs(scope: StepScope, entries: readonly unknown[], at: string): void {
  entries.forEach((entry, i) => {
    if (!isRecord(entry)) return;
    const here = `${at}[${i}]`;
    checkFieldRoot(scope, entry.field, `${here}.field`);
    checkFieldRoot(scope, entry.valueField, `${here}.valueField`);
    if (Array.isArray(entry.result)) {
      entry.result.forEach((target: unknown, j) => {
        if (typeof target === 'string' && target !== '' && !scope.stepIds.has(target)) {
          report(scope, `${here}.result[${j}]`, `unknown step "${target}"`);
        }
      });
    }
    if (Array.isArray(entry.success)) checkConditionRefs(scope, entry.success, `${here}.success`);
  });
}

export function compileConditions(scope: StepScope, value: unknown, at: string): CompiledCondition[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    report(scope, at, `must be a list of condition entries (got ${describeValue(value)})`);
    return [];
  }
  const compiled = value.map((entry, i) => compileCondition(entry, `${at}[${i}]`, scope.source, scope.issues));
  checkConditionRefs(scope, value, at);
  return compiled;
}

/** Adds every known step named in a `result`, at any depth, to `into`. */
export function collectResults(scope: StepScope, conditions: readonly CompiledCondition[], into: Set<string>): void {
  for (const condition of conditions) {
    for (const target of condition.result ?? []) if (scope.stepIds.has(target)) into.add(target);
    if (condition.success) collectResults(scope, condition.success, into);
  }
}

export function checkObject(scope: StepScope, value: unknown, at: string, required: boolean): Record<string, unknown> {
  if (value === undefined && !required) return {};
  if (!isRecord(value)) {
    report(scope, at, value === undefined ? 'is required' : `must be an object (got ${describeValue(value)})`);
    return {};
  }
  return value;
}

