/**
 * Query-string parsing for the search routes. Every parameter is checked before any query
 * runs; a bad one is a 400 `CONVEYOR_ERR_BAD_PARAM` naming it (`details.param`).
 */
import type { ParsedUrlQuery } from 'node:querystring';
import { ClientError, ErrorCodes } from '../errors';
import { isId } from '../ids';
import type { SearchCursor } from '../store/search';

/** @default 50 */
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

const PRINTABLE = /^[\x20-\x7e\u00a0-\uffff]+$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A 400 that names the offending parameter. */
export function badParam(param: string, message: string): ClientError {
  return new ClientError(400, ErrorCodes.BAD_PARAM, `${param}: ${message}`, { param });
}

/** Reads the query, refusing names it does not know and repeated parameters. */
export class QueryReader {
  constructor(
    private readonly query: ParsedUrlQuery,
    known: readonly string[],
  ) {
    for (const name of Object.keys(query)) {
      if (!known.includes(name)) throw badParam(name.slice(0, 64), `unknown parameter; known: ${known.join(', ')}`);
    }
  }

  private raw(name: string): string | undefined {
    const v = this.query[name];
    if (Array.isArray(v)) throw badParam(name, 'give it once');
    return v === undefined || v === '' ? undefined : v;
  }

  /** A printable string of 1 to `max` characters. */
  text(name: string, max: number): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (v.length > max || !PRINTABLE.test(v)) throw badParam(name, `must be 1-${max} printable characters`);
    return v;
  }

  /** One of `allowed`. */
  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) throw badParam(name, `must be one of ${allowed.join(', ')}`);
    return v as T;
  }

  /** `1`/`true` or `0`/`false`. */
  flag(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    throw badParam(name, 'must be 1 or 0');
  }

  /** An ISO-8601 time (`2025-01-31T12:00:00Z`; a date alone is midnight UTC) or epoch milliseconds. */
  time(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const ms = /^\d{1,15}$/.test(v) ? Number(v) : ISO_TIME.test(v) ? Date.parse(v) : NaN;
    if (!Number.isFinite(ms)) throw badParam(name, 'must be an ISO-8601 time (2025-01-31T12:00:00Z) or epoch milliseconds');
    return ms;
  }

  /** The page size, 1 to {@link MAX_LIMIT}. */
  limit(): number {
    const v = this.raw('limit');
    if (v === undefined) return DEFAULT_LIMIT;
    const n = Number(v);
    if (!/^\d{1,4}$/.test(v) || n < 1 || n > MAX_LIMIT) throw badParam('limit', `must be a whole number from 1 to ${MAX_LIMIT}`);
    return n;
  }

  /** The opaque cursor of a previous page's `nextCursor`. */
  cursor(): SearchCursor | undefined {
    const v = this.raw('cursor');
    if (v === undefined) return undefined;
    const cursor = decodeCursor(v);
    if (!cursor) throw badParam('cursor', 'is not a cursor this API gave out');
    return cursor;
  }
}

/** base64url of `[time, id]`: opaque to clients, and checked strictly when it comes back. */
export function encodeCursor(c: SearchCursor): string {
  return Buffer.from(JSON.stringify([c.t, c.id])).toString('base64url');
}

export function decodeCursor(text: string): SearchCursor | undefined {
  if (text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string' && isId(v[1])) {
      return { t: v[0] as number, id: v[1] };
    }
  } catch {
    // not JSON: not ours
  }
  return undefined;
}
