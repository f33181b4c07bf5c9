/**
 * Validation of the step kinds the engine does itself while a request waits: `wait`,
 * `action`, `delay` and `loop`. Shared checks live in `compile-step.ts`.
 */
import { describeValue } from '../conditions/compile';
import { checkObject, checkTargets, compileConditions, type StepScope } from './compile-shared';
import { checkDuration, checkKeys, checkString, isRecord, report } from './compile-values';
import type {
  CompiledAction, CompiledActionStep, CompiledCondition, CompiledDelayStep, CompiledLoopStep, CompiledPoll, CompiledWaitStep,
} from './types';

/** The keys each kind adds to the common route keys. */
export const KIND_KEYS = {
  wait: ['event', 'poll', 'timeout', 'onTimeout'],
  action: ['actions', 'when', 'timeout', 'onTimeout'],
  delay: ['duration'],
  loop: ['target', 'max', 'onExhausted'],
} as const;

type Routes = Pick<CompiledWaitStep, 'id' | 'description' | 'assign' | 'next' | 'prev' | 'join' | 'condition'>;

const ACTION_KEYS: ReadonlySet<string> = new Set(['label', 'allow', 'visible', 'fields', 'result']);
const FIELD_KEYS: ReadonlySet<string> = new Set(['required', 'value', 'label']);
const ROLE = /^[a-z][a-z0-9_-]*$/;

/** `visible`/`when` lists are condition entries that need no route: they only hold or not. */
export function compileGuards(scope: StepScope, value: unknown, at: string): CompiledCondition[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    report(scope, at, `must be a list of condition entries (got ${describeValue(value)})`);
    return [];
  }
  const withRoutes = (entries: unknown[]): unknown[] => entries.map((e) => {
    if (!isRecord(e)) return e;
    const copy: Record<string, unknown> = { ...e };
    if (Array.isArray(copy.success)) copy.success = withRoutes(copy.success as unknown[]);
    else if (copy.result === undefined) copy.result = [];
    return copy;
  });
  return compileConditions(scope, withRoutes(value), at);
}

function compileTimeout(scope: StepScope, raw: Record<string, unknown>, at: string, targets: Set<string>): { timeoutMs?: number; onTimeout: string[] } {
  const timeoutMs = checkDuration(scope, raw.timeout, `${at}.timeout`, true);
  const onTimeout = checkTargets(scope, raw.onTimeout, `${at}.onTimeout`).map((t) => t.id);
  onTimeout.forEach((t) => targets.add(t));
  if (raw.onTimeout !== undefined && raw.timeout === undefined) report(scope, `${at}.onTimeout`, 'needs a "timeout"');
  return { timeoutMs, onTimeout };
}

export function compileWaitStep(scope: StepScope, raw: Record<string, unknown>, at: string, routes: Routes, targets: Set<string>): CompiledWaitStep {
  let event: CompiledWaitStep['event'];
  let poll: CompiledWaitStep['poll'];
  if (raw.event !== undefined) {
    if (!isRecord(raw.event)) report(scope, `${at}.event`, `must be { name, key } (got ${describeValue(raw.event)})`);
    else {
      checkKeys(scope, raw.event, new Set(['name', 'key']), `${at}.event`);
      const name = raw.event.name;
      const key = raw.event.key;
      if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) report(scope, `${at}.event.name`, `must be an event name of letters, digits, ".", "-", "_" (got ${describeValue(name)})`);
      if (typeof key !== 'string' || key === '') report(scope, `${at}.event.key`, `must be a template string such as "{{ payload.id }}" (got ${describeValue(key)})`);
      event = { name: String(name), key: String(key) };
    }
  }
  if (raw.poll !== undefined) poll = compilePoll(scope, raw.poll, `${at}.poll`);
  if (!event && !poll && raw.event === undefined && raw.poll === undefined) report(scope, at, 'a wait step needs an "event", a "poll", or both');
  return { ...routes, kind: 'wait', event, poll, ...compileTimeout(scope, raw, at, targets) };
}

const POLL_KEYS: ReadonlySet<string> = new Set(['subsystem', 'every', 'backoff', 'maxEvery', 'maxPolls', 'params', 'doneField']);
/** The longest interval a backoff grows to when `maxEvery` is not given. */
const DEFAULT_MAX_EVERY_MS = 600_000;

function compilePoll(scope: StepScope, raw: unknown, at: string): CompiledPoll | undefined {
  if (!isRecord(raw)) {
    report(scope, at, `must be { subsystem, every } (got ${describeValue(raw)})`);
    return undefined;
  }
  checkKeys(scope, raw, POLL_KEYS, at);
  const sub = raw.subsystem;
  if (typeof sub !== 'string' || !scope.modules.has(sub)) report(scope, `${at}.subsystem`, typeof sub === 'string' ? `unknown module "${sub}"` : 'is required');
  const everyMs = checkDuration(scope, raw.every, `${at}.every`, true);
  if (raw.every === undefined) report(scope, `${at}.every`, 'is required');
  const backoff = raw.backoff ?? 1;
  if (typeof backoff !== 'number' || !Number.isFinite(backoff) || backoff < 1 || backoff > 100) report(scope, `${at}.backoff`, `must be a factor from 1 to 100 (got ${describeValue(raw.backoff)})`);
  const maxEvery = checkDuration(scope, raw.maxEvery, `${at}.maxEvery`, true);
  if (maxEvery !== undefined && everyMs !== undefined && maxEvery < everyMs) report(scope, `${at}.maxEvery`, 'must be at least "every"');
  if (raw.maxPolls !== undefined && (!Number.isInteger(raw.maxPolls) || (raw.maxPolls as number) < 1)) report(scope, `${at}.maxPolls`, `must be a positive integer (got ${describeValue(raw.maxPolls)})`);
  const doneField = raw.doneField ?? 'done';
  if (typeof doneField !== 'string' || doneField === '') report(scope, `${at}.doneField`, 'must be a field name');
  const every = everyMs ?? 60_000;
  const factor = typeof backoff === 'number' && backoff >= 1 ? backoff : 1;
  const poll: CompiledPoll = {
    subsystem: String(sub), everyMs: every, backoff: factor, maxEveryMs: maxEvery ?? (factor === 1 ? every : Math.max(every, DEFAULT_MAX_EVERY_MS)),
    params: checkObject(scope, raw.params, `${at}.params`, false), doneField: String(doneField),
  };
  if (typeof raw.maxPolls === 'number') poll.maxPolls = raw.maxPolls;
  return poll;
}

function compileAction(scope: StepScope, code: string, raw: unknown, at: string, targets: Set<string>): CompiledAction | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(code)) report(scope, at, 'an action code must be letters, digits, "-" or "_"');
  if (!isRecord(raw)) {
    report(scope, at, `must be an object (got ${describeValue(raw)})`);
    return undefined;
  }
  checkKeys(scope, raw, ACTION_KEYS, at);
  const allow = Array.isArray(raw.allow) ? raw.allow : [];
  if (!Array.isArray(raw.allow) || allow.length === 0) report(scope, `${at}.allow`, 'must list at least one role');
  allow.forEach((r: unknown, i) => {
    if (typeof r !== 'string' || !ROLE.test(r)) report(scope, `${at}.allow[${i}]`, `must be a role name (got ${describeValue(r)})`);
  });
  const fields: CompiledAction['fields'] = {};
  const rawFields = checkObject(scope, raw.fields, `${at}.fields`, false);
  for (const [name, f] of Object.entries(rawFields)) {
    if (!isRecord(f)) {
      report(scope, `${at}.fields.${name}`, `must be { required?, value?, label? } (got ${describeValue(f)})`);
      continue;
    }
    checkKeys(scope, f, FIELD_KEYS, `${at}.fields.${name}`);
    if (f.required !== undefined && typeof f.required !== 'boolean') report(scope, `${at}.fields.${name}.required`, 'must be true or false');
    fields[name] = { required: f.required === true, value: f.value, label: checkString(scope, f.label, `${at}.fields.${name}.label`) };
  }
  let result: string[] | undefined;
  if (raw.result !== undefined) {
    result = checkTargets(scope, raw.result, `${at}.result`).map((t) => t.id);
    result.forEach((t) => targets.add(t));
  }
  return {
    code,
    label: checkString(scope, raw.label, `${at}.label`),
    allow: allow.map(String),
    visible: compileGuards(scope, raw.visible, `${at}.visible`),
    fields,
    result,
  };
}

export function compileActionStep(scope: StepScope, raw: Record<string, unknown>, at: string, routes: Routes, targets: Set<string>): CompiledActionStep {
  const actions: Record<string, CompiledAction> = {};
  const rawActions = checkObject(scope, raw.actions, `${at}.actions`, true);
  if (isRecord(raw.actions) && Object.keys(rawActions).length === 0) report(scope, `${at}.actions`, 'must offer at least one action');
  for (const [code, def] of Object.entries(rawActions)) {
    const a = compileAction(scope, code, def, `${at}.actions.${code}`, targets);
    if (a) actions[code] = a;
  }
  // An action without its own `result` falls back to the step's condition/next.
  const when = compileGuards(scope, raw.when, `${at}.when`);
  return { ...routes, kind: 'action', actions, when, ...compileTimeout(scope, raw, at, targets) };
}

export function compileDelayStep(scope: StepScope, raw: Record<string, unknown>, at: string, routes: Routes): CompiledDelayStep {
  const durationMs = checkDuration(scope, raw.duration, `${at}.duration`);
  if (raw.duration === undefined) report(scope, `${at}.duration`, 'is required');
  return { ...routes, kind: 'delay', durationMs: durationMs ?? 0 };
}

export function compileLoopStep(
  scope: StepScope, _id: string, raw: Record<string, unknown>, at: string,
  base: { id: string; description?: string; assign?: Record<string, unknown>; prev: string[] },
): { step?: CompiledLoopStep; targets: Set<string> } {
  const targets = new Set<string>();
  const target = raw.target;
  if (typeof target !== 'string' || !scope.stepIds.has(target)) {
    report(scope, `${at}.target`, typeof target === 'string' ? `unknown step "${target}"` : 'is required: the step to jump back to');
  } else targets.add(target);
  const max = raw.max;
  if (!Number.isInteger(max) || (max as number) < 1 || (max as number) > 1_000_000) {
    report(scope, `${at}.max`, `must be an integer from 1 to 1000000 (got ${describeValue(max)})`);
  }
  const onExhausted = checkTargets(scope, raw.onExhausted, `${at}.onExhausted`).map((t) => t.id);
  onExhausted.forEach((t) => targets.add(t));
  return {
    step: { ...base, kind: 'loop', next: [], join: 'any', condition: [], target: String(target), max: Number(max), onExhausted },
    targets,
  };
}
