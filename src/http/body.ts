import type { Context } from 'koa';
import { ClientError, ErrorCodes } from '../errors';

/** The body limit of an app that sets none: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** The app's body limit (`CONVEYOR_BODY_LIMIT`), which it puts in `ctx.state.bodyLimit`. */
export const bodyLimit = (ctx: Context): number => (ctx.state.bodyLimit as number | undefined) ?? DEFAULT_BODY_LIMIT;
/** Deeper JSON is refused before it is parsed. */
export const MAX_DEPTH = 64;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Reads the raw body, refusing more than `limit` bytes without buffering them. */
export async function readRaw(ctx: Context, limit = bodyLimit(ctx)): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new ClientError(413, ErrorCodes.BODY_TOO_LARGE, `body is ${declared} bytes; the limit is ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      ctx.req.unpipe();
      ctx.req.resume();
      ctx.set('connection', 'close');
      throw new ClientError(413, ErrorCodes.BODY_TOO_LARGE, `body is over the ${limit}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** True for `application/json` and `application/*+json`, any charset. */
function isJsonType(ctx: Context): boolean {
  return Boolean(ctx.is('application/json', 'application/*+json'));
}

/**
 * Parses a JSON body strictly: the right content type, within the size limit, at most
 * `MAX_DEPTH` deep, and without `__proto__`/`constructor`/`prototype` keys.
 */
export async function readJson(ctx: Context): Promise<unknown> {
  if (!isJsonType(ctx)) {
    throw new ClientError(415, ErrorCodes.UNSUPPORTED_MEDIA_TYPE, `content-type must be application/json (got ${ctx.get('content-type') || 'none'})`);
  }
  const text = decodeUtf8(await readRaw(ctx));
  return parseJsonText(text);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * JSON travels as UTF-8 (RFC 8259 §8.1). Bytes that are not UTF-8 are refused rather than
 * silently replaced with U+FFFD, which would store something the client never sent.
 */
function decodeUtf8(raw: Buffer): string {
  try {
    return UTF8.decode(raw);
  } catch {
    throw new ClientError(400, ErrorCodes.BAD_JSON, 'body is not valid UTF-8');
  }
}

/** The checks of `readJson` on text already read (also used per line of NDJSON). */
export function parseJsonText(text: string): unknown {
  if (text.trim() === '') throw new ClientError(400, ErrorCodes.BAD_JSON, 'body is empty');
  checkDepth(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ClientError(400, ErrorCodes.BAD_JSON, `body is not valid JSON: ${(err as Error).message}`);
  }
  const bad = findForbiddenKey(value);
  if (bad) throw new ClientError(400, ErrorCodes.FORBIDDEN_KEY, `key "${bad.key}" is not allowed (at ${bad.path})`, { path: bad.path });
  return value;
}

/** Counts bracket depth outside strings, so deep input is refused in linear time, before parsing. */
function checkDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > MAX_DEPTH) throw new ClientError(400, ErrorCodes.TOO_DEEP, `JSON is nested deeper than ${MAX_DEPTH} levels`);
    } else if (c === 125 || c === 93) depth--;
  }
}

function findForbiddenKey(value: unknown, path = '$'): { key: string; path: string } | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findForbiddenKey(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return { key, path };
      const found = findForbiddenKey((value as Record<string, unknown>)[key], `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}
