/**
 * The dashboard's own routes on the authenticated `/api` router:
 *
 * - `GET /api/me` (any valid key): who the caller is and what its roles allow, so the
 *   dashboard shows only the buttons the caller may use;
 * - `GET /api/overview` (`read`): counts by status per pipeline, throughput and error rate
 *   over the last hour, the slowest steps;
 * - `GET /api/live` (`read`): the same overview as Server-Sent Events, sent when it changes.
 */
import type Router from '@koa/router';
import type { ApiEngine } from './ports';
import { requireRole, ROLES, type Principal } from './auth';
import { LiveHub } from './live';
import { overviewView } from './overview-view';

/** What a principal's roles allow (admin implies all; operate implies read). */
export function allowedOf(p: Principal): Record<(typeof ROLES)[number], boolean> {
  const has = (r: string): boolean => p.roles.has('admin') || p.roles.has(r);
  return { submit: has('submit'), read: has('read') || has('operate'), operate: has('operate'), admin: has('admin'), delegate: has('delegate') };
}

/** Mounts `/me`, `/overview` and `/live` (streams end when the engine stops accepting work). */
export function mountOverviewRoutes(api: Router, engine: ApiEngine): void {
  const hub = new LiveHub(engine);
  api.get('/me', (ctx) => {
    const p = ctx.state.principal as Principal;
    ctx.body = { name: p.name, actor: p.actor, actorName: p.actorName, via: p.via, roles: [...p.roles].sort(), may: allowedOf(p) };
  });
  api.get('/overview', requireRole('read'), async (ctx) => {
    ctx.body = overviewView(engine, await engine.store.overview(Date.now()));
  });
  api.get('/live', requireRole('read'), async (ctx) => {
    await hub.attach(ctx);
  });
}
