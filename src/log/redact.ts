/** Redaction of secrets from anything that is stored or logged. */

export const REDACTED = '[REDACTED]';

/** Keys whose values are secret whatever they hold. */
const SECRET_KEY = /(pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|apikey|credential|private[-_]?key|cookie)/i;

/** True when a key's value must never be stored or logged. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * Returns a copy of `value` in which values under secret-looking keys, and every occurrence
 * of the given secret strings, are replaced by `[REDACTED]`. Safe on cycles and deep values.
 */
export function redact(value: unknown, secrets: ReadonlySet<string> = new Set(), depth = 0): unknown {
  if (depth > 64) return '[TOO DEEP]';
  if (typeof value === 'string') {
    let out = value;
    for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets, depth + 1));
  if (value && typeof value === 'object') {
    // fromEntries defines own properties: a key named "__proto__" (a module may answer one)
    // stays data, where `out[k] = v` would replace the copy's prototype and drop the key.
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, isSecretKey(k) && v !== null && v !== undefined && v !== '' ? REDACTED : redact(v, secrets, depth + 1)]),
    );
  }
  return value;
}
