/**
 * Moving running requests to another version of their pipeline (role `operate`): one request
 * at once, or a pipeline's requests in the background, and a bulk migration's progress. The
 * work is `migration/`'s; these routes only read the call and shape the answer.
 */
import type Router from '@koa/router';
import type { ApiEngine } from './ports';
import { ClientError, ErrorCodes } from '../errors';
import { isId } from '../ids';
import { formatProblems } from '../migration/check';
import type { RequestStatus } from '../model';
import { diffVersions } from '../migration/diff';
import { MOVABLE_STATUSES } from '../migration/check';
import { parseFilter, parsePlan } from '../migration/plan';
import type { MigrationView } from '../migration/service';
import type { Principal } from './auth';
import { requireRole } from './auth';
import { readJson } from '../http/body';
import { fullRequestView } from './actions';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** `GET /api/migrations/:id`'s answer. */
export function migrationView(m: MigrationView) {
  return {
    id: m.id, pipeline: m.pipelineId, fromVersion: m.fromVersion, toVersion: m.toVersion, dryRun: m.dryRun, status: m.status,
    plan: m.plan, filter: m.filter, actor: m.actor,
    counts: { total: m.total, migrated: m.migrated, refused: m.refused, left: m.left },
    refusals: m.refusals, error: m.error,
    createdAt: iso(m.createdAt), updatedAt: iso(m.updatedAt), finishedAt: iso(m.finishedAt),
    links: { self: `/api/migrations/${m.id}` },
  };
}

const who = (ctx: { state: { principal?: unknown } }) => {
  const p = ctx.state.principal as Principal;
  return { actor: p.actor, via: p.via };
};

async function objectBody(ctx: Parameters<typeof readJson>[0]): Promise<Record<string, unknown>> {
  const body = await readJson(ctx);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ClientError(400, ErrorCodes.BAD_BODY, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** `?map=OLD:NEW,OLD2:NEW2` as a mapping. */
function mapParam(value: unknown): Record<string, string> {
  if (value === undefined || value === '') return {};
  if (typeof value !== 'string' || value.length > 4000) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'map is OLD:NEW pairs separated by commas');
  const out: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const [a, b, ...rest] = pair.split(':');
    if (!a || !b || rest.length > 0) throw new ClientError(400, ErrorCodes.BAD_PARAM, `map: "${pair.slice(0, 100)}" is not OLD:NEW`);
    out[a] = b;
  }
  return out;
}

/** `GET /api/pipelines/:id/versions` and `…/diff`: what the dashboard's pipeline page shows. */
function mountVersionRoutes(api: Router, engine: ApiEngine): void {
  const known = (id: string): string => {
    if (!engine.catalog.latest(id)) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${id.slice(0, 100)}"`);
    return id;
  };
  api.get('/pipelines/:id/versions', requireRole('read'), async (ctx) => {
    const id = known(ctx.params.id!);
    const counts = await engine.store.migrations.versionCounts(id);
    const current = engine.catalog.latest(id)!.version;
    const versions = await engine.store.listPipelineVersions(id);
    ctx.body = {
      items: versions.map((v) => {
        const requests: Partial<Record<RequestStatus, number>> = {};
        for (const c of counts) if (c.version === v.version) requests[c.status as RequestStatus] = c.n;
        const active = MOVABLE_STATUSES.reduce((sum, st) => sum + (requests[st] ?? 0), 0);
        return { version: v.version, hash: v.hash, createdAt: new Date(v.createdAt).toISOString(), current: v.version === current, active, requests };
      }),
      nextCursor: null,
    };
  });
  api.get('/pipelines/:id/diff', requireRole('read'), async (ctx) => {
    const id = known(ctx.params.id!);
    const version = async (name: 'from' | 'to'): Promise<number> => {
      const n = Number(ctx.query[name]);
      if (!Number.isInteger(n) || n < 1) throw new ClientError(400, ErrorCodes.BAD_PARAM, `${name} must be a version number`);
      if (!(await engine.migrations.version(id, n))) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `pipeline "${id}" has no version ${n}`);
      return n;
    };
    const [from, to] = [await version('from'), await version('to')];
    const mapping = mapParam(ctx.query.map);
    ctx.body = { pipeline: id, from, to, mapping, ...diffVersions((await engine.migrations.version(id, from))!, (await engine.migrations.version(id, to))!, mapping) };
  });
}

export function mountMigrationRoutes(api: Router, engine: ApiEngine): void {
  mountVersionRoutes(api, engine);
  api.post('/requests/:id/migrate', requireRole('operate'), async (ctx) => {
    const id = ctx.params.id!;
    if (!isId(id)) throw new ClientError(404, ErrorCodes.UNKNOWN_REQUEST, `unknown request "${id.slice(0, 64)}"`);
    const plan = parsePlan(await objectBody(ctx));
    const result = await engine.migrations.migrateRequest(id, plan, who(ctx));
    if (!result.moved) {
      const lines = formatProblems(id, result.problems);
      throw new ClientError(422, ErrorCodes.MIGRATION_REFUSED, `request ${id} cannot move to version ${plan.toVersion}:\n${lines.join('\n')}`, { problems: result.problems });
    }
    const found = await engine.getRequest(id);
    ctx.body = await fullRequestView(engine, found!, ctx.state.principal as Principal);
  });

  api.post('/pipelines/:id/migrations', requireRole('operate'), async (ctx) => {
    const pipelineId = ctx.params.id!;
    if (!engine.catalog.latest(pipelineId)) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${pipelineId.slice(0, 100)}"`);
    const body = await objectBody(ctx);
    const { fromVersion } = body;
    if (!Number.isInteger(fromVersion) || (fromVersion as number) < 1) throw new ClientError(400, ErrorCodes.BAD_BODY, '"fromVersion" must be a version number (1 or more)');
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new ClientError(400, ErrorCodes.BAD_BODY, '"dryRun" must be true or false');
    const m = await engine.migrations.start({
      pipelineId, fromVersion: fromVersion as number, plan: parsePlan(body.plan), filter: parseFilter(body.filter), dryRun: body.dryRun === true, who: who(ctx),
    });
    engine.kickMigrations();
    ctx.status = 202;
    ctx.set('location', `/api/migrations/${m.id}`);
    ctx.body = migrationView({ ...m, left: m.total, refusals: [] });
  });

  api.get('/migrations/:id', requireRole('operate'), async (ctx) => {
    const id = ctx.params.id!;
    const m = isId(id) ? await engine.migrations.view(id) : undefined;
    if (!m) throw new ClientError(404, ErrorCodes.UNKNOWN_MIGRATION, `unknown migration "${id.slice(0, 64)}"`);
    ctx.body = migrationView(m);
  });
}
