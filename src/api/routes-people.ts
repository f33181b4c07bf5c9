/**
 * People routes (issue 12 §2): `GET /api/actions`, the actions the caller may take now across
 * requests, and the scope of `GET /api/requests` for callers without the global `read` role.
 */
import { roleActor } from '../access/people';
import type { ApiEngine } from './ports';
import { ClientError, ErrorCodes } from '../errors';
import type { StepRunRecord } from '../model';
import { accessTo, redactorFor, type OfferedAction } from './actions';
import { stepView } from '../http/views';
import { holds, type Principal } from './auth';
import { encodeCursor, QueryReader } from './search-params';
import type { OpsMount } from './routes-ops';

/** The global roles any action of the loaded pipelines allows (what `admin` stands in for). */
function actionRoles(engine: ApiEngine): string[] {
  const roles = new Set<string>();
  for (const { pipeline } of engine.catalog.list()) {
    const declared = new Set(Object.keys(pipeline.participants ?? {}));
    for (const step of Object.values(pipeline.steps)) {
      if (step.kind !== 'action') continue;
      for (const a of Object.values(step.actions)) for (const r of a.allow) if (!declared.has(r)) roles.add(r);
    }
  }
  return [...roles];
}

/** The participant-table ids that stand for this caller: its actor id and `role:<r>` per global role. */
export function actorsOf(engine: ApiEngine, principal: Principal): string[] {
  const roles = principal.roles.has('admin') ? actionRoles(engine) : [...principal.roles];
  return [principal.actor, ...roles.map(roleActor)];
}

/**
 * Which requests `GET /api/requests` may list for this caller: all (undefined) with `read`,
 * else only those it takes part in or is offered an action on. `?participant=` narrows to
 * one actor's requests; without `read` only to the caller's own.
 */
export function requestScope(engine: ApiEngine, principal: Principal, participant: string | undefined): string[] | undefined {
  if (holds(principal, 'read')) return participant === undefined ? undefined : [participant];
  if (participant !== undefined && participant !== principal.actor) {
    throw new ClientError(403, ErrorCodes.FORBIDDEN, 'without the "read" role only your own requests can be listed (participant must be your actor id)');
  }
  return participant === undefined ? actorsOf(engine, principal) : [participant];
}

/** One action the caller may take now, as `GET /api/actions` lists it. */
export interface ActionItem {
  requestId: string;
  pipeline: string;
  stepId: string;
  code: string;
  label: string | null;
  fields: OfferedAction['fields'];
}

/**
 * Step runs from many requests (`GET /api/steps`) as this caller may see them: where a
 * pipeline redacts values from one of the caller's global roles, each run is masked with its
 * request's redactions; otherwise the views are as they are.
 */
export async function stepSearchViews(engine: ApiEngine, principal: Principal, runs: StepRunRecord[]): Promise<Array<ReturnType<typeof stepView>>> {
  const concerned = engine.catalog.list().some(({ pipeline }) => (pipeline.redact ?? []).some((r) => r.from.some((role) => principal.roles.has(role))));
  if (!concerned) return runs.map(stepView);
  const masks = new Map<string, (<T>(v: T) => T) | null>();
  for (const id of new Set(runs.map((r) => r.requestId))) {
    const found = await engine.getRequest(id);
    masks.set(id, found ? redactorFor(await accessTo(engine, found, principal), found.context).value : null);
  }
  return runs.map((r) => {
    const mask = masks.get(r.requestId);
    return mask ? mask(stepView(r)) : stepView(r);
  });
}

export function mountPeopleRoutes({ api, engine }: OpsMount): void {
  api.get('/actions', async (ctx) => {
    const principal = ctx.state.principal as Principal;
    const q = new QueryReader(ctx.query, ['pipeline', 'limit', 'cursor']);
    // Pages go over the requests that offer the caller an action (the `offered` rows written
    // with each commit); `limit` counts requests, each with its actions, checked again now.
    const page = await engine.store.searchRequests({
      actors: actorsOf(engine, principal), offered: true, pipeline: q.text('pipeline', 100), limit: q.limit(), after: q.cursor(),
    });
    const items: ActionItem[] = [];
    for (const r of page.items) {
      const found = await engine.getRequest(r.id);
      if (!found) continue;
      const access = await accessTo(engine, found, principal);
      for (const a of access.offered) items.push({ requestId: r.id, pipeline: r.pipelineId, stepId: a.stepId, code: a.code, label: a.label, fields: a.fields });
    }
    ctx.body = { items, nextCursor: page.next ? encodeCursor(page.next) : null };
  });
}
