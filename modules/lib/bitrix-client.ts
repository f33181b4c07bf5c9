/**
 * A tiny Bitrix24 REST client shared by the bitrix example modules. It is not a module itself
 * (the file name does not end in `.module.ts`, so the module loader skips it).
 *
 * Error policy, as the Conveyor module contract asks:
 * - the CRM answered 4xx: the request itself is wrong, so retrying cannot help → {@link NonRetryableError};
 * - the CRM answered 5xx, or answered something that is not a Bitrix envelope: a plain `Error`
 *   (retryable);
 * - no answer at all (connection refused, reset, aborted by `ctx.signal`): the original error is
 *   rethrown unchanged (retryable; an abort stays recognisable as an abort).
 */
import axios from 'axios';
import { NonRetryableError } from '../../src';
import type { ModuleContext } from '../../src';

/** The CRM base URL, read at call time so tests can point it at an ephemeral stand-in. */
export function crmBaseUrl(): string {
  return (process.env.CRM_BASE_URL ?? 'http://127.0.0.1:8081').replace(/\/+$/, '');
}

/**
 * Calls one Bitrix REST method (`POST <base>/rest/<method>` with a JSON body) and returns the
 * envelope's `result`.
 *
 * @param method - a Bitrix method name such as `crm.contact.list`.
 * @param body - the method's JSON arguments.
 * @param ctx - the module context; its `signal` cancels the HTTP call.
 */
export async function callBitrix<T = unknown>(
  method: string,
  body: Record<string, unknown>,
  ctx: Pick<ModuleContext, 'signal'>,
): Promise<T> {
  const url = `${crmBaseUrl()}/rest/${method}`;
  // Errors without a response (connection refused, abort) propagate unchanged: retryable.
  const response = await axios.post(url, body, {
    signal: ctx.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    // We classify statuses ourselves below.
    validateStatus: () => true,
  });
  const { status, data } = response;
  if (status >= 400 && status < 500) {
    throw new NonRetryableError(`CRM ${method} answered ${status}: ${describe(data)}`, {
      method,
      status,
      error: pickError(data),
    });
  }
  if (status < 200 || status >= 300) {
    throw new Error(`CRM ${method} answered ${status}: ${describe(data)}`);
  }
  if (data === null || typeof data !== 'object' || !('result' in data)) {
    throw new Error(`CRM ${method} answered ${status} without a "result"`);
  }
  return (data as { result: T }).result;
}

/** A non-empty string form of `v`, or `undefined` (templates render a missing value as `''`). */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** `context[stepId]` as an object, or an empty object when the step has not run. */
export function stepOutput(context: Record<string, unknown>, stepId: string): Record<string, unknown> {
  const v = context[stepId];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The submitted body (`context.payload`) as an object. */
export function payloadOf(context: Record<string, unknown>): Record<string, unknown> {
  return stepOutput(context, 'payload');
}

function pickError(data: unknown): { error?: unknown; error_description?: unknown } | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const { error, error_description } = data as Record<string, unknown>;
  return { error, error_description };
}

function describe(data: unknown): string {
  const e = pickError(data);
  if (e && (e.error !== undefined || e.error_description !== undefined)) {
    return [e.error, e.error_description].filter((x) => x !== undefined && x !== '').join(': ') || 'error';
  }
  if (typeof data === 'string') return data.slice(0, 200) || 'empty body';
  return 'no error description';
}
