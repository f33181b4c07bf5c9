/**
 * A broker message as intake sees it: its bytes become a JSON payload under the same checks
 * as an HTTP body (valid UTF-8 JSON, nesting depth, forbidden keys), or a reason to refuse it.
 * Pure, so it is tested by table.
 */
import { parseJsonText } from '../http/body';
import { ConveyorError, ErrorCodes } from '../errors';

export type Decoded =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; code: string; reason: string };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function decodeMessage(content: Uint8Array, maxBytes: number): Decoded {
  if (content.byteLength > maxBytes) return { ok: false, code: ErrorCodes.BODY_TOO_LARGE, reason: `message is ${content.byteLength} bytes, over the source's limit of ${maxBytes}` };
  let value: unknown;
  try {
    value = parseJsonText(UTF8.decode(content));
  } catch (err) {
    if (err instanceof ConveyorError) return { ok: false, code: err.code, reason: err.message.replace(/^body/, 'message') };
    return { ok: false, code: ErrorCodes.BAD_JSON, reason: 'message is not valid UTF-8' };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: ErrorCodes.BAD_BODY, reason: `message must be a JSON object (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})` };
  }
  return { ok: true, payload: value as Record<string, unknown> };
}
