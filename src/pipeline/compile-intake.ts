/**
 * Validation of the intake options that combine with any release policy (idempotency window,
 * business key, callback URL) and of the pipeline's cron triggers (`schedule`). Like the rest
 * of the compile step, it reports every problem at its exact path.
 */
import { describeValue } from '../conditions/compile';
import { parsePath } from '../conditions/path';
import { checkCron } from './cron';
import { checkDuration, checkKeys, checkTimezone, isRecord, join, report, type IssueSink } from './compile-values';
import type { BusinessKeyPolicy, BusinessKeyReuse, CompiledIntakeOptions, CompiledTrigger } from './types';

/** @default 24 h: how long an `Idempotency-Key` names the same request. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 86_400_000;
export const BUSINESS_KEY_POLICIES: readonly BusinessKeyPolicy[] = ['reject', 'queue', 'return-existing'];
export const BUSINESS_KEY_REUSE: readonly BusinessKeyReuse[] = ['allow', 'reject-duplicate', 'return-existing', 'allow-after-failure'];
/** @default 24 h: how long `businessKey.reuse` applies after a request ended. */
export const DEFAULT_REUSE_WINDOW_MS = 86_400_000;
const BUSINESS_KEY_KEYS: ReadonlySet<string> = new Set(['path', 'onConflict', 'reuse', 'reuseWindow']);
const TRIGGER_KEYS: ReadonlySet<string> = new Set(['id', 'cron', 'timezone', 'payload', 'catchUp']);
const CATCH_UP = ['latest', 'all', 'none'] as const;
const TRIGGER_ID = /^[a-z0-9][a-z0-9-_]{0,62}$/;
/** The most cron triggers one pipeline may declare. */
const MAX_TRIGGERS = 20;

/** True for an absolute http(s) URL of reasonable length. */
export function isCallbackUrl(value: string): boolean {
  if (value.length > 2000) return false;
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** `intake.idempotencyWindow`, `intake.businessKey` (with `reuse`, `reuseWindow`), `intake.callbackUrl`, `intake.maxActive`. */
export function compileIntakeOptions(sink: IssueSink, value: unknown): CompiledIntakeOptions {
  const options: CompiledIntakeOptions = { idempotencyWindowMs: DEFAULT_IDEMPOTENCY_WINDOW_MS };
  if (!isRecord(value)) return options; // compileIntake reports a non-object
  options.idempotencyWindowMs = checkDuration(sink, value.idempotencyWindow, 'intake.idempotencyWindow', true) ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
  const bk = value.businessKey;
  if (bk !== undefined) {
    if (!isRecord(bk)) report(sink, 'intake.businessKey', `must be an object with onConflict and an optional path (got ${describeValue(bk)})`);
    else {
      checkKeys(sink, bk, BUSINESS_KEY_KEYS, 'intake.businessKey');
      const policy = bk.onConflict as BusinessKeyPolicy;
      if (!BUSINESS_KEY_POLICIES.includes(policy)) {
        report(sink, 'intake.businessKey.onConflict', `must be one of ${BUSINESS_KEY_POLICIES.map((p) => `"${p}"`).join(', ')} (got ${describeValue(bk.onConflict)})`);
      }
      const reuse = (bk.reuse ?? 'allow') as BusinessKeyReuse;
      if (!BUSINESS_KEY_REUSE.includes(reuse)) {
        report(sink, 'intake.businessKey.reuse', `must be one of ${BUSINESS_KEY_REUSE.map((p) => `"${p}"`).join(', ')} (got ${describeValue(bk.reuse)})`);
      }
      const reuseWindowMs = checkDuration(sink, bk.reuseWindow, 'intake.businessKey.reuseWindow', true) ?? DEFAULT_REUSE_WINDOW_MS;
      const compiled: NonNullable<CompiledIntakeOptions['businessKey']> = { onConflict: policy, reuse, reuseWindowMs };
      if (bk.path !== undefined) {
        if (typeof bk.path !== 'string' || !/^payload(\.[^.\s]+)+$/.test(bk.path)) {
          report(sink, 'intake.businessKey.path', `must be a path into the payload such as "payload.sku" (got ${describeValue(bk.path)})`);
        } else compiled.path = parsePath(bk.path);
      }
      options.businessKey = compiled;
    }
  }
  if (value.callbackUrl !== undefined) {
    if (typeof value.callbackUrl !== 'string' || !isCallbackUrl(value.callbackUrl)) {
      report(sink, 'intake.callbackUrl', `must be an absolute http(s) URL (got ${describeValue(value.callbackUrl)})`);
    } else options.callbackUrl = value.callbackUrl;
  }
  if (value.maxActive !== undefined) {
    if (!Number.isInteger(value.maxActive) || (value.maxActive as number) <= 0) report(sink, 'intake.maxActive', `must be a positive integer (got ${describeValue(value.maxActive)})`);
    else options.maxActive = value.maxActive as number;
  }
  return options;
}

/** The top-level `schedule`: a list of cron triggers that create requests. */
export function compileTriggers(sink: IssueSink, value: unknown): CompiledTrigger[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_TRIGGERS) {
    report(sink, 'schedule', `must be a list of at most ${MAX_TRIGGERS} triggers such as [{ cron: "0 3 * * *", payload: {} }] (got ${describeValue(value)})`);
    return [];
  }
  const seen = new Set<string>();
  return value.flatMap((raw, i): CompiledTrigger[] => {
    const at = `schedule[${i}]`;
    if (!isRecord(raw)) {
      report(sink, at, `must be an object with a cron (got ${describeValue(raw)})`);
      return [];
    }
    checkKeys(sink, raw, TRIGGER_KEYS, at);
    const id = raw.id === undefined ? `trigger-${i}` : raw.id;
    if (typeof id !== 'string' || !TRIGGER_ID.test(id)) report(sink, join(at, 'id'), `must be a slug matching ${TRIGGER_ID.source} (got ${describeValue(id)})`);
    else if (seen.has(id)) report(sink, join(at, 'id'), `duplicate trigger id "${id}"`);
    seen.add(String(id));
    const timezone = checkTimezone(sink, raw.timezone, join(at, 'timezone'));
    const problem = typeof raw.cron === 'string' ? checkCron(raw.cron, timezone) : raw.cron === undefined ? 'is required' : 'must be a cron expression of 5 or 6 fields';
    if (problem) report(sink, join(at, 'cron'), raw.cron === undefined ? problem : `${problem} (got ${describeValue(raw.cron)})`);
    if (raw.payload !== undefined && !isRecord(raw.payload)) report(sink, join(at, 'payload'), `must be an object (got ${describeValue(raw.payload)})`);
    const catchUp = raw.catchUp ?? 'latest';
    if (!CATCH_UP.includes(catchUp as (typeof CATCH_UP)[number])) {
      report(sink, join(at, 'catchUp'), `must be one of ${CATCH_UP.map((c) => `"${c}"`).join(', ')} (got ${describeValue(raw.catchUp)})`);
    }
    const trigger: CompiledTrigger = {
      id: String(id),
      cron: String(raw.cron).trim(),
      payload: isRecord(raw.payload) ? raw.payload : {},
      catchUp: catchUp as CompiledTrigger['catchUp'],
    };
    if (timezone !== undefined) trigger.timezone = timezone;
    return [trigger];
  });
}
