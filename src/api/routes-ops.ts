/**
 * The operations routes: search over requests and the step log (role `read`). `createApp`
 * mounts them with {@link mountOpsRoutes}.
 */
import type Router from '@koa/router';
import { mountDashboardRoutes } from '../dashboard/serve';
import type { ApiEngine } from './ports';
import { REQUEST_STATUSES, STEP_RUN_STATUSES, type RequestRecord } from '../model';
import { checkReadiness, metricsFor } from '../metrics/metrics';
import { authMiddleware, requireRole, type KeyRing, type Principal } from './auth';
import { mountPeopleRoutes, requestScope, stepSearchViews } from './routes-people';
import { buildOpenApi } from './openapi';
import { encodeCursor, QueryReader } from './search-params';
import { mountSourceRoutes } from './routes-sources';

/** The routers `createApp` builds: the open one, and `/api` behind `authMiddleware`. */
export interface OpsMount {
  router: Router;
  api: Router;
  engine: ApiEngine;
  keys: KeyRing;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A request in a search result: no payload or context (read `GET /api/requests/:id` for those). */
export function requestSummaryView(r: RequestRecord) {
  return {
    id: r.id,
    pipeline: r.pipelineId,
    version: r.version,
    status: r.status,
    businessKey: r.businessKey,
    mode: r.mode,
    test: r.test,
    stepCount: r.stepCount,
    error: r.error,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    finishedAt: iso(r.finishedAt),
  };
}

export const REQUEST_SEARCH_PARAMS = ['pipeline', 'status', 'businessKey', 'test', 'participant', 'since', 'until', 'limit', 'cursor'] as const;
export const STEP_SEARCH_PARAMS = ['pipeline', 'step', 'status', 'since', 'until', 'limit', 'cursor'] as const;

/** Registers `GET /api/requests` and `GET /api/steps` on the `/api` router. */
export function mountSearchRoutes({ api, engine }: OpsMount): void {
  // Scoped rather than role-guarded: without `read`, only the caller's own requests.
  api.get('/requests', async (ctx) => {
    const q = new QueryReader(ctx.query, REQUEST_SEARCH_PARAMS);
    const found = await engine.store.searchRequests({
      actors: requestScope(engine, ctx.state.principal as Principal, q.text('participant', 100)),
      pipeline: q.text('pipeline', 100),
      status: q.oneOf('status', REQUEST_STATUSES),
      businessKey: q.text('businessKey', 255),
      test: q.flag('test'),
      since: q.time('since'),
      until: q.time('until'),
      limit: q.limit(),
      after: q.cursor(),
    });
    ctx.body = { items: found.items.map(requestSummaryView), nextCursor: found.next ? encodeCursor(found.next) : null };
  });

  api.get('/steps', requireRole('read'), async (ctx) => {
    const q = new QueryReader(ctx.query, STEP_SEARCH_PARAMS);
    const found = await engine.store.searchSteps({
      pipeline: q.text('pipeline', 100),
      step: q.text('step', 100),
      status: q.oneOf('status', STEP_RUN_STATUSES),
      since: q.time('since'),
      until: q.time('until'),
      limit: q.limit(),
      after: q.cursor(),
    });
    ctx.body = { items: await stepSearchViews(engine, ctx.state.principal as Principal, found.items), nextCursor: found.next ? encodeCursor(found.next) : null };
  });
}

/**
 * `GET /metrics` (Prometheus text; needs a key with `read`, as DESIGN.md allows only
 * `/healthz` and the login page without one) and `GET /readyz` (open: load balancers and
 * orchestrators probe it without credentials; it names which dependency failed, no more).
 */
export function mountHealthRoutes({ router, engine, keys }: OpsMount): void {
  const metrics = metricsFor(engine);
  router.get('/metrics', authMiddleware(keys), requireRole('read'), async (ctx) => {
    ctx.body = await metrics.render();
    ctx.type = metrics.contentType;
  });

  router.get('/readyz', async (ctx) => {
    const r = await checkReadiness(engine, 2000, (part, err) => engine.logger.warn('readiness check failed', { part, error: err.message }));
    ctx.status = r.ready ? 200 : 503;
    ctx.body = { status: r.ready ? 'ready' : 'unready', checks: r.checks };
  });
}

/** `GET /openapi.json`: open, so API tools can read it before they have a key. */
export function mountOpenApiRoute({ router }: OpsMount): void {
  const doc = JSON.stringify(buildOpenApi());
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = doc;
  });
}

/** Everything operations adds to the app. */
export function mountOpsRoutes(m: OpsMount): void {
  mountSearchRoutes(m);
  mountPeopleRoutes(m);
  mountHealthRoutes(m);
  mountOpenApiRoute(m);
  mountSourceRoutes(m.api, m.engine);
  mountDashboardRoutes(m.router);
}
