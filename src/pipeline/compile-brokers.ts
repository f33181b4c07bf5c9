/**
 * Validation of what a pipeline says about message brokers: its `sources` (queues and
 * streams whose messages become requests) and its `publish` steps. Every problem is reported
 * at its exact path, like the rest of the compile step.
 */
import { describeValue } from '../conditions/compile';
import { DEFAULT_AMQP_URL, DEFAULT_NATS_URL, urlProblem } from './broker-url';
import { checkObject, checkTargets, type StepScope } from './compile-shared';
import { checkDuration, checkKeys, compileRetry, isRecord, join, report, type IssueSink } from './compile-values';
import type { CompiledPublishStep, CompiledSource } from './types';

export const PUBLISH_KEYS = ['amqp', 'nats', 'body', 'headers', 'timeout', 'retry', 'onError'] as const;

export const DEFAULT_PREFETCH = 100;
export const DEFAULT_MAX_BUFFERED = 10_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
export const DEFAULT_ACK_WAIT_MS = 30_000;
const MAX_SOURCES = 20;
/** JetStream stream and consumer names: no dots, spaces or wildcards. */
const NATS_NAME = /^[A-Za-z0-9_-]{1,200}$/;
/** A NATS subject: dot-separated tokens; `*` and a final `>` are wildcards. */
const SUBJECT = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/;
const PUBLISH_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
const SOURCE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
const AMQP_SOURCE_KEYS: ReadonlySet<string> = new Set(['kind', 'name', 'url', 'queue', 'prefetch', 'maxBuffered', 'maxMessageBytes']);
const NATS_SOURCE_KEYS: ReadonlySet<string> = new Set(['kind', 'name', 'url', 'stream', 'subject', 'durable', 'ackWait', 'prefetch', 'maxBuffered', 'maxMessageBytes']);

function checkUrl(sink: IssueSink, value: unknown, kind: 'amqp' | 'nats', at: string): string {
  const fallback = kind === 'amqp' ? DEFAULT_AMQP_URL : DEFAULT_NATS_URL;
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') {
    report(sink, at, `must be a broker URL such as "${fallback}" (got ${describeValue(value)})`);
    return fallback;
  }
  const problem = urlProblem(value, kind);
  if (problem) report(sink, at, problem);
  return value;
}

function checkInt(sink: IssueSink, value: unknown, at: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    report(sink, at, `must be an integer from 1 to ${max} (got ${describeValue(value)})`);
    return fallback;
  }
  return value as number;
}

function checkName(sink: IssueSink, value: unknown, at: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    report(sink, at, value === undefined ? 'is required' : `must be ${what} (got ${describeValue(value)})`);
    return String(value);
  }
  return value;
}

/** The top-level `sources`: a list of AMQP queues and JetStream streams to consume. */
export function compileSources(sink: IssueSink, value: unknown): CompiledSource[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_SOURCES) {
    report(sink, 'sources', `must be a list of at most ${MAX_SOURCES} sources such as [{ kind: "amqp", queue: "erp.catalog" }] (got ${describeValue(value)})`);
    return [];
  }
  const names = new Set<string>();
  return value.flatMap((raw, i): CompiledSource[] => {
    const at = `sources[${i}]`;
    if (!isRecord(raw) || (raw.kind !== 'amqp' && raw.kind !== 'nats')) {
      report(sink, isRecord(raw) ? join(at, 'kind') : at, `must be an object with kind "amqp" or "nats" (got ${describeValue(isRecord(raw) ? raw.kind : raw)})`);
      return [];
    }
    const kind = raw.kind;
    checkKeys(sink, raw, kind === 'amqp' ? AMQP_SOURCE_KEYS : NATS_SOURCE_KEYS, at);
    const name = raw.name === undefined ? `${kind}-${i}` : checkName(sink, raw.name, join(at, 'name'), SOURCE_NAME, 'a name of letters, digits, ".", "-", "_"');
    if (names.has(name)) report(sink, join(at, 'name'), `duplicate source name "${name}"`);
    names.add(name);
    const common = {
      name,
      url: checkUrl(sink, raw.url, kind, join(at, 'url')),
      prefetch: checkInt(sink, raw.prefetch, join(at, 'prefetch'), DEFAULT_PREFETCH, 10_000),
      maxBuffered: checkInt(sink, raw.maxBuffered, join(at, 'maxBuffered'), DEFAULT_MAX_BUFFERED, 100_000_000),
      maxMessageBytes: checkInt(sink, raw.maxMessageBytes, join(at, 'maxMessageBytes'), DEFAULT_MAX_MESSAGE_BYTES, 64 * 1_048_576),
    };
    if (kind === 'amqp') {
      const queue = raw.queue;
      if (typeof queue !== 'string' || queue === '' || queue.length > 255) {
        report(sink, join(at, 'queue'), queue === undefined ? 'is required' : `must be a queue name of 1 to 255 characters (got ${describeValue(queue)})`);
      }
      return [{ kind, ...common, queue: String(queue) }];
    }
    const stream = checkName(sink, raw.stream, join(at, 'stream'), NATS_NAME, 'a stream name of letters, digits, "-", "_"');
    const durable = checkName(sink, raw.durable, join(at, 'durable'), NATS_NAME, 'a consumer name of letters, digits, "-", "_"');
    const subject = checkName(sink, raw.subject, join(at, 'subject'), SUBJECT, 'a subject such as "erp.catalog.>"');
    const ackWaitMs = checkDuration(sink, raw.ackWait, join(at, 'ackWait'), true) ?? DEFAULT_ACK_WAIT_MS;
    return [{ kind, ...common, stream, subject, durable, ackWaitMs }];
  });
}

type Routes = Pick<CompiledPublishStep, 'id' | 'description' | 'next' | 'prev' | 'join' | 'condition'>;

/** A `kind: 'publish'` step: exactly one of `amqp` and `nats`, a `body`, optional `headers`. */
export function compilePublishStep(scope: StepScope, raw: Record<string, unknown>, at: string, routes: Routes, targets: Set<string>): CompiledPublishStep {
  const step: CompiledPublishStep = { ...routes, kind: 'publish', body: raw.body, headers: {}, onError: [] };
  if ((raw.amqp === undefined) === (raw.nats === undefined)) {
    report(scope, at, 'a publish step needs exactly one of "amqp" ({ exchange, routingKey }) and "nats" ({ subject })');
  }
  if (raw.amqp !== undefined) {
    const a = checkObject(scope, raw.amqp, `${at}.amqp`, true);
    checkKeys(scope, a, new Set(['url', 'exchange', 'routingKey']), `${at}.amqp`);
    if (typeof a.exchange !== 'string' || a.exchange.length > 255) report(scope, `${at}.amqp.exchange`, a.exchange === undefined ? 'is required ("" is the default exchange)' : `must be an exchange name (got ${describeValue(a.exchange)})`);
    if (a.routingKey !== undefined && (typeof a.routingKey !== 'string' || a.routingKey.length > 255)) report(scope, `${at}.amqp.routingKey`, `must be a routing key of at most 255 characters (got ${describeValue(a.routingKey)})`);
    step.amqp = { url: checkUrl(scope, a.url, 'amqp', `${at}.amqp.url`), exchange: String(a.exchange), routingKey: typeof a.routingKey === 'string' ? a.routingKey : '' };
  }
  if (raw.nats !== undefined) {
    const n = checkObject(scope, raw.nats, `${at}.nats`, true);
    checkKeys(scope, n, new Set(['url', 'subject']), `${at}.nats`);
    const subject = checkName(scope, n.subject, `${at}.nats.subject`, PUBLISH_SUBJECT, 'a subject without wildcards such as "erp.orders.created"');
    step.nats = { url: checkUrl(scope, n.url, 'nats', `${at}.nats.url`), subject };
  }
  if (raw.body === undefined) report(scope, `${at}.body`, 'is required: the JSON message to publish');
  for (const [name, v] of Object.entries(checkObject(scope, raw.headers, `${at}.headers`, false))) {
    if (typeof v !== 'string') report(scope, `${at}.headers.${name}`, `must be a string (got ${describeValue(v)})`);
    else step.headers[name] = v;
  }
  const timeoutMs = checkDuration(scope, raw.timeout, `${at}.timeout`, true);
  if (timeoutMs !== undefined) step.timeoutMs = timeoutMs;
  const retry = compileRetry(scope, raw.retry, `${at}.retry`);
  if (retry) step.retry = retry;
  step.onError = checkTargets(scope, raw.onError, `${at}.onError`).map((t) => t.id);
  step.onError.forEach((t) => targets.add(t));
  return step;
}
