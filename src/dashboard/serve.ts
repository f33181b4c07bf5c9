/**
 * Serves the dashboard: `GET /` (the page, which asks for an API key), its own files under
 * `/dashboard/`, and the front-end libraries it uses under `/dashboard/vendor/`, read from
 * node_modules (no CDN). Only the listed files are served. The page itself holds no data: it
 * calls the API with the key the user typed, so serving it needs no key.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { ClientError, ErrorCodes } from '../errors';

const OWN: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'application/javascript; charset=utf-8',
  'tasks.js': 'application/javascript; charset=utf-8',
  'sources.js': 'application/javascript; charset=utf-8',
  'versions.js': 'application/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'live.js': 'application/javascript; charset=utf-8',
  'roles.js': 'application/javascript; charset=utf-8',
  'overview.js': 'application/javascript; charset=utf-8',
};

const JS = 'application/javascript; charset=utf-8';
/** Front-end libraries, read from node_modules: mermaid draws graphs, uPlot the overview's charts. */
const VENDOR: Record<string, { file: () => string; type: string }> = {
  'mermaid.min.js': { file: () => require.resolve('mermaid/dist/mermaid.min.js'), type: JS },
  'uPlot.iife.min.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: JS },
  'uPlot.min.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/**
 * What the page may load: its own files only. mermaid writes `<style>` into the SVG it draws,
 * hence inline styles; nothing else is inline, and no script comes from anywhere else.
 */
export const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const cache = new Map<string, Buffer>();
function read(file: string): Buffer {
  let b = cache.get(file);
  if (!b) cache.set(file, (b = readFileSync(file)));
  return b;
}

function send(ctx: Context, file: string, type: string, maxAge: number): void {
  ctx.set('content-security-policy', DASHBOARD_CSP);
  ctx.set('x-content-type-options', 'nosniff');
  ctx.set('referrer-policy', 'no-referrer');
  ctx.set('cache-control', maxAge > 0 ? `public, max-age=${maxAge}` : 'no-cache');
  ctx.type = type;
  ctx.body = read(file);
}

/** Registers `/`, `/dashboard/:file` and `/dashboard/vendor/:file` on the open router. */
export function mountDashboardRoutes(router: Router): void {
  router.get('/', (ctx) => send(ctx, path.join(__dirname, 'index.html'), OWN['index.html']!, 0));
  router.get('/dashboard/:file', (ctx) => {
    const name = ctx.params.file!;
    const type = Object.hasOwn(OWN, name) ? OWN[name] : undefined;
    if (!type) throw new ClientError(404, ErrorCodes.NOT_FOUND, `no dashboard file "${name.slice(0, 100)}"`);
    send(ctx, path.join(__dirname, name), type, 0);
  });
  router.get('/dashboard/vendor/:file', (ctx) => {
    const name = ctx.params.file!;
    const vendor = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!vendor) throw new ClientError(404, ErrorCodes.NOT_FOUND, `no vendor file "${name.slice(0, 100)}"`);
    send(ctx, vendor.file(), vendor.type, 86_400);
  });
}
