/**
 * `platform`: seed 003's `registerExecutor` and `createEntity`, the operations of the services
 * marketplace platform itself (the stand-in `scripts/platform-standin.ts` by default;
 * `PLATFORM_BASE_URL`). A test request (`?test=1`) is sent in the platform's sandbox. The
 * step's idempotency key goes with the call, so a redelivery registers or creates once.
 *
 * Params: `operation` (`registerExecutor` | `createEntity`), `order` (the order's code), and
 * - `registerExecutor`: `userId`, the user who is now the order's executor;
 * - `createEntity`: `type` (the constructor object, e.g. `rating`) and `fields` (an object).
 * `apiKey` (`{{ secrets.PLATFORM_API_KEY }}`) is sent as a bearer token when set.
 * Output: `{ operation, id, order, userId }` or `{ operation, id, type }`.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, obj, str } from './lib/http-json';

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'platform',
  description: 'The services platform: registerExecutor (the order\'s executor) and createEntity (an object of its constructor).',
  timeout: '15s',
  retry: { attempts: 4, backoff: '1s' },
  async handle({ params }, ctx) {
    const operation = str(params.operation);
    const order = str(params.order);
    if (!order) throw new NonRetryableError('the order code is missing');
    const apiKey = str(params.apiKey);
    const call = (path: string, body: Record<string, unknown>) => callJson<Record<string, unknown>>(`${baseUrl('PLATFORM_BASE_URL', 'http://127.0.0.1:8086')}${path}`, {
      service: 'platform',
      headers: { 'idempotency-key': ctx.idempotencyKey, ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: { ...body, sandbox: ctx.test },
      signal: ctx.signal,
    });
    if (operation === 'registerExecutor') {
      const userId = str(params.userId);
      if (!userId) throw new NonRetryableError('registerExecutor needs the userId of the executor (the order has none now)');
      const res = await call(`/v1/orders/${encodeURIComponent(order)}/executor`, { userId });
      return { operation, id: res.id, order, userId };
    }
    if (operation === 'createEntity') {
      const type = str(params.type);
      if (!type) throw new NonRetryableError('createEntity needs the entity type');
      const res = await call('/v1/entities', { type, order, fields: obj(params.fields) });
      return { operation, id: res.id, type };
    }
    throw new NonRetryableError(`operation must be registerExecutor or createEntity (got ${JSON.stringify(params.operation)})`);
  },
});
