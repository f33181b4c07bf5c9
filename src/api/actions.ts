/**
 * User actions on waiting requests (seed 003's role actions, seed 000's admin confirmation):
 * which actions a caller may take now, and taking one. Every attempt is audited, refused or not.
 */
import { allowsAction, effectiveRoles, isParticipant, maskPaths, maskValues, participantRoleNames, redactedValues } from '../access/people';
import type { ApiEngine } from './ports';
import { ClientError, ErrorCodes, type ErrorCode } from '../errors';
import { newId } from '../ids';
import type { RequestRecord, StepRunRecord } from '../model';
import type { CompiledAction, CompiledActionStep, CompiledPipeline } from '../pipeline/types';
import { anyHolds } from '../supervisor/decide';
import { resultMessage } from '../supervisor/messages';
import { holds, type Principal } from './auth';
import { requestView, stepView } from '../http/views';

export interface OfferedAction {
  stepId: string;
  runId: string;
  code: string;
  label: string | null;
  fields: Array<{ name: string; required: boolean; label: string | null }>;
}

/** What one actor is to one request now: its roles there, and whether it may see it. */
export interface RequestAccess {
  pipeline: CompiledPipeline;
  /** Global roles (without participant role names) plus the participant roles held here. */
  roles: Set<string>;
  /** The participant role names the pipeline declares. */
  participantRoles: Set<string>;
  offered: OfferedAction[];
  /** Global `read`, a participant here, or offered an action now. */
  canRead: boolean;
}

/** Works out what `principal` is to this request now (participants evaluated on its context). */
export async function accessTo(engine: ApiEngine, found: { request: RequestRecord; runs: StepRunRecord[]; context: Record<string, unknown> }, principal: Principal): Promise<RequestAccess> {
  const pipeline = await engine.catalog.get(found.request.pipelineId, found.request.version);
  const roles = effectiveRoles(pipeline, found.context, principal.actor, principal.roles);
  const participantRoles = participantRoleNames(pipeline);
  const offered = offeredActions(pipeline, found.runs, found.context, roles, participantRoles);
  const canRead = holds(principal, 'read') || isParticipant(pipeline, found.context, principal.actor) || offered.length > 0;
  return { pipeline, roles, participantRoles, offered, canRead };
}

/** The same 404 for a request that does not exist and for one the actor may not see. */
export const unknownRequest = (id: string): ClientError => new ClientError(404, ErrorCodes.UNKNOWN_REQUEST, `unknown request "${id.slice(0, 64)}"`);

/** The views of this request for `access`: values redacted from its roles are masked. */
export function redactorFor(access: RequestAccess, context: Record<string, unknown>) {
  const { paths, values } = redactedValues(access.pipeline, context, access.roles);
  return {
    context: (): Record<string, unknown> => maskValues(maskPaths(context, paths), values),
    value: <T>(v: T): T => maskValues(v, values),
  };
}

function openActionRuns(pipeline: CompiledPipeline, runs: StepRunRecord[]): Array<{ run: StepRunRecord; step: CompiledActionStep }> {
  const out: Array<{ run: StepRunRecord; step: CompiledActionStep }> = [];
  for (const run of runs) {
    const step = pipeline.steps[run.stepId];
    if (run.status === 'waiting' && step?.kind === 'action') out.push({ run, step });
  }
  return out;
}

/** The actions these roles may take on this request now (role and `visible` checked). */
export function offeredActions(pipeline: CompiledPipeline, runs: StepRunRecord[], context: Record<string, unknown>, roles: ReadonlySet<string>, participantRoles: ReadonlySet<string>): OfferedAction[] {
  const offered: OfferedAction[] = [];
  for (const { run, step } of openActionRuns(pipeline, runs)) {
    for (const a of Object.values(step.actions)) {
      if (!allowsAction(a, roles, participantRoles) || (a.visible.length > 0 && !anyHolds(a.visible, context))) continue;
      offered.push({
        stepId: step.id, runId: run.id, code: a.code, label: a.label ?? null,
        fields: Object.entries(a.fields).filter(([, f]) => f.value === undefined).map(([name, f]) => ({ name, required: f.required, label: f.label ?? null })),
      });
    }
  }
  return offered;
}

/** Builds the action's data: collected fields, constants, `_CURRENT_USER_` and `_NULL_`. */
export function collectFields(action: CompiledAction, data: Record<string, unknown>, actor: string): Record<string, unknown> {
  const unknown = Object.keys(data).filter((k) => !(k in action.fields) || action.fields[k]!.value !== undefined);
  if (unknown.length > 0) throw new ClientError(422, ErrorCodes.BAD_BODY, `action "${action.code}" does not take ${unknown.map((k) => `"${k}"`).join(', ')}`, { unknown });
  const out: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const [name, f] of Object.entries(action.fields)) {
    if (f.value !== undefined) out[name] = f.value === '_CURRENT_USER_' ? actor : f.value === '_NULL_' ? null : f.value;
    else if (data[name] === undefined || data[name] === null || data[name] === '') {
      if (f.required) missing.push(name);
    } else out[name] = data[name];
  }
  if (missing.length > 0) throw new ClientError(422, ErrorCodes.BAD_BODY, `action "${action.code}" needs ${missing.map((m) => `"${m}"`).join(', ')}`, { missing });
  return out;
}

export interface TakeActionInput {
  request: RequestRecord;
  runs: StepRunRecord[];
  context: Record<string, unknown>;
  code: string;
  stepId?: string;
  data: Record<string, unknown>;
  principal: Principal;
}

const REFUSED_CODE: Record<number, ErrorCode> = { 403: ErrorCodes.FORBIDDEN, 404: ErrorCodes.UNKNOWN_REQUEST, 409: ErrorCodes.ACTION_NOT_OFFERED, 422: ErrorCodes.BAD_BODY };

/**
 * Takes an action; throws 403/404/409/422 (audited) when it may not be taken. An actor that
 * may not even see the request gets 404, as for a request that does not exist.
 */
export async function takeAction(engine: ApiEngine, input: TakeActionInput): Promise<void> {
  const { request, principal, code } = input;
  const audit = (outcome: string, details: unknown): Promise<void> => engine.store.insertAudit({
    id: newId(), requestId: request.id, actor: principal.actor, via: principal.via, action: `action:${code}`, outcome, details, createdAt: Date.now(),
  });
  const access = await accessTo(engine, input, principal);
  const candidates = openActionRuns(access.pipeline, input.runs).filter(({ step }) => step.actions[code] && (!input.stepId || step.id === input.stepId));
  const refuse = async (status: number, outcome: string, message: string, details?: unknown): Promise<never> => {
    await audit(outcome, { message, ...(details ? { details } : {}) });
    engine.logger.warn('action refused', { requestId: request.id, code, actor: principal.actor, via: principal.via, outcome });
    if (status === 404) throw unknownRequest(request.id);
    throw new ClientError(status, REFUSED_CODE[status]!, message, details);
  };
  if (!access.canRead) return refuse(404, 'forbidden', `actor "${principal.actor}" may not see request ${request.id}`);
  if (candidates.length === 0) return refuse(409, 'not_offered', `action "${code}" is not offered by request ${request.id} now (status ${request.status})`);
  const allowed = candidates.filter(({ step }) => allowsAction(step.actions[code]!, access.roles, access.participantRoles));
  if (allowed.length === 0) {
    const allow = candidates[0]!.step.actions[code]!.allow;
    const mine = allow.filter((r) => access.participantRoles.has(r));
    return refuse(403, 'forbidden', mine.length > 0
      ? `action "${code}" may be taken only by this request's ${mine.join(' or ')}${allow.length > mine.length ? ` or the roles ${JSON.stringify(allow.filter((r) => !mine.includes(r)))}` : ''}`
      : `action "${code}" needs one of the roles ${JSON.stringify(allow)}`);
  }
  const visible = allowed.filter(({ step }) => {
    const a = step.actions[code]!;
    return a.visible.length === 0 || anyHolds(a.visible, input.context);
  });
  if (visible.length === 0) return refuse(409, 'not_offered', `action "${code}" is not available for this request now`);
  const { run, step } = visible[0]!;
  const action = step.actions[code]!;
  let fields: Record<string, unknown>;
  try {
    fields = collectFields(action, input.data, principal.actor);
  } catch (err) {
    return refuse(422, 'invalid', (err as Error).message, (err as ClientError).details);
  }
  const now = Date.now();
  const output = { action: code, label: action.label ?? null, by: principal.actor, ...(principal.actorName ? { byName: principal.actorName } : {}), data: fields, at: new Date(now).toISOString() };
  const result = await engine.ask(resultMessage({
    requestId: request.id, runId: run.id, stepId: step.id, attempt: run.attempt, finishedAt: now, durationMs: now - run.startedAt, output, via: 'action',
  }));
  if (result !== 'committed') return refuse(409, 'conflict', `action "${code}" could not be applied: the request moved on meanwhile`);
  await audit('accepted', { stepId: step.id, runId: run.id, data: fields });
  engine.logger.info('action taken', { requestId: request.id, stepId: step.id, code, actor: principal.actor, via: principal.via });
}

type Found = Awaited<ReturnType<ApiEngine['getRequest']>> & object;

/**
 * A request as `GET /api/requests/:id` shows it: with the actions the caller may take now,
 * and the values redacted from it masked. 404 when the caller may not see it, unless it is
 * `involved`: it just submitted the request or acted on it, and sees the outcome.
 */
export async function fullRequestView(engine: ApiEngine, found: Found, principal: Principal, opts: { involved?: boolean } = {}) {
  const access = await accessTo(engine, found, principal);
  if (!access.canRead && !opts.involved) throw unknownRequest(found.request.id);
  const mask = redactorFor(access, found.context);
  return { ...mask.value(requestView(found.request, found.runs, mask.context())), actions: access.offered };
}

/** The step log of a request as the caller may see it (404 when it may not see the request). */
export async function stepsView(engine: ApiEngine, found: Found, principal: Principal) {
  const access = await accessTo(engine, found, principal);
  if (!access.canRead) throw unknownRequest(found.request.id);
  const mask = redactorFor(access, found.context);
  return found.runs.map((r) => mask.value(stepView(r)));
}
