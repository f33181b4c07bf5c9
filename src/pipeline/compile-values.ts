/**
 * Validation of a pipeline's option values (durations, retry policies, intake), shared by the
 * pipeline and step compilers. Each checker reports every problem at its exact path and
 * returns the compiled value, which is only meaningful when nothing was reported.
 */
import isPlainObject from 'lodash/isPlainObject';
import { describeValue } from '../conditions/compile';
import type { ValidationIssue } from '../errors';
import { checkCron, isTimezone } from './cron';
import { parseDuration } from './duration';
import type { CompiledIntake, RetryPolicy } from './types';

/** Where issues go while one pipeline is compiled. */
export interface IssueSink {
  source: string;
  issues: ValidationIssue[];
}

/** Records one issue. */
export function report(sink: IssueSink, path: string, message: string): void {
  sink.issues.push({ source: sink.source, path, message });
}

/** A plain (JSON-like) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value);
}

/** Reports every key of `obj` not in `allowed`: typo protection (`nxt`, `tiemout`). */
export function checkKeys(sink: IssueSink, obj: Record<string, unknown>, allowed: ReadonlySet<string>, at: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) report(sink, join(at, key), `unknown key "${key}"`);
  }
}

/** Joins a parent path and a key: `join('', 'id')` is `id`, `join('intake', 'rate')` is `intake.rate`. */
export function join(at: string, key: string): string {
  return at === '' ? key : `${at}.${key}`;
}

/**
 * Parses an optional duration at `at`. `positive` rejects 0 (a timeout of 0 ms can never be
 * met). Returns `undefined` when absent or invalid.
 */
export function checkDuration(sink: IssueSink, value: unknown, at: string, positive = false): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || (positive && ms === 0)) {
    const what = positive ? 'a positive duration' : 'a duration';
    report(sink, at, `must be ${what} such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got ${describeValue(value)})`);
    return undefined;
  }
  return ms;
}

/** An optional string field. */
export function checkString(sink: IssueSink, value: unknown, at: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    report(sink, at, `must be a string (got ${describeValue(value)})`);
    return undefined;
  }
  return value;
}

/** A required positive integer. */
function checkPositiveInteger(sink: IssueSink, value: unknown, at: string): number {
  if (!Number.isInteger(value) || (value as number) <= 0) {
    report(sink, at, value === undefined ? 'is required' : `must be a positive integer (got ${describeValue(value)})`);
    return 1;
  }
  return value as number;
}

/** The engine's retry defaults, applied to every field a retry object leaves out. */
export const RETRY_DEFAULTS: Readonly<RetryPolicy> = Object.freeze({
  attempts: 1,
  backoffMs: 1_000,
  factor: 2,
  maxDelayMs: 300_000,
  jitter: 0.2,
});

const RETRY_KEYS: ReadonlySet<string> = new Set(['attempts', 'backoff', 'factor', 'maxDelay', 'jitter']);

function inRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
}

/**
 * Validates a retry object and applies {@link RETRY_DEFAULTS} to the fields it leaves out.
 * `undefined` in, `undefined` out: the dispatcher then falls back to the module's policy.
 */
export function compileRetry(sink: IssueSink, value: unknown, at: string): RetryPolicy | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) {
    report(sink, at, `must be an object (got ${describeValue(value)})`);
    return undefined;
  }
  checkKeys(sink, value, RETRY_KEYS, at);
  const policy: RetryPolicy = { ...RETRY_DEFAULTS };
  const { attempts, factor, jitter } = value;
  if (attempts !== undefined) {
    if (Number.isInteger(attempts) && inRange(attempts, 1, 100)) policy.attempts = attempts;
    else report(sink, `${at}.attempts`, `must be an integer from 1 to 100 (got ${describeValue(attempts)})`);
  }
  if (factor !== undefined) {
    if (inRange(factor, 1, Number.MAX_VALUE)) policy.factor = factor;
    else report(sink, `${at}.factor`, `must be a number >= 1 (got ${describeValue(factor)})`);
  }
  if (jitter !== undefined) {
    if (inRange(jitter, 0, 1)) policy.jitter = jitter;
    else report(sink, `${at}.jitter`, `must be a number from 0 to 1 (got ${describeValue(jitter)})`);
  }
  policy.backoffMs = checkDuration(sink, value.backoff, `${at}.backoff`) ?? policy.backoffMs;
  policy.maxDelayMs = checkDuration(sink, value.maxDelay, `${at}.maxDelay`) ?? policy.maxDelayMs;
  return policy;
}

const INTAKE_FORMS = ['mode', 'rate', 'batch', 'schedule'] as const;
/** Keys that combine with any form: `timezone` (of a schedule) here, the rest in `compileIntakeOptions`. */
const INTAKE_OPTION_KEYS = ['timezone', 'idempotencyWindow', 'businessKey', 'callbackUrl', 'maxActive'] as const;

/**
 * Validates the intake policy: `{ mode: 'immediate' }` (the default, also `{}`),
 * `{ rate: { max, per } }`, `{ batch: { size, every } }` or `{ schedule: '<cron>' }`.
 * The cron is parsed with `cron-parser` (5 fields, or 6 with seconds first), in `timezone`
 * (default UTC). The options that combine with any form are compiled by `compileIntakeOptions`.
 */
export function compileIntake(sink: IssueSink, value: unknown): CompiledIntake {
  const immediate: CompiledIntake = { kind: 'immediate' };
  if (value === undefined) return immediate;
  if (!isRecord(value)) {
    report(sink, 'intake', `must be an object (got ${describeValue(value)})`);
    return immediate;
  }
  checkKeys(sink, value, new Set<string>([...INTAKE_FORMS, ...INTAKE_OPTION_KEYS]), 'intake');
  const forms = INTAKE_FORMS.filter((form) => value[form] !== undefined);
  if (forms.length > 1) {
    report(sink, 'intake', `give only one of ${forms.join(', ')}`);
    return immediate;
  }
  if (value.timezone !== undefined && forms[0] !== 'schedule') report(sink, 'intake.timezone', 'applies only to a schedule');
  switch (forms[0]) {
    case undefined:
      return immediate;
    case 'mode':
      if (value.mode !== 'immediate') report(sink, 'intake.mode', `must be "immediate" (got ${describeValue(value.mode)})`);
      return immediate;
    case 'rate': {
      const rate = checkPair(sink, value.rate, 'intake.rate', 'max', 'per');
      return { kind: 'rate', max: rate.count, perMs: rate.ms };
    }
    case 'batch': {
      const batch = checkPair(sink, value.batch, 'intake.batch', 'size', 'every');
      return { kind: 'batch', size: batch.count, everyMs: batch.ms };
    }
    case 'schedule': {
      const cron = value.schedule;
      const timezone = checkTimezone(sink, value.timezone, 'intake.timezone');
      const problem = typeof cron === 'string' ? checkCron(cron, timezone) : 'must be a cron expression of 5 or 6 fields';
      if (problem) report(sink, 'intake.schedule', `${problem} (got ${describeValue(cron)})`);
      return timezone === undefined ? { kind: 'schedule', cron: String(cron).trim() } : { kind: 'schedule', cron: String(cron).trim(), timezone };
    }
  }
}

/** An optional IANA time zone (`'Europe/Moscow'`). */
export function checkTimezone(sink: IssueSink, value: unknown, at: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isTimezone(value)) {
    report(sink, at, `must be an IANA time zone such as "UTC" or "Europe/Moscow" (got ${describeValue(value)})`);
    return undefined;
  }
  return value;
}

/** `{ max, per }` / `{ size, every }`: a positive integer and a positive duration. */
function checkPair(sink: IssueSink, value: unknown, at: string, countKey: string, durationKey: string) {
  if (!isRecord(value)) {
    report(sink, at, `must be an object with ${countKey} and ${durationKey} (got ${describeValue(value)})`);
    return { count: 1, ms: 1 };
  }
  checkKeys(sink, value, new Set([countKey, durationKey]), at);
  const count = checkPositiveInteger(sink, value[countKey], `${at}.${countKey}`);
  const duration = value[durationKey];
  if (duration === undefined) report(sink, `${at}.${durationKey}`, 'is required');
  const ms = checkDuration(sink, duration, `${at}.${durationKey}`, true) ?? 1;
  return { count, ms };
}
