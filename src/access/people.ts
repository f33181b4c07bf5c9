/**
 * Who an actor is to one request (issue 12 §2), and what it may see of it. Pure: no I/O.
 *
 * A pipeline's `participants` map per-request roles to paths in the request context. They are
 * relations, evaluated on the context at the moment of the call, so reassigning the executor
 * moves the right at once. A role named there is never taken from a key's or token's roles:
 * the effective roles of an actor on a request are its global roles without those names, plus
 * the participant roles it holds on this request.
 */
import { anyHolds, getPath } from '../conditions';
import { requestInfo, type ParticipantRow, type RequestRecord } from '../model';
import type { CompiledAction, CompiledPipeline } from '../pipeline/types';

export type { ParticipantRow };

/** What is shown in place of a redacted value. */
export const REDACTED = '[REDACTED]';
/** The longest actor id stored. */
const MAX_ID = 100;

/** Actor ids at a participant path: an id, an object with an `id`, or an array of those. */
export function idsAt(value: unknown): string[] {
  const out: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v !== '' && v.length <= MAX_ID) out.push(v);
    else if (typeof v === 'number' && Number.isFinite(v)) out.push(String(v));
    else if (v && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, 'id')) add((v as { id: unknown }).id);
  };
  if (Array.isArray(value)) value.forEach(add);
  else add(value);
  return out;
}

/** The request's participants now, sorted and without repeats. */
export function participantsOf(pipeline: CompiledPipeline, context: Record<string, unknown>): ParticipantRow[] {
  const rows = new Map<string, ParticipantRow>();
  for (const [role, path] of Object.entries(pipeline.participants ?? {})) {
    for (const actorId of idsAt(getPath(context, path))) rows.set(`${role}\u0000${actorId}`, { role, actorId });
  }
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

export function sameParticipants(a: readonly ParticipantRow[], b: readonly ParticipantRow[]): boolean {
  return a.length === b.length && a.every((r, i) => r.role === b[i]!.role && r.actorId === b[i]!.actorId);
}

/** The participant role names a pipeline declares. */
export const participantRoleNames = (pipeline: CompiledPipeline): Set<string> => new Set(Object.keys(pipeline.participants ?? {}));

/**
 * The roles `actor` has on this request: its global roles, minus any the pipeline declares as
 * participant roles, plus the participant roles it holds here now.
 */
export function effectiveRoles(pipeline: CompiledPipeline, context: Record<string, unknown>, actor: string, globalRoles: ReadonlySet<string>): Set<string> {
  const declared = participantRoleNames(pipeline);
  const roles = new Set([...globalRoles].filter((r) => !declared.has(r)));
  for (const [role, path] of Object.entries(pipeline.participants ?? {})) {
    if (idsAt(getPath(context, path)).includes(actor)) roles.add(role);
  }
  return roles;
}

/** Whether any participant role of this request is the actor's. */
export function isParticipant(pipeline: CompiledPipeline, context: Record<string, unknown>, actor: string): boolean {
  return Object.values(pipeline.participants ?? {}).some((path) => idsAt(getPath(context, path)).includes(actor));
}

/**
 * May these roles take this action? `admin` may take any action that a global role may take,
 * but never one reserved to participants: those belong to the people of this request.
 */
export function allowsAction(action: CompiledAction, roles: ReadonlySet<string>, participantRoles: ReadonlySet<string>): boolean {
  if (action.allow.some((r) => roles.has(r))) return true;
  return roles.has('admin') && action.allow.some((r) => !participantRoles.has(r));
}

/** The values the actor may not see here: each active rule's value (leaf strings and numbers). */
export function redactedValues(pipeline: CompiledPipeline, context: Record<string, unknown>, roles: ReadonlySet<string>): { paths: string[][]; values: Set<string | number> } {
  const paths: string[][] = [];
  const values = new Set<string | number>();
  for (const rule of pipeline.redact ?? []) {
    if (!rule.from.some((r) => roles.has(r)) || rule.except.some((r) => roles.has(r))) continue;
    if (rule.when.length > 0 && !anyHolds(rule.when, context)) continue;
    paths.push(rule.path);
    collectLeaves(getPath(context, rule.path), values);
  }
  return { paths, values };
}

function collectLeaves(v: unknown, into: Set<string | number>): void {
  // Very short values ("1", "ok") would mask unrelated text; they are masked by path only.
  if (typeof v === 'string' && v.length >= 4) into.add(v);
  else if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) >= 1000) into.add(v);
  else if (Array.isArray(v)) v.forEach((x) => collectLeaves(x, into));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => collectLeaves(x, into));
}

/** A copy of `context` with each path replaced by {@link REDACTED}. */
export function maskPaths(context: Record<string, unknown>, paths: readonly string[][]): Record<string, unknown> {
  let out = context;
  for (const path of paths) {
    if (getPath(out, path) === undefined) continue;
    out = setCopy(out, path, 0) as Record<string, unknown>;
  }
  return out;
}

function setCopy(node: unknown, path: readonly string[], i: number): unknown {
  if (i === path.length) return REDACTED;
  const key = path[i]!;
  if (Array.isArray(node)) {
    const copy = node.slice();
    copy[Number(key)] = setCopy(node[Number(key)], path, i + 1);
    return copy;
  }
  const obj = node as Record<string, unknown>;
  return { ...obj, [key]: setCopy(obj[key], path, i + 1) };
}

/**
 * A copy of `value` in which every occurrence of a redacted value is masked: whole leaves
 * equal to it, and inside longer strings (a rendered e-mail that quotes the phone).
 */
export function maskValues<T>(value: T, values: ReadonlySet<string | number>): T {
  if (values.size === 0) return value;
  const strings = [...values].filter((v): v is string => typeof v === 'string').sort((a, b) => b.length - a.length);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (values.has(v)) return REDACTED;
      let s = v;
      for (const secret of strings) if (s.includes(secret)) s = s.split(secret).join(REDACTED);
      return s;
    }
    if (typeof v === 'number') return values.has(v) ? REDACTED : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** The actor id under which rows for a global role are stored: `role:listing-admin`. */
export const roleActor = (role: string): string => `role:${role}`;

/** The role of the rows that say "an action is offered to this actor (or `role:<r>`) now". */
export const OFFERED = 'offered';

/**
 * The rows `request_participants` holds for a request, sorted: its participants; and, with
 * role `offered`, each actor (participant role) or `role:<r>` (global role) that may take an
 * action at one of the open action steps now. The search scopes an actor without `read` to
 * these rows, and `GET /api/actions` reads the `offered` ones.
 */
export function accessRows(pipeline: CompiledPipeline, context: Record<string, unknown>, openSteps: Iterable<string>): ParticipantRow[] {
  const people = participantsOf(pipeline, context);
  const declared = participantRoleNames(pipeline);
  const offered = new Set<string>();
  for (const stepId of openSteps) {
    const step = pipeline.steps[stepId];
    if (step?.kind !== 'action') continue;
    for (const a of Object.values(step.actions)) {
      if (a.visible.length > 0 && !anyHolds(a.visible, context)) continue;
      for (const r of a.allow) {
        if (!declared.has(r)) offered.add(roleActor(r));
        else for (const p of people) if (p.role === r) offered.add(p.actorId);
      }
    }
  }
  const rows = [...people, ...[...offered].map((actorId) => ({ role: OFFERED, actorId }))];
  return rows.sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : a.actorId < b.actorId ? -1 : a.actorId > b.actorId ? 1 : 0));
}

/**
 * The rows a request has as it is submitted, from its payload and submitter alone (no step
 * has run, no action is open): stored with the request, so its participants find it at once.
 */
export function submittedAccessRows(pipeline: CompiledPipeline, record: RequestRecord): ParticipantRow[] {
  if (Object.keys(pipeline.participants ?? {}).length === 0) return [];
  return participantsOf(pipeline, { payload: record.payload, request: requestInfo(record), vars: {} });
}

const withAccessRows = new WeakMap<CompiledPipeline, boolean>();

/**
 * Whether a pipeline ever has access rows (participants or action steps). Asked on every
 * commit; a compiled pipeline never changes, so it is worked out once per pipeline (it was
 * 1.4% of the CPU of the embedded benchmark: two arrays of its steps per step).
 */
export function hasAccessRows(pipeline: CompiledPipeline): boolean {
  let has = withAccessRows.get(pipeline);
  if (has === undefined) {
    has = Object.keys(pipeline.participants ?? {}).length > 0 || Object.values(pipeline.steps).some((s) => s.kind === 'action');
    withAccessRows.set(pipeline, has);
  }
  return has;
}
