/**
 * Compiles a pipeline's people options: `participants` (per-request roles) and `redact`
 * (values masked from some roles). Issues name the exact path.
 */
import { describeValue, isDottedPath, parsePath } from '../conditions';
import { compileGuards } from './compile-kinds';
import { isRecord, report, type IssueSink } from './compile-values';
import type { CompiledRedact } from './types';

const ROLE = /^[a-z][a-z0-9_-]{0,49}$/;
/** Roles with a fixed global meaning: a pipeline cannot make them per-request. */
const RESERVED = new Set(['submit', 'read', 'operate', 'admin', 'delegate']);
const REDACT_KEYS = new Set(['path', 'from', 'except', 'when']);

/** Where a path may start: the payload, process variables, the request, or a step's output. */
function checkRoot(sink: IssueSink, at: string, path: string, stepIds: ReadonlySet<string>): void {
  const root = path.split('.')[0]!;
  if (root !== 'payload' && root !== 'vars' && root !== 'request' && !stepIds.has(root)) {
    report(sink, at, `must start with payload., vars., request. or a step id (got "${path}")`);
  }
}

export function compileParticipants(sink: IssueSink, def: unknown, stepIds: ReadonlySet<string>): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  if (def === undefined) return out;
  if (!isRecord(def)) {
    report(sink, 'participants', `must be an object of role → path (got ${describeValue(def)})`);
    return out;
  }
  for (const [role, path] of Object.entries(def)) {
    const at = `participants.${role}`;
    if (!ROLE.test(role)) report(sink, at, 'a role name is lower-case letters, digits, - and _ (at most 50)');
    else if (RESERVED.has(role)) report(sink, at, `"${role}" is a global role and cannot be a participant role`);
    if (!isDottedPath(path)) {
      report(sink, at, `must be a dotted path such as "payload.customer.id" (got ${describeValue(path)})`);
      continue;
    }
    checkRoot(sink, at, path, stepIds);
    out[role] = parsePath(path);
  }
  return out;
}

export function compileRedact(sink: IssueSink, def: unknown, stepIds: ReadonlySet<string>): CompiledRedact[] {
  if (def === undefined) return [];
  if (!Array.isArray(def)) {
    report(sink, 'redact', `must be a list of { path, from, except?, when? } (got ${describeValue(def)})`);
    return [];
  }
  const out: CompiledRedact[] = [];
  def.forEach((rule: unknown, i) => {
    const at = `redact.${i}`;
    if (!isRecord(rule)) return report(sink, at, `must be { path, from, when? } (got ${describeValue(rule)})`);
    for (const key of Object.keys(rule)) if (!REDACT_KEYS.has(key)) report(sink, `${at}.${key}`, `unknown key "${key}"`);
    if (!isDottedPath(rule.path)) return report(sink, `${at}.path`, `must be a dotted path (got ${describeValue(rule.path)})`);
    checkRoot(sink, `${at}.path`, rule.path, stepIds);
    const from = rule.from;
    if (!Array.isArray(from) || from.length === 0 || !from.every((r) => typeof r === 'string' && ROLE.test(r))) {
      return report(sink, `${at}.from`, `must be a non-empty list of role names (got ${describeValue(from)})`);
    }
    const except = rule.except ?? [];
    if (!Array.isArray(except) || !except.every((r) => typeof r === 'string' && ROLE.test(r))) {
      return report(sink, `${at}.except`, `must be a list of role names (got ${describeValue(except)})`);
    }
    const when = compileGuards({ ...sink, stepIds, modules: new Set() }, rule.when, `${at}.when`);
    out.push({ path: parsePath(rule.path), from: from as string[], except: except as string[], when });
  });
  return out;
}
