/**
 * OpenTelemetry for one process: the Node SDK with its OTLP exporter, configured by the
 * standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`:
 * `http/protobuf`, `http/json` or `grpc`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …).
 *
 * Off unless an OTLP endpoint is set or `CONVEYOR_TRACING=1`; `CONVEYOR_TRACING=0` and
 * `OTEL_SDK_DISABLED=true` turn it off whatever else is set. Off, every helper in
 * `tracing/` returns after one boolean test: no span, no context, no column write.
 *
 * Conveyor's spans outlive processes (a step is sent by one engine, run by a worker and
 * committed by another engine), so most are recorded after the fact, by the process that
 * commits their end, with the ids they were given when they began. The SDK makes ids with
 * the generator below, which hands out such a known id when one is set just before
 * `startSpan` (synchronously, so no other span can take it).
 */
import { context, isSpanContextValid, ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { randomBytes } from 'node:crypto';
import { processEnv, type Env } from '../config';

/** Where tracing is switched on and named (read once from the environment). */
export interface TracingConfig {
  enabled: boolean;
  /** `service.name` when `OTEL_SERVICE_NAME` is not set. */
  serviceName: string;
}

/** Reads the switch: an OTLP endpoint or `CONVEYOR_TRACING=1` turns tracing on. */
export function tracingConfig(role: string, env: Env = processEnv()): TracingConfig {
  const flag = (env.CONVEYOR_TRACING ?? '').trim().toLowerCase();
  const off = flag === '0' || flag === 'false' || (env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';
  const endpoint = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  return { enabled: !off && (endpoint || flag === '1' || flag === 'true'), serviceName: env.OTEL_SERVICE_NAME || `conveyor-${role}` };
}

/** Random ids, or the one set by {@link withIds} for the next span started. */
class PresetIdGenerator {
  traceId: string | undefined;
  spanId: string | undefined;

  generateTraceId(): string {
    const id = this.traceId ?? randomBytes(16).toString('hex');
    this.traceId = undefined;
    return id;
  }

  generateSpanId(): string {
    const id = this.spanId ?? randomBytes(8).toString('hex');
    this.spanId = undefined;
    return id;
  }
}

let sdk: NodeSDK | undefined;
let tracer: Tracer | undefined;
const ids = new PresetIdGenerator();

/** True once {@link startTracing} ran with tracing enabled. */
export function tracingOn(): boolean {
  return tracer !== undefined;
}

/** The tracer; only call when {@link tracingOn}. */
export function tracerOf(): Tracer {
  if (!tracer) throw new Error('tracing is off');
  return tracer;
}

/**
 * Starts the SDK when `config.enabled`. Resolves to whether tracing is on. Metrics stay with
 * Prometheus (`/metrics`), so no OTel metric reader or log exporter is set up. The SDK (and
 * its exporters) is loaded only here: a process with tracing off never loads it.
 */
export async function startTracing(config: TracingConfig): Promise<boolean> {
  if (!config.enabled || sdk) return tracingOn();
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  sdk = new NodeSDK({
    // `OTEL_SERVICE_NAME` when set (tracingConfig read it), else `conveyor-<role>`.
    serviceName: config.serviceName,
    idGenerator: ids,
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  tracer = trace.getTracer('conveyor');
  return true;
}

/** Exports what is buffered, then stops the SDK (before a process exits). */
export async function stopTracing(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  tracer = undefined;
  if (!s) return;
  await s.shutdown().catch(() => undefined);
  // Unregistered, so that a later start (tests) can register again.
  trace.disable();
  context.disable();
}

/** Runs `start` (which must start one span synchronously) with the given ids. */
export function withIds<T>(traceId: string | undefined, spanId: string | undefined, start: () => T): T {
  ids.traceId = traceId;
  ids.spanId = spanId;
  try {
    return start();
  } finally {
    ids.traceId = undefined;
    ids.spanId = undefined;
  }
}

/** A new random span id (16 hex digits). */
export const newSpanId = (): string => randomBytes(8).toString('hex');

/** `version-traceid-parentid-flags`, lower-case hex; a later version may append fields. */
const TRACEPARENT = /^\s?([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\s?$/;

/**
 * The span context of a W3C `traceparent` header value, or undefined when it is not valid
 * (the rules of the W3C Trace Context spec, as `@opentelemetry/core`'s propagator applies
 * them, without loading it: version `ff` and all-zero ids are invalid, version `00` has
 * exactly four fields).
 */
export function parseTraceparent(value: string | null | undefined): SpanContext | undefined {
  const m = value ? TRACEPARENT.exec(value) : null;
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5])) return undefined;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16), isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}

/** The `traceparent` header value of a span context. */
export function formatTraceparent(sc: Pick<SpanContext, 'traceId' | 'spanId' | 'traceFlags'>): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00'}`;
}

/** A context whose current span is the remote span of `traceparent` (the root context if none). */
export function contextOf(traceparent: string | null | undefined): Context {
  const sc = parseTraceparent(traceparent);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** The `trace_id` and `span_id` log fields of the active span, when there is one. */
export function activeLogFields(): { trace_id: string; span_id: string } | undefined {
  if (!tracer) return undefined;
  const sc = trace.getSpanContext(context.active());
  return sc ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined;
}
