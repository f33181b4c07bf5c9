/**
 * The operations routes: search over requests and the step log (role `read`). `createApp`
 * mounts them with {@link mountOpsRoutes}.
 */
import type Router from '@koa/router';
import type { Engine } from '../engine';
import { REQUEST_STATUSES, STEP_RUN_STATUSES, type RequestRecord } from '../model';
import { requireRole, type KeyRing } from './auth';
import { encodeCursor, QueryReader } from './search-params';
import { stepView } from './views';

/** The routers `createApp` builds: the open one, and `/api` behind `authMiddleware`. */
export interface OpsMount {
  router: Router;
  api: Router;
  engine: Engine;
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

export const REQUEST_SEARCH_PARAMS = ['pipeline', 'status', 'businessKey', 'test', 'since', 'until', 'limit', 'cursor'] as const;
export const STEP_SEARCH_PARAMS = ['pipeline', 'step', 'status', 'since', 'until', 'limit', 'cursor'] as const;

/** Registers `GET /api/requests` and `GET /api/steps` on the `/api` router. */
export function mountSearchRoutes({ api, engine }: OpsMount): void {
  api.get('/requests', requireRole('read'), async (ctx) => {
    const q = new QueryReader(ctx.query, REQUEST_SEARCH_PARAMS);
    const found = await engine.store.searchRequests({
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
    ctx.body = { items: found.items.map(stepView), nextCursor: found.next ? encodeCursor(found.next) : null };
  });
}

/** Everything operations adds to the app. */
export function mountOpsRoutes(m: OpsMount): void {
  mountSearchRoutes(m);
}
