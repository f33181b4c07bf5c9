import type { Context, Next } from 'koa';
import { ClientError, ConveyorError, ErrorCodes } from '../errors';
import type { Logger } from '../log/logger';

/**
 * The one place errors become HTTP answers: `{ error: { code, message, details } }`. A 4xx
 * says what was wrong; a 5xx says nothing of the inside, and no stack trace ever leaves.
 */
export function errorMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: ErrorCodes.NOT_FOUND, message: `no route for ${ctx.method} ${ctx.path}` } };
      } else if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) {
        // The router's allowedMethods() set the status and the `Allow` header, and no body.
        const status = ctx.status;
        ctx.body = { error: { code: ErrorCodes.METHOD_NOT_ALLOWED, message: `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('allow') || 'none'}` } };
        ctx.status = status;
      }
    } catch (err) {
      const e = err as Partial<ConveyorError> & { status?: number; expose?: boolean; message?: string; headers?: Record<string, string> };
      if (err instanceof ConveyorError && (err.status < 500 || err instanceof ClientError)) {
        // ClientError is raised on purpose with a safe message, even for a 503 (draining).
        ctx.status = err.status;
        ctx.body = { error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) } };
        return;
      }
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
        // Koa / router errors such as 405: safe to show their short message.
        ctx.status = e.status;
        if (e.headers) ctx.set(e.headers);
        const code = e.status === 405 ? ErrorCodes.METHOD_NOT_ALLOWED : e.status === 413 ? ErrorCodes.BODY_TOO_LARGE : ErrorCodes.BAD_BODY;
        ctx.body = { error: { code, message: e.expose && e.message ? e.message : 'bad request' } };
        return;
      }
      logger.error('request failed', { method: ctx.method, path: ctx.path, error: e.message, stack: (err as Error).stack });
      ctx.status = 500;
      ctx.body = { error: { code: ErrorCodes.INTERNAL, message: 'internal error' } };
    }
  };
}
