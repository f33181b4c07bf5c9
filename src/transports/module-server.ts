/**
 * `conveyor module-server`: serves `defineModule` modules over the public HTTP module protocol,
 * so a module can run as its own service: `POST /modules/<name>` with the protocol body,
 * answered `200 {data}`, `422 {error}` (NonRetryableError) or `500 {error}` (retryable).
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Server } from 'node:http';
import { readJson } from '../http/body';
import { errorMiddleware } from '../http/errors';
import type { ModuleCall } from '../bus/bus';
import { ClientError, ErrorCodes } from '../errors';
import type { Logger } from '../log/logger';
import type { RegisteredModule } from '../module/registry';
import { moduleSpanAttributes, endSpan, runInSpan, startRemoteSpan } from '../tracing/spans';
import { runModule } from './run-module';

const DEFAULT_TIMEOUT_MS = 30_000;

export function createModuleServer(modules: RegisteredModule[], logger: Logger, opts: { bodyLimit?: number } = {}): Koa {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const app = new Koa();
  app.silent = true;
  app.use((ctx, next) => {
    ctx.state.bodyLimit = opts.bodyLimit;
    return next();
  });
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok', modules: [...byName.keys()] };
  });
  router.post('/modules/:name', async (ctx) => {
    const mod = byName.get(ctx.params.name!);
    if (!mod?.def) throw new ClientError(404, ErrorCodes.NOT_FOUND, `no module "${ctx.params.name!.slice(0, 100)}" here`);
    const body = (await readJson(ctx)) as Partial<ModuleCall> | null;
    if (!body || typeof body !== 'object' || typeof body.requestId !== 'string' || typeof body.stepId !== 'string') {
      throw new ClientError(400, ErrorCodes.BAD_BODY, 'body must be the module protocol request: { requestId, pipeline, stepId, attempt, idempotencyKey, test, params, context }');
    }
    const call: ModuleCall = {
      requestId: body.requestId,
      pipeline: String(body.pipeline ?? ''),
      stepId: body.stepId,
      runId: String(body.idempotencyKey ?? ''),
      attempt: Number(body.attempt ?? 1),
      idempotencyKey: String(body.idempotencyKey ?? ''),
      test: body.test === true,
      module: mod.name,
      params: (body.params ?? {}) as Record<string, unknown>,
      context: (body.context ?? {}) as Record<string, unknown>,
      timeoutMs: mod.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    const log = logger.child({ requestId: call.requestId, stepId: call.stepId, module: mod.name });
    const span = startRemoteSpan(`conveyor.module ${mod.name}`, ctx.get('traceparent') || undefined, moduleSpanAttributes(call));
    const res = await runInSpan(span, () => runModule(mod.def!, call, { info: (m, f) => log.info(m, f), warn: (m, f) => log.warn(m, f), error: (m, f) => log.error(m, f) }));
    endSpan(span, res.ok ? null : res.error);
    if (res.ok) {
      ctx.body = { data: res.output };
      return;
    }
    ctx.status = res.error.retryable ? 500 : 422;
    ctx.body = { error: { code: res.error.code, message: res.error.message } };
  });
  app.use(errorMiddleware(logger));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}

export async function listenModuleServer(app: Koa, host: string, port: number): Promise<{ server: Server; url: string }> {
  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  return { server, url: `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}` };
}
