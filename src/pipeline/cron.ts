/**
 * Cron arithmetic for `intake.schedule` and scheduled triggers, on the maintained
 * `cron-parser` package. Pure: time comes in as an argument.
 */
import { CronExpressionParser } from 'cron-parser';

/** @default 'UTC': every process computes the same ticks whatever its own TZ. */
export const DEFAULT_TIMEZONE = 'UTC';

/** Returns why `cron` (5 or 6 fields, seconds first when 6) is not usable, or undefined when it is. */
export function checkCron(cron: string, timezone = DEFAULT_TIMEZONE): string | undefined {
  const fields = cron.trim().split(/\s+/).length;
  if (cron.trim() === '' || fields < 5 || fields > 6) return 'must be a cron expression of 5 or 6 fields';
  try {
    CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(0) }).next();
    return undefined;
  } catch (err) {
    return `invalid cron expression: ${(err as Error).message}`;
  }
}

/** Whether `tz` is an IANA time zone this runtime knows. */
export function isTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The latest tick at or before `now` (ms), or undefined when there is none. */
export function prevTick(cron: string, now: number, timezone = DEFAULT_TIMEZONE): number | undefined {
  try {
    return CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(now + 1) }).prev().getTime();
  } catch {
    return undefined;
  }
}

/** The first tick strictly after `now` (ms). */
export function nextTick(cron: string, now: number, timezone = DEFAULT_TIMEZONE): number {
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(now) }).next().getTime();
}

/** Ticks in `(after, upTo]`, oldest first: the most recent `limit` of them. */
export function ticksBetween(cron: string, after: number, upTo: number, limit: number, timezone = DEFAULT_TIMEZONE): number[] {
  const out: number[] = [];
  const it = CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(upTo + 1) });
  while (out.length < limit && it.hasPrev()) {
    const t = it.prev().getTime();
    if (t <= after) break;
    out.unshift(t);
  }
  return out;
}
