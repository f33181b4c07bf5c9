/**
 * A small JSON-over-HTTP client for the seed 001 modules (shop, search engine, ERP). It is
 * not a module (the file name does not end in `.module.ts`).
 *
 * Error policy, as the module contract asks: a 4xx answer means the call itself is wrong, so
 * it is a {@link NonRetryableError}; a 5xx, a timeout or a dropped connection is a plain
 * (retryable) error.
 */
import http from 'node:http';
import { NonRetryableError } from '../../src';
import type { ModuleContext } from '../../src';

/** Base URLs, read at call time so tests can point them at ephemeral stand-ins. */
export const serviceUrl = {
  shop: (): string => (process.env.SHOP_BASE_URL ?? 'http://127.0.0.1:8082').replace(/\/+$/, ''),
  search: (): string => (process.env.SEARCH_BASE_URL ?? 'http://127.0.0.1:8083').replace(/\/+$/, ''),
  erp: (): string => (process.env.ERP_BASE_URL ?? 'http://127.0.0.1:8084').replace(/\/+$/, ''),
};

/** Keep-alive connections to the services: a catalog sync makes several calls per event. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** Calls `method url` with a JSON body and returns the JSON answer. */
export function callService<T = unknown>(
  service: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body: unknown,
  ctx: Pick<ModuleContext, 'signal' | 'idempotencyKey'>,
): Promise<T> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const where = `${service} ${method} ${new URL(url).pathname}`;
  return new Promise<T>((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent,
      signal: ctx.signal,
      headers: {
        accept: 'application/json',
        'idempotency-key': ctx.idempotencyKey,
        ...(data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 400 && status < 500) return reject(new NonRetryableError(`${where} answered ${status}: ${text.slice(0, 300)}`, { status }));
        if (status < 200 || status >= 300) return reject(new Error(`${where} answered ${status}: ${text.slice(0, 300)}`));
        try {
          resolve((text === '' ? undefined : JSON.parse(text)) as T);
        } catch {
          reject(new Error(`${where} answered ${status} with a body that is not JSON`));
        }
      });
    });
    // No answer (refused, reset, aborted by ctx.signal): retryable.
    req.on('error', reject);
    req.end(data);
  });
}

/** `context[stepId]` as an object, or `{}`. */
export function outputOf(context: Record<string, unknown>, stepId: string): Record<string, unknown> {
  const v = context[stepId];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
