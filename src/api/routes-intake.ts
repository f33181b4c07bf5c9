/**
 * Intake routes beyond the single submit: `POST /api/pipelines/:id/requests/bulk` takes NDJSON
 * and streams back one result line per input line, in order, as the lines are stored.
 *
 * Each input line is a payload, or with `?envelope=1` an object
 * `{ "payload": {…}, "idempotencyKey"?, "businessKey"?, "callbackUrl"? }`. A bulk call's
 * `Idempotency-Key` header gives line n the key `<header>:<n>`, which makes a re-sent file
 * safe. An `X-Business-Key` header is the business key of every line that does not give its
 * own; where the pipeline reads the key from the payload, a line whose value disagrees answers
 * `CONVEYOR_ERR_BUSINESS_KEY_MISMATCH` (the other lines are stored). Blank lines are skipped.
 * Answers, one per non-blank line: `{ "line": n, "id", "status", "outcome" }` or
 * `{ "line": n, "error": { "code", "message" } }`.
 */
import { isUtf8 } from 'node:buffer';
import { PassThrough } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ApiEngine } from './ports';
import { ClientError, ConveyorError, ErrorCodes } from '../errors';
import { isCallbackUrl } from '../pipeline/compile-intake';
import { checkOutboundUrl, type OutboundPolicy } from '../transports/outbound';
import { requireRole, type Principal } from './auth';
import { bodyLimit, parseJsonText } from '../http/body';
import type { SubmitInput } from '../intake/intake';

const HEADER_VALUE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;
/** Lines stored concurrently (their inserts share group commits); answers still go out in order. */
export const BULK_WINDOW = 256;
/** Pause reading input while this much output waits for a slow reader. */
const OUTPUT_HIGH_WATER = 4 * 1024 * 1024;
const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/json-lines', 'application/jsonlines'];

/** The request's own callback URL: `?callbackUrl=` or the `X-Callback-Url` header. */
export function callbackUrlOf(ctx: Context, outbound: OutboundPolicy): string | null {
  const raw = typeof ctx.query.callbackUrl === 'string' ? ctx.query.callbackUrl : ctx.get('x-callback-url');
  if (!raw) return null;
  if (!isCallbackUrl(raw)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'callbackUrl must be an absolute http(s) URL of at most 2000 characters');
  return checkedCallbackUrl(raw, outbound);
}

/** A well-formed callback URL the outbound rule refuses is a 422: Conveyor will not call it. */
function checkedCallbackUrl(url: string, outbound: OutboundPolicy): string {
  const verdict = checkOutboundUrl('callback', outbound, url);
  if (!verdict.ok) {
    throw new ClientError(422, ErrorCodes.OUTBOUND_REFUSED, `callbackUrl refused: ${verdict.reason}; callbacks go to public addresses, or to those CONVEYOR_OUTBOUND_ALLOW lists`, { reason: verdict.reason });
  }
  return url;
}

/** What every line of one bulk call shares. */
interface BulkBase {
  pipelineId: string;
  test: boolean;
  envelope: boolean;
  keyPrefix: string | null;
  businessKey: string | null;
  /** The caller's W3C `traceparent`: every line joins its trace, as a single submit does. */
  traceparent: string | null;
  /** The submitting actor (`request.actor`). */
  actor: string;
}

export type LineResult = { line: number; id: string; status: string; outcome: string } | { line: number; error: { code: string; message: string } };

/** Splits a byte stream into lines without holding more than one line (at most `limit` bytes) in memory. */
async function* readLines(source: AsyncIterable<Buffer>, limit: number): AsyncGenerator<{ n: number; text: string | null; utf8: boolean }> {
  let parts: Buffer[] = [];
  let size = 0;
  let n = 0;
  let tooLong = false;
  const emit = (): { n: number; text: string | null; utf8: boolean } => {
    n++;
    const line = Buffer.concat(parts);
    const out = { n, text: tooLong ? null : line.toString('utf8'), utf8: tooLong || isUtf8(line) };
    parts = [];
    size = 0;
    tooLong = false;
    return out;
  };
  for await (const chunk of source) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!tooLong) {
        size += end - start;
        if (size > limit) {
          tooLong = true;
          parts = [];
        } else parts.push(chunk.subarray(start, end));
      }
      if (nl === -1) break;
      yield emit();
      start = nl + 1;
    }
  }
  if (size > 0 || tooLong) yield emit();
}

function errorOf(line: number, err: unknown): LineResult {
  if (err instanceof ConveyorError && err.status < 500) return { line, error: { code: err.code, message: err.message } };
  return { line, error: { code: ErrorCodes.INTERNAL, message: 'the line could not be stored; send it again' } };
}

/** Turns one parsed line into a submit, or throws the line's 4xx. */
function toSubmit(value: unknown, base: BulkBase & { line: number; outbound: OutboundPolicy }): SubmitInput {
  const isObject = (v: unknown): v is Record<string, unknown> => Boolean(v) && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(value)) throw new ClientError(400, ErrorCodes.BAD_BODY, base.envelope ? 'each line must be an object {"payload": {...}}' : 'each line must be a JSON object (a payload)');
  const input: SubmitInput = {
    pipelineId: base.pipelineId, payload: value, test: base.test, idempotencyKey: base.keyPrefix ? `${base.keyPrefix}:${base.line}` : null, businessKey: base.businessKey, traceparent: base.traceparent,
    actor: base.actor,
  };
  if (!base.envelope) return input;
  const { payload, idempotencyKey, businessKey, callbackUrl, ...rest } = value;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ClientError(400, ErrorCodes.BAD_BODY, `unknown envelope key "${extra[0]}" (allowed: payload, idempotencyKey, businessKey, callbackUrl)`);
  if (!isObject(payload)) throw new ClientError(400, ErrorCodes.BAD_BODY, 'the envelope needs "payload": a JSON object');
  input.payload = payload;
  for (const [name, v] of [['idempotencyKey', idempotencyKey], ['businessKey', businessKey]] as const) {
    if (v === undefined) continue;
    if (typeof v !== 'string' || !HEADER_VALUE.test(v)) throw new ClientError(400, ErrorCodes.BAD_PARAM, `${name} must be 1-255 printable ASCII characters`);
    input[name] = v;
  }
  if (callbackUrl !== undefined) {
    if (typeof callbackUrl !== 'string' || !isCallbackUrl(callbackUrl)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'callbackUrl must be an absolute http(s) URL');
    input.callbackUrl = checkedCallbackUrl(callbackUrl, base.outbound);
  }
  return input;
}

/** Mounts the intake routes on the authenticated `/api` router. */
export function mountIntakeRoutes(api: Router, engine: ApiEngine): void {
  api.post('/pipelines/:id/requests/bulk', requireRole('submit'), (ctx) => {
    const pipelineId = ctx.params.id!;
    if (!engine.catalog.latest(pipelineId)) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${pipelineId.slice(0, 100)}"`);
    if (!ctx.is(...NDJSON_TYPES)) {
      throw new ClientError(415, ErrorCodes.UNSUPPORTED_MEDIA_TYPE, `content-type must be application/x-ndjson (got ${ctx.get('content-type') || 'none'})`);
    }
    const flag = (name: string): boolean => {
      const raw = ctx.query[name];
      if (raw === undefined) return false;
      if (raw === '1' || raw === 'true') return true;
      if (raw === '0' || raw === 'false') return false;
      throw new ClientError(400, ErrorCodes.BAD_PARAM, `${name} must be 1 or 0`);
    };
    const keyPrefix = ctx.get('idempotency-key') || null;
    if (keyPrefix !== null && !HEADER_VALUE.test(keyPrefix)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'Idempotency-Key must be 1-255 printable ASCII characters');
    const businessKey = ctx.get('x-business-key') || null;
    if (businessKey !== null && !HEADER_VALUE.test(businessKey)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'X-Business-Key must be 1-255 printable ASCII characters');
    const base: BulkBase = {
      pipelineId, test: flag('test'), envelope: flag('envelope'), keyPrefix, businessKey, traceparent: ctx.get('traceparent') || null, actor: (ctx.state.principal as Principal).actor,
    };

    const out = new PassThrough();
    ctx.status = 200;
    ctx.type = 'application/x-ndjson';
    ctx.set('cache-control', 'no-store');
    ctx.body = out;
    void streamResults(ctx, engine, base, out);
  });
}

function streamResults(ctx: Context, engine: ApiEngine, base: BulkBase, out: PassThrough): Promise<void> {
  const store = async (n: number, text: string): Promise<LineResult> => {
    try {
      const input = toSubmit(parseJsonText(text), { ...base, line: n, outbound: engine.outbound });
      const { request, outcome } = await engine.intake.accept(input);
      return { line: n, id: request.id, status: request.status, outcome };
    } catch (err) {
      return errorOf(n, err);
    }
  };
  return answerLines(ctx.req, bodyLimit(ctx), store, out, (err) => {
    engine.logger.warn('bulk intake interrupted', { pipeline: base.pipelineId, error: err.message });
  });
}

/**
 * Reads NDJSON from `source` and writes one answer per non-blank line to `out`, in input
 * order, each as soon as its line and every line before it are stored. At most
 * {@link BULK_WINDOW} lines are between read and answered: reading (and so the request body,
 * by TCP backpressure) waits for the oldest line's answer, and for a slow reader of `out`.
 * Memory per call is therefore bounded whatever the number of lines.
 */
export async function answerLines(
  source: AsyncIterable<Buffer>, limit: number, store: (n: number, text: string) => Promise<LineResult>, out: PassThrough, onError: (err: Error) => void,
): Promise<void> {
  const window: Array<Promise<LineResult>> = [];
  const writeOne = async (): Promise<void> => {
    const r = await window.shift()!;
    if (!out.write(`${JSON.stringify(r)}\n`) && out.writableLength > OUTPUT_HIGH_WATER) {
      await new Promise<void>((resolve) => out.once('drain', resolve));
    }
  };
  try {
    for await (const { n, text, utf8 } of readLines(source, limit)) {
      if (out.destroyed) break;
      let result: Promise<LineResult>;
      if (text === null) result = Promise.resolve({ line: n, error: { code: ErrorCodes.BODY_TOO_LARGE, message: `line is over the ${limit}-byte limit` } });
      else if (!utf8) result = Promise.resolve({ line: n, error: { code: ErrorCodes.BAD_JSON, message: 'line is not valid UTF-8' } });
      else if (text.trim() === '') continue;
      else result = store(n, text);
      window.push(result);
      if (window.length >= BULK_WINDOW) await writeOne();
    }
    while (window.length > 0) await writeOne();
  } catch (err) {
    onError(err as Error);
    await Promise.allSettled(window);
  } finally {
    out.end();
  }
}
