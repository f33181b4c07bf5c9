/**
 * Validation and compilation of one step of a pipeline, from untrusted data. Whole-graph
 * checks (prev, reachability, loops) are in `compile-graph.ts`; this file only reports what
 * can be seen from the step itself and the list of step ids.
 */
import { describeValue } from '../conditions/compile';
import { compileAssign } from './compile-assign';
import type { StepEdges } from './compile-graph';
import { compilePublishStep, PUBLISH_KEYS } from './compile-brokers';
import { compileActionStep, compileDelayStep, compileLoopStep, compileWaitStep, KIND_KEYS } from './compile-kinds';
import { checkObject, checkTargets, collectResults, compileConditions, type StepScope } from './compile-shared';
import { checkDuration, checkKeys, checkString, compileRetry, isRecord, report } from './compile-values';
import type { CompiledModuleStep, CompiledStep } from './types';

export type { StepScope } from './compile-shared';

/**
 * Step ids are context keys and the first segment of condition fields (`get-deal.value`), so
 * they cannot hold dots. Letters of either case are allowed: `findContact` is as clear as
 * `find-contact`.
 */
export const STEP_ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** Context keys that are not steps (see DESIGN "Words"); `secrets` is the template namespace. */
export const RESERVED_STEP_IDS: ReadonlySet<string> = new Set(['payload', 'request', 'vars', 'secrets']);

const STEP_KINDS = ['module', 'setData', 'stop', 'wait', 'action', 'delay', 'loop', 'publish'] as const;
type StepKind = (typeof STEP_KINDS)[number];

const ROUTE_KEYS = ['kind', 'description', 'assign', 'next', 'prev', 'join', 'condition'];
const KEYS: Record<StepKind, ReadonlySet<string>> = {
  module: new Set([...ROUTE_KEYS, 'subsystem', 'params', 'timeout', 'retry', 'onError', 'resumable']),
  setData: new Set([...ROUTE_KEYS, 'data']),
  stop: new Set(['kind', 'description', 'assign', 'prev', 'status', 'reason']),
  wait: new Set([...ROUTE_KEYS, ...KIND_KEYS.wait]),
  action: new Set([...ROUTE_KEYS, ...KIND_KEYS.action]),
  delay: new Set([...ROUTE_KEYS, ...KIND_KEYS.delay]),
  loop: new Set(['kind', 'description', 'assign', 'prev', ...KIND_KEYS.loop]),
  publish: new Set([...ROUTE_KEYS, ...PUBLISH_KEYS]),
};
/** Keys that a stop step cannot have, with a clearer message than "unknown key". */
const NOT_ON_STOP: ReadonlySet<string> = new Set(['next', 'condition', 'join', 'onError']);

function checkStepId(scope: StepScope, id: string): void {
  if (!STEP_ID.test(id)) {
    report(scope, `steps.${id}`, 'a step id must be letters, digits, "-" or "_", starting with a letter or digit (no dots)');
  } else if (RESERVED_STEP_IDS.has(id)) {
    report(scope, `steps.${id}`, `"${id}" is reserved in the request context and cannot be a step id`);
  }
}

/** The step's kind: explicit, or `module` when a `subsystem` is given (seed 002 has no `kind`). */
function resolveKind(scope: StepScope, raw: Record<string, unknown>, at: string): StepKind | undefined {
  if (raw.kind === undefined) {
    if (raw.subsystem !== undefined) return 'module';
    report(scope, at, 'needs a "subsystem" (a module step) or a "kind"');
    return undefined;
  }
  if (typeof raw.kind === 'string' && (STEP_KINDS as readonly string[]).includes(raw.kind)) return raw.kind as StepKind;
  report(scope, `${at}.kind`, `unknown step kind ${describeValue(raw.kind)}`);
  return undefined;
}

function checkStepKeys(scope: StepScope, raw: Record<string, unknown>, kind: StepKind, at: string): void {
  if (kind !== 'stop') return checkKeys(scope, raw, KEYS[kind], at);
  for (const key of Object.keys(raw)) {
    if (NOT_ON_STOP.has(key)) report(scope, `${at}.${key}`, `a stop step ends the request and has no "${key}"`);
    else if (!KEYS.stop.has(key)) report(scope, `${at}.${key}`, `unknown key "${key}"`);
  }
}

/** `resumable`: distinct names, each a key of the step's `params`. */
function compileResumable(scope: StepScope, raw: unknown, params: Record<string, unknown>, at: string): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    report(scope, at, `must be a list of param names (got ${describeValue(raw)})`);
    return undefined;
  }
  const names: string[] = [];
  raw.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || name === '') report(scope, `${at}[${i}]`, `must be a param name (got ${describeValue(name)})`);
    else if (!Object.hasOwn(params, name)) report(scope, `${at}[${i}]`, `"${name}" is not a param of this step (params: ${Object.keys(params).join(', ') || 'none'})`);
    else if (names.includes(name)) report(scope, `${at}[${i}]`, `"${name}" is listed twice`);
    else names.push(name);
  });
  return names.length > 0 ? names : undefined;
}

/** Drops keys whose value is `undefined`, so compiled steps compare and serialise cleanly. */
function withoutUndefined<T extends object>(obj: T): T {
  for (const key of Object.keys(obj) as (keyof T)[]) if (obj[key] === undefined) delete obj[key];
  return obj;
}

type Routes = Omit<CompiledModuleStep, 'kind' | 'subsystem' | 'params' | 'timeoutMs' | 'retry' | 'onError' | 'resumable'>;
type Base = Pick<Routes, 'id' | 'description' | 'assign' | 'prev'>;

/** A stop step: it ends the request, so it has no routes of its own. */
function compileStopStep(scope: StepScope, raw: Record<string, unknown>, at: string, base: Base): CompiledStep {
  const status = raw.status ?? 'stopped';
  if (status !== 'completed' && status !== 'stopped') {
    report(scope, `${at}.status`, `must be "completed" or "stopped" (got ${describeValue(status)})`);
  }
  const reason = checkString(scope, raw.reason, `${at}.reason`);
  return {
    id: base.id, kind: 'stop', description: base.description, assign: base.assign, next: [], prev: base.prev, join: 'any', condition: [], status: status as 'completed' | 'stopped', reason,
  };
}

/** The routes every other kind shares: `next`, `condition` and `join`; their targets go into `targets`. */
function compileRoutes(scope: StepScope, raw: Record<string, unknown>, at: string, base: Base, targets: Set<string>): Routes {
  const next = checkTargets(scope, raw.next, `${at}.next`).map((t) => t.id);
  next.forEach((t) => targets.add(t));
  const condition = compileConditions(scope, raw.condition, `${at}.condition`);
  collectResults(scope, condition, targets);
  const join = raw.join ?? 'any';
  if (join !== 'any' && join !== 'all') {
    report(scope, `${at}.join`, `must be "any" or "all" (got ${describeValue(join)})`);
  } else if (join === 'all' && (!Array.isArray(raw.prev) || raw.prev.length < 2)) {
    report(scope, `${at}.join`, '"all" waits for several steps and needs at least 2 in prev');
  }
  return { id: base.id, description: base.description, assign: base.assign, next, prev: base.prev, join: join as 'any' | 'all', condition };
}

/** A module step: the module that does the work, its params, timeout, retry and error route. */
function compileModuleStep(scope: StepScope, raw: Record<string, unknown>, at: string, routes: Routes, targets: Set<string>): CompiledModuleStep {
  const subsystem = raw.subsystem;
  if (typeof subsystem !== 'string' || subsystem === '') {
    report(scope, `${at}.subsystem`, subsystem === undefined ? 'is required' : `must be a module name (got ${describeValue(subsystem)})`);
  } else if (!scope.modules.has(subsystem)) {
    report(scope, `${at}.subsystem`, `unknown module "${subsystem}"`);
  }
  const onError = checkTargets(scope, raw.onError, `${at}.onError`).map((t) => t.id);
  onError.forEach((t) => targets.add(t));
  const params = checkObject(scope, raw.params, `${at}.params`, false);
  return {
    ...routes,
    kind: 'module',
    subsystem: String(subsystem),
    params,
    timeoutMs: checkDuration(scope, raw.timeout, `${at}.timeout`, true),
    retry: compileRetry(scope, raw.retry, `${at}.retry`),
    onError,
    resumable: compileResumable(scope, raw.resumable, params, `${at}.resumable`),
  };
}

/**
 * Validates one step and compiles it. Returns the compiled step (meaningful only when no
 * issue was reported) and its edges for the graph checks; the edges are returned even for a
 * broken step, so that its targets do not show up as unreachable too.
 */
export function compileStep(scope: StepScope, id: string, raw: unknown): { step?: CompiledStep; edges: StepEdges } {
  const at = `steps.${id}`;
  checkStepId(scope, id);
  if (!isRecord(raw)) {
    report(scope, at, `must be an object (got ${describeValue(raw)})`);
    return { edges: { targets: new Set() } };
  }
  const kind = resolveKind(scope, raw, at);
  if (kind) checkStepKeys(scope, raw, kind, at);
  const description = checkString(scope, raw.description, `${at}.description`);
  const assign = compileAssign(scope, raw.assign, `${at}.assign`);
  const prevTargets = checkTargets(scope, raw.prev, `${at}.prev`);
  const edges: StepEdges = { targets: new Set(), prev: raw.prev === undefined ? undefined : prevTargets };
  const prev = prevTargets.map((p) => p.id);
  if (kind === 'stop') return { step: withoutUndefined(compileStopStep(scope, raw, at, { id, description, assign, prev })), edges };

  if (kind === 'loop') {
    const { step, targets } = compileLoopStep(scope, id, raw, at, { id, description, assign, prev });
    return { step: step && withoutUndefined(step), edges: { ...edges, targets } };
  }

  const targets = new Set<string>();
  const routes = compileRoutes(scope, raw, at, { id, description, assign, prev }, targets);

  let step: CompiledStep | undefined;
  if (kind === 'module') {
    step = compileModuleStep(scope, raw, at, routes, targets);
  } else if (kind === 'setData') {
    step = { ...routes, kind, data: checkObject(scope, raw.data, `${at}.data`, true) };
  } else if (kind === 'wait') {
    step = compileWaitStep(scope, raw, at, routes, targets);
  } else if (kind === 'action') {
    step = compileActionStep(scope, raw, at, routes, targets);
  } else if (kind === 'delay') {
    step = compileDelayStep(scope, raw, at, routes);
  } else if (kind === 'publish') {
    step = compilePublishStep(scope, raw, at, routes, targets);
  }
  return { step: step && withoutUndefined(step), edges: { ...edges, targets } };
}
