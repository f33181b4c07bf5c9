import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import type { ApiEngine } from './ports';
import { ClientError, ErrorCodes } from '../errors';
import { isId } from '../ids';
import { pipelineGraphWithMermaid } from '../pipeline/graph';
import { checkOutput } from '../transports/run-module';
import { authMiddleware, requireRole, type KeyRing } from './auth';
import { verifyCallback } from '../http/callback-token';
import { readJson } from '../http/body';
import { errorMiddleware } from '../http/errors';
import { submitRateLimit } from './rate-limit';
import { mountOpsRoutes } from './routes-ops';
import { fullRequestView, stepsView } from './actions';
import type { Principal } from './auth';
import { mountWorkflowRoutes } from './routes-workflow';
import { callbackUrlOf, mountIntakeRoutes } from './routes-intake';
import { mountOverviewRoutes } from './routes-overview';
import { mountMigrationRoutes } from './routes-migrations';
import { acceptedView } from '../http/views';

/** The longest `?wait=` honoured, in seconds. */
export const MAX_WAIT_S = 60;
const HEADER_VALUE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

function optionalHeader(ctx: Context, name: string): string | null {
  const value = ctx.get(name);
  if (value === '') return null;
  if (!HEADER_VALUE.test(value)) {
    throw new ClientError(400, ErrorCodes.BAD_PARAM, `${name} must be 1-255 printable ASCII characters`);
  }
  return value;
}

function parseWait(raw: unknown): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+(\.\d+)?$/.test(raw) || n > MAX_WAIT_S) {
    throw new ClientError(400, ErrorCodes.BAD_PARAM, `wait must be a number of seconds from 0 to ${MAX_WAIT_S}`);
  }
  return n;
}

/** `?mode=semi|auto` (seed 000): readable in conditions as `request.mode`. */
function parseMode(raw: unknown): string | null {
  if (raw === undefined) return null;
  if (typeof raw !== 'string' || !/^[a-z][a-z0-9_-]{0,15}$/.test(raw)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'mode must be a short lower-case word such as "semi" or "auto"');
  return raw;
}

function parseFlag(raw: unknown, name: string): boolean {
  if (raw === undefined) return false;
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw new ClientError(400, ErrorCodes.BAD_PARAM, `${name} must be 1 or 0`);
}

async function loadRequest(engine: ApiEngine, id: string) {
  const found = isId(id) ? await engine.getRequest(id) : undefined;
  if (!found) throw new ClientError(404, ErrorCodes.UNKNOWN_REQUEST, `unknown request "${id.slice(0, 64)}"`);
  return found;
}

/** A module's late answer to a `202`. The signed token in the URL is its credential. */
function mountCallbackRoute(router: Router, engine: ApiEngine): void {
  router.post('/api/callbacks/:token', async (ctx) => {
    const v = verifyCallback(engine.callbacks.secret, ctx.params.token!);
    if (!v.ok && v.reason === 'expired') throw new ClientError(410, ErrorCodes.CALLBACK_EXPIRED, 'this callback URL has expired');
    if (!v.ok) throw new ClientError(401, ErrorCodes.CALLBACK_TOKEN, 'invalid callback token');
    const body = (await readJson(ctx)) as { data?: unknown; error?: { code?: unknown; message?: unknown; retryable?: unknown } } | null;
    if (!body || typeof body !== 'object' || Array.isArray(body) || ('data' in body) === ('error' in body)) {
      throw new ClientError(400, ErrorCodes.BAD_BODY, 'a callback body is {"data": ...} or {"error": {"message": "...", "retryable": false}}');
    }
    const run = await engine.store.getStepRun(v.claims.runId, v.claims.requestId);
    if (!run || run.attempt !== v.claims.attempt || (run.status !== 'waiting' && run.status !== 'dispatched')) {
      throw new ClientError(409, ErrorCodes.CALLBACK_CONFLICT, `step run ${v.claims.runId} attempt ${v.claims.attempt} is not waiting for a result (${run?.status ?? 'unknown'})`);
    }
    const now = Date.now();
    const base = { requestId: run.requestId, runId: run.id, stepId: run.stepId, attempt: run.attempt, finishedAt: now, durationMs: now - run.startedAt };
    let delivered: boolean;
    if ('data' in body) {
      const checked = checkOutput(body.data);
      delivered = checked.ok ? await engine.deliverResult({ ...base, output: checked.output }) : await engine.deliverResult({ ...base, error: checked.error });
    } else {
      const e = body.error && typeof body.error === 'object' ? body.error : {};
      delivered = await engine.deliverResult({
        ...base,
        error: {
          code: typeof e.code === 'string' ? e.code.slice(0, 100) : ErrorCodes.MODULE_FAILED,
          message: typeof e.message === 'string' ? e.message.slice(0, 2000) : 'the module reported a failure',
          retryable: e.retryable === true,
        },
      });
    }
    if (!delivered) {
      // Not committed here (the database failed): the module must post it again.
      ctx.set('retry-after', '5');
      throw new ClientError(503, ErrorCodes.SHUTTING_DOWN, 'the result could not be stored now; post it again');
    }
    ctx.body = { status: 'accepted' };
  });
}

/** Submitting a request; with `?wait=`, answered once it ends (or the wait is over). */
function mountSubmitRoute(api: Router, engine: ApiEngine): void {
  api.post('/pipelines/:id/requests', requireRole('submit'), submitRateLimit(engine.config.submitRate), async (ctx) => {
    const pipelineId = ctx.params.id!;
    if (!engine.catalog.latest(pipelineId)) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${pipelineId.slice(0, 100)}"`);
    const wait = parseWait(ctx.query.wait);
    const test = parseFlag(ctx.query.test, 'test');
    const idempotencyKey = optionalHeader(ctx, 'idempotency-key');
    const businessKey = optionalHeader(ctx, 'x-business-key');
    const body = await readJson(ctx);
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new ClientError(400, ErrorCodes.BAD_BODY, 'the request body must be a JSON object (the payload)');
    }
    const mode = parseMode(ctx.query.mode);
    const callbackUrl = callbackUrlOf(ctx, engine.outbound);
    const actor = (ctx.state.principal as Principal).actor;
    const { request: record, outcome } = await engine.intake.accept({
      pipelineId, payload: body as Record<string, unknown>, idempotencyKey, businessKey, test, mode, callbackUrl, traceparent: ctx.get('traceparent') || null, actor,
    });
    if (wait > 0 && (await engine.waitForEnd(record.id, wait * 1000))) {
      const found = await loadRequest(engine, record.id);
      ctx.status = 200;
      // The submitter sees what it submitted, even without `read` (redactions still apply).
      ctx.body = await fullRequestView(engine, found, ctx.state.principal as Principal, { involved: true });
      return;
    }
    // 200 when nothing new was created: an idempotent replay, or the business key's active request.
    ctx.status = outcome === 'created' ? 202 : 200;
    if (outcome === 'replayed') ctx.set('idempotent-replayed', 'true');
    if (outcome === 'existing') ctx.set('x-conveyor-existing-request', 'true');
    ctx.set('location', `/api/requests/${record.id}`);
    ctx.body = acceptedView(record);
  });
}

/** The pipelines served, and one pipeline's versions, definition and graph. */
function mountPipelineRoutes(api: Router, engine: ApiEngine): void {
  api.get('/pipelines', requireRole('read'), (ctx) => {
    ctx.body = {
      items: engine.catalog.list().map(({ pipeline, version }) => ({
        id: pipeline.id, version, hash: pipeline.hash, description: pipeline.description ?? null,
        start: pipeline.start, steps: Object.keys(pipeline.steps).length, intake: pipeline.intake,
      })),
      nextCursor: null,
    };
  });

  api.get('/pipelines/:id', requireRole('read'), async (ctx) => {
    const entry = engine.catalog.latest(ctx.params.id!);
    if (!entry) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${ctx.params.id!.slice(0, 100)}"`);
    const versions = await engine.store.listPipelineVersions(entry.pipeline.id);
    ctx.body = {
      id: entry.pipeline.id,
      version: entry.version,
      hash: entry.pipeline.hash,
      description: entry.pipeline.description ?? null,
      versions: versions.map((v) => ({ version: v.version, hash: v.hash, createdAt: new Date(v.createdAt).toISOString() })),
      definition: entry.pipeline.definition,
      graph: pipelineGraphWithMermaid(entry.pipeline),
    };
  });
}

/** Builds the Koa app. Tests drive it through `app.callback()`. */
export function createApp(engine: ApiEngine, keys: KeyRing): Koa {
  const app = new Koa();
  app.silent = true;
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  mountCallbackRoute(router, engine);

  // Everything under /api needs a key: known routes, and unknown ones too (a caller without
  // a key learns nothing, not even which routes exist). Callbacks carry their own token.
  const auth = authMiddleware(keys);
  const guard = (ctx: Context, next: () => Promise<unknown>): Promise<unknown> =>
    (ctx.path === '/api' || ctx.path.startsWith('/api/')) && !ctx.path.startsWith('/api/callbacks/') ? auth(ctx, next as never) : next();
  const api = new Router({ prefix: '/api' });

  mountSubmitRoute(api, engine);

  // Reads of one request are scoped, not role-guarded: a caller without `read` sees the
  // requests it takes part in (or is offered an action on), and gets 404 for the others.
  api.get('/requests/:id', async (ctx) => {
    ctx.body = await fullRequestView(engine, await loadRequest(engine, ctx.params.id!), ctx.state.principal as Principal);
  });
  mountWorkflowRoutes(api, engine);
  mountIntakeRoutes(api, engine);
  mountOverviewRoutes(api, engine);
  mountMigrationRoutes(api, engine);

  api.get('/requests/:id/steps', async (ctx) => {
    const found = await loadRequest(engine, ctx.params.id!);
    ctx.body = { items: await stepsView(engine, found, ctx.state.principal as Principal), nextCursor: null };
  });

  mountPipelineRoutes(api, engine);
  mountOpsRoutes({ router, api, engine, keys });
  app.use((ctx, next) => {
    ctx.state.bodyLimit = engine.config.bodyLimit;
    return next();
  });
  app.use(errorMiddleware(engine.logger));
  app.use(router.routes());
  // Not `throw: true`: only the non-throwing form sets the `Allow` header a 405 must carry
  // (RFC 9110 §15.5.6). errorMiddleware gives the empty 405/501 its JSON body.
  app.use(router.allowedMethods());
  app.use(guard);
  // While the engine drains for shutdown, new work is refused (503) rather than half taken.
  app.use(async (ctx, next) => {
    if (!engine.accepting && ctx.method === 'POST' && /^\/api\/(pipelines\/|events\/)/.test(ctx.path)) {
      ctx.set('retry-after', '5');
      throw new ClientError(503, ErrorCodes.SHUTTING_DOWN, 'this engine is shutting down; retry against another instance or in a few seconds');
    }
    await next();
  });
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
