/**
 * Validation of a step's `assign: { name: value-or-template }` (process variables). Names are
 * identifiers; values are JSON; every template string must parse and may read only what the
 * context holds (`payload`, `request`, `vars`, a step id). `secrets` is refused: `vars` are
 * stored and shown, so a secret assigned there would leak.
 */
import { describeValue } from '../conditions/compile';
import { templateRoots } from '../templates/render';
import type { StepScope } from './compile-shared';
import { isRecord, report } from './compile-values';

/** A variable name: `{{ vars.executor }}` must be able to read it. */
export const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names that would reach an object's prototype. */
const UNSAFE_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** Context keys a template may read besides step ids. */
const TEMPLATE_ROOTS: ReadonlySet<string> = new Set(['payload', 'request', 'vars']);

function checkTemplate(scope: StepScope, text: string, at: string): void {
  if (!text.includes('{{') && !text.includes('{%')) return;
  let roots: string[];
  try {
    roots = templateRoots(text);
  } catch (err) {
    report(scope, at, `the template does not parse: ${(err as Error).message}`);
    return;
  }
  for (const root of roots) {
    if (root === 'secrets') report(scope, at, 'cannot read secrets: vars are stored and shown, so a secret must not go there');
    else if (!TEMPLATE_ROOTS.has(root) && !scope.stepIds.has(root)) {
      report(scope, at, `the template reads "${root}", which is not payload, request, vars or a step`);
    }
  }
}

/** A JSON value, with every template string in it checked. */
function checkValue(scope: StepScope, value: unknown, at: string): void {
  if (typeof value === 'string') return checkTemplate(scope, value, at);
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) report(scope, at, `must be a finite number (got ${String(value)})`);
    return;
  }
  if (Array.isArray(value)) return value.forEach((v, i) => checkValue(scope, v, `${at}[${i}]`));
  if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (UNSAFE_NAMES.has(k)) report(scope, `${at}.${k}`, `"${k}" cannot be a key`);
      else checkValue(scope, v, `${at}.${k}`);
    }
    return;
  }
  report(scope, at, `must be a JSON value or a template string (got ${describeValue(value)})`);
}

/** Validates `assign` at `at` (`steps.take.assign`); `undefined` when the step assigns nothing. */
export function compileAssign(scope: StepScope, value: unknown, at: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value) || Object.keys(value).length === 0) {
    report(scope, at, `must be an object of { name: value-or-template } with at least one name (got ${describeValue(value)})`);
    return undefined;
  }
  for (const [name, v] of Object.entries(value)) {
    const here = `${at}.${name}`;
    if (!VAR_NAME.test(name) || UNSAFE_NAMES.has(name)) {
      report(scope, here, 'a variable name must be letters, digits or "_", not starting with a digit (and not __proto__, constructor, prototype)');
    }
    checkValue(scope, v, here);
  }
  return value;
}
