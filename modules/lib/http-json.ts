/**
 * One JSON-over-HTTP call for the seed 000/003 modules (marketplace, LLM, notification and
 * payment providers). Not a module itself: the loader only reads `*.module.ts`.
 *
 * Error policy, as the module contract asks:
 * - a 4xx answer (other than 408 and 429) means the call itself is wrong, so retrying cannot
 *   help: {@link NonRetryableError}, with the status and the provider's error in `details`;
 * - 5xx, 408, 429, or a body that is not JSON: a plain `Error`, retried by the step's policy;
 * - no answer at all (refused, reset, aborted by `ctx.signal`): the original error, retried.
 */
import { NonRetryableError } from '../../src';

export interface JsonCall {
  method?: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Names the provider in error messages: `marketplace`, `LLM`, ... */
  service: string;
}

/** A base URL from the environment, without a trailing slash. */
export function baseUrl(envName: string, fallback: string): string {
  return (process.env[envName] || fallback).replace(/\/+$/, '');
}

/** Calls `url` and returns its JSON answer; throws as described above. */
export async function callJson<T = Record<string, unknown>>(url: string, call: JsonCall): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: call.method ?? (call.body === undefined ? 'GET' : 'POST'),
    headers,
    body: call.body === undefined ? undefined : JSON.stringify(call.body),
    signal: call.signal,
  });
  const text = await res.text();
  let data: unknown;
  try {
    data = text === '' ? null : JSON.parse(text);
  } catch {
    throw new Error(`${call.service} answered ${res.status} with a body that is not JSON`);
  }
  const path = new URL(url).pathname;
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw new NonRetryableError(`${call.service} ${path} answered ${res.status}: ${describe(data)}`, { status: res.status, error: data });
  }
  if (!res.ok) throw new Error(`${call.service} ${path} answered ${res.status}: ${describe(data)}`);
  return data as T;
}

function describe(data: unknown): string {
  if (data && typeof data === 'object') {
    const d = data as Record<string, unknown>;
    const e = d.error && typeof d.error === 'object' ? (d.error as Record<string, unknown>) : d;
    const message = e.message ?? d.Message ?? e.code;
    if (typeof message === 'string' && message !== '') return message.slice(0, 300);
  }
  return 'no error description';
}

/** A non-empty string, or undefined (a template renders a missing value as `''`). */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** A finite number (numeric strings too), or undefined for `''`, null and the like. */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** An object, or `{}`. */
export function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
