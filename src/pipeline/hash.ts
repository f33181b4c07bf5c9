/**
 * Stable identity of a pipeline definition. A request is pinned to the hash of the definition
 * it started with (seed 003), so the same definition must always hash the same, whatever the
 * order its keys were written in.
 */
import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted (by UTF-16 code units) at every depth, and no whitespace.
 * Otherwise it follows `JSON.stringify`: `toJSON` is honoured, `undefined` and functions are
 * dropped from objects and become `null` in arrays, non-finite numbers become `null`.
 *
 * The output is built by hand rather than by re-inserting sorted keys into objects, because
 * JavaScript enumerates integer-like keys (`"2"`, `"10"`) first whatever the insertion order.
 *
 * @throws TypeError on a circular structure or a bigint, as `JSON.stringify` does.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set()) ?? 'null';
}

function encode(value: unknown, ancestors: Set<object>): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'bigint') throw new TypeError('canonicalJson: cannot encode a bigint');
  if (typeof value !== 'object') return undefined; // undefined, function, symbol
  if (ancestors.has(value)) throw new TypeError('canonicalJson: circular structure');
  ancestors.add(value);
  let out: string;
  if (Array.isArray(value)) {
    out = `[${value.map((item) => encode(item, ancestors) ?? 'null').join(',')}]`;
  } else {
    const parts: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const encoded = encode((value as Record<string, unknown>)[key], ancestors);
      if (encoded !== undefined) parts.push(`${JSON.stringify(key)}:${encoded}`);
    }
    out = `{${parts.join(',')}}`;
  }
  ancestors.delete(value);
  return out;
}

/** The sha256 (hex) of the definition's {@link canonicalJson}: the version a request is pinned to. */
export function hashDefinition(def: unknown): string {
  return createHash('sha256').update(canonicalJson(def)).digest('hex');
}
