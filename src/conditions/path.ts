/**
 * Dotted paths into the request context (`get-bitrix-deal.value`, `payload.items.0.sku`).
 * Pure: no I/O.
 */

/**
 * Splits a dotted field into its segments. `'payload.items.0'` → `['payload', 'items', '0']`.
 * Parse once at compile time; {@link getPath} then walks the segments without re-parsing.
 */
export function parsePath(field: string): string[] {
  return field.split('.');
}

/**
 * Reads the value at `path` in `context`, or `undefined` when any segment is missing.
 *
 * Only own properties are followed. The context holds untrusted JSON (a submitted payload,
 * a module's output), so `__proto__`, `constructor` or `toString` must never reach
 * `Object.prototype`: they yield `undefined` unless the data really has such an own key.
 * Array elements are read by numeric segment (`items.0`); `length` of an array is an own
 * property and so is readable too.
 */
export function getPath(context: unknown, path: readonly string[]): unknown {
  let current: unknown = context;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
