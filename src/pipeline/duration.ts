/**
 * Durations as pipelines write them (`'500ms'`, `'10s'`, `'5m'`, `'1h'`, `'1d'`, or a number of
 * milliseconds), turned into milliseconds once, at compile time.
 */
import type { Duration } from './types';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a {@link Duration} into whole milliseconds (rounded), or `undefined` when the value
 * is not a valid duration: negative, not finite, a bare numeric string (`'500'`: the unit is
 * required in strings so that `'5'` is never silently read as 5 ms), or an unknown unit.
 * The input is typed `unknown` because `.pipeline.json` files are untrusted.
 */
export function parseDuration(d: Duration | unknown): number | undefined {
  if (typeof d === 'number') return Number.isFinite(d) && d >= 0 ? Math.round(d) : undefined;
  if (typeof d !== 'string') return undefined;
  const match = DURATION.exec(d);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}
