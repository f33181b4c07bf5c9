/** Redaction of secrets from anything that is stored or logged. */

export const REDACTED = '[REDACTED]';

/** Keys whose values are secret whatever they hold. */
const SECRET_KEY = /(pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|apikey|credential|private[-_]?key|cookie)/i;

/** True when a key's value must never be stored or logged. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** The default: no secret strings (shared, so a call without them makes no set). */
const NO_SECRETS: ReadonlySet<string> = new Set();

/**
 * Returns a copy of `value` in which values under secret-looking keys, and every occurrence
 * of the given secret strings, are replaced by `[REDACTED]`. Safe on cycles and deep values.
 */
export function redact(value: unknown, secrets: ReadonlySet<string> = NO_SECRETS, depth = 0): unknown {
  if (depth > 64) return '[TOO DEEP]';
  if (typeof value === 'string') {
    if (secrets.size === 0) return value;
    let out = value;
    for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets, depth + 1));
  if (value && typeof value === 'object') {
    // Every step's output and every payload passes here: one array of keys per object, not
    // `Object.entries` → `map` → `fromEntries` (three arrays and a pair per key).
    const from = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(from)) {
      const v = from[k];
      const copy = isSecretKey(k) && v !== null && v !== undefined && v !== '' ? REDACTED : redact(v, secrets, depth + 1);
      // A key named "__proto__" (a module may answer one) must stay data: `out[k] = v` would
      // replace the copy's prototype and drop the key.
      if (k === '__proto__') Object.defineProperty(out, k, { value: copy, enumerable: true, writable: true, configurable: true });
      else out[k] = copy;
    }
    return out;
  }
  return value;
}
