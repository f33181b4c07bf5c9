/**
 * User actions on waiting requests (seed 003's role actions, seed 000's admin confirmation):
 * which actions a caller may take now, and taking one. Every attempt is audited, refused or not.
 */
import type { Engine } from '../engine';
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import type { RequestRecord, StepRunRecord } from '../model';
import type { CompiledAction, CompiledActionStep, CompiledPipeline } from '../pipeline/types';
import { anyHolds } from '../supervisor/decide';
import type { Principal } from './auth';
import { requestView } from './views';

export interface OfferedAction {
  stepId: string;
  runId: string;
  code: string;
  label: string | null;
  fields: Array<{ name: string; required: boolean; label: string | null }>;
}

/** May this caller take this action? `admin` may take any. */
export function mayTake(principal: Principal, action: CompiledAction): boolean {
  return principal.roles.has('admin') || action.allow.some((r) => principal.roles.has(r));
}

function openActionRuns(pipeline: CompiledPipeline, runs: StepRunRecord[]): Array<{ run: StepRunRecord; step: CompiledActionStep }> {
  const out: Array<{ run: StepRunRecord; step: CompiledActionStep }> = [];
  for (const run of runs) {
    const step = pipeline.steps[run.stepId];
    if (run.status === 'waiting' && step?.kind === 'action') out.push({ run, step });
  }
  return out;
}

/** The actions `principal` may take on this request now (role and `visible` checked). */
export function offeredActions(pipeline: CompiledPipeline, runs: StepRunRecord[], context: Record<string, unknown>, principal: Principal): OfferedAction[] {
  const offered: OfferedAction[] = [];
  for (const { run, step } of openActionRuns(pipeline, runs)) {
    for (const a of Object.values(step.actions)) {
      if (!mayTake(principal, a) || (a.visible.length > 0 && !anyHolds(a.visible, context))) continue;
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

/** Takes an action; throws 403/409/422 (audited) when it may not be taken. */
export async function takeAction(engine: Engine, input: TakeActionInput): Promise<void> {
  const { request, principal, code } = input;
  const audit = (outcome: string, details: unknown): Promise<void> =>
    engine.store.insertAudit({ id: newId(), requestId: request.id, actor: principal.name, action: `action:${code}`, outcome, details, createdAt: Date.now() });
  const pipeline = await engine.catalog.get(request.pipelineId, request.version);
  const candidates = openActionRuns(pipeline, input.runs).filter(({ step }) => step.actions[code] && (!input.stepId || step.id === input.stepId));
  const refuse = async (status: number, outcome: string, message: string, details?: unknown): Promise<never> => {
    await audit(outcome, { message, ...(details ? { details } : {}) });
    engine.logger.warn('action refused', { requestId: request.id, code, actor: principal.name, outcome });
    throw new ClientError(status, status === 403 ? ErrorCodes.FORBIDDEN : status === 409 ? ErrorCodes.ACTION_NOT_OFFERED : ErrorCodes.BAD_BODY, message, details);
  };
  if (candidates.length === 0) return refuse(409, 'not_offered', `action "${code}" is not offered by request ${request.id} now (status ${request.status})`);
  const allowed = candidates.filter(({ step }) => mayTake(principal, step.actions[code]!));
  if (allowed.length === 0) return refuse(403, 'forbidden', `action "${code}" needs one of the roles ${JSON.stringify(candidates[0]!.step.actions[code]!.allow)}`);
  const visible = allowed.filter(({ step }) => {
    const a = step.actions[code]!;
    return a.visible.length === 0 || anyHolds(a.visible, input.context);
  });
  if (visible.length === 0) return refuse(409, 'not_offered', `action "${code}" is not available for this request now`);
  const { run, step } = visible[0]!;
  const action = step.actions[code]!;
  let fields: Record<string, unknown>;
  try {
    fields = collectFields(action, input.data, principal.name);
  } catch (err) {
    return refuse(422, 'invalid', (err as Error).message, (err as ClientError).details);
  }
  const now = Date.now();
  const output = { action: code, label: action.label ?? null, by: principal.name, data: fields, at: new Date(now).toISOString() };
  const result = await engine.supervisor.handleResult({
    requestId: request.id, runId: run.id, stepId: step.id, attempt: run.attempt, finishedAt: now, durationMs: now - run.startedAt, output, via: 'action',
  });
  if (result !== 'committed') return refuse(409, 'conflict', `action "${code}" could not be applied: the request moved on meanwhile`);
  await audit('accepted', { stepId: step.id, runId: run.id, data: fields });
  engine.logger.info('action taken', { requestId: request.id, stepId: step.id, code, actor: principal.name });
}

/** A request as `GET /api/requests/:id` shows it: with the actions the caller may take now. */
export async function fullRequestView(engine: Engine, found: Awaited<ReturnType<Engine['getRequest']>> & object, principal: Principal) {
  const pipeline = await engine.catalog.get(found.request.pipelineId, found.request.version);
  return { ...requestView(found.request, found.runs, found.context), actions: offeredActions(pipeline, found.runs, found.context, principal) };
}
