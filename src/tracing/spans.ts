/**
 * Conveyor's spans, in the trace of the request's caller (W3C `traceparent` on submit) or in
 * a trace of their own:
 *
 * - `conveyor.request <pipeline>`: from acceptance until the request first stops running (its
 *   first wait, or its end). Its ids are chosen at acceptance and stored with the request
 *   (`requests.trace_context`), so every process can make children of it; it is recorded
 *   once, by the process whose commit ends that first segment. A long wait keeps no span
 *   open: what happens after it is still a child of the request span, and the event that
 *   ended the wait is linked from the wait step's span.
 * - `conveyor.step <step>`: one per step attempt (one per run), a child of the request span,
 *   from dispatch to the committed result. Its span id is derived from the run id, so the
 *   engine that sends the step, the module that runs it (`traceparent` header, bull job data)
 *   and the engine that commits the result all agree on it without talking.
 * - `conveyor.module <name>` (worker, module server) and `conveyor.event <name>` (API):
 *   server-side spans of the caller's `traceparent`.
 *
 * Every function here returns at once when tracing is off.
 */
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Link, type Span } from '@opentelemetry/api';
import { createHash } from 'node:crypto';
import { contextOf, formatTraceparent, newSpanId, parseTraceparent, tracerOf, tracingOn, withIds } from './tracing';

/** What `requests.trace_context` holds: the request span's traceparent, its parent span id, and whether it was recorded. */
export interface RequestTrace {
  traceId: string;
  spanId: string;
  sampled: boolean;
  parentSpanId: string | null;
  recorded: boolean;
}

/** Encodes a {@link RequestTrace} as stored: `00-<trace>-<span>-<flags>;<parent span>[;done]`. */
export function encodeRequestTrace(t: RequestTrace): string {
  return `${formatTraceparent({ traceId: t.traceId, spanId: t.spanId, traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE })};${t.parentSpanId ?? ''}${t.recorded ? ';done' : ''}`;
}

/** Decodes a stored trace context; undefined when absent or not valid. */
export function decodeRequestTrace(stored: string | null | undefined): RequestTrace | undefined {
  if (!stored) return undefined;
  const [tp, parent, done] = stored.split(';');
  const sc = parseTraceparent(tp);
  if (!sc) return undefined;
  return {
    traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
    parentSpanId: parent && /^[0-9a-f]{16}$/.test(parent) ? parent : null, recorded: done === 'done',
  };
}

/**
 * Chooses the request span's ids at acceptance: a child of the caller's `traceparent` when it
 * is valid (an invalid one is ignored, as W3C says), else the root of a new trace. The
 * sampler decides here, once. Returns the value to store, or null when tracing is off.
 */
export function beginRequestTrace(callerTraceparent: string | null | undefined, attrs: { requestId: string; pipeline: string }): string | null {
  if (!tracingOn()) return null;
  const caller = parseTraceparent(callerTraceparent);
  // Started only to ask the sampler and take the ids; it is recorded (again, with these ids) when it ends.
  const probe = withIds(undefined, newSpanId(), () => tracerOf().startSpan(`conveyor.request ${attrs.pipeline}`, { attributes: requestAttributes(attrs) }, contextOf(callerTraceparent)));
  const sc = probe.spanContext();
  return encodeRequestTrace({
    traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
    parentSpanId: caller?.spanId ?? null, recorded: false,
  });
}

const requestAttributes = (a: { requestId: string; pipeline: string }): Attributes => ({ 'conveyor.request.id': a.requestId, 'conveyor.pipeline': a.pipeline });

/** The span id of a run's attempt span: derived from the run id, the same in every process. */
export function spanIdOfRun(runId: string): string {
  const id = createHash('sha256').update(runId).digest('hex').slice(0, 16);
  return id === '0000000000000000' ? '0000000000000001' : id;
}

/**
 * The `traceparent` of a run's attempt span, to send with the step (undefined when the request
 * is untraced). Passed on even by a process that records nothing itself.
 */
export function stepTraceparent(stored: string | null | undefined, runId: string): string | undefined {
  const t = decodeRequestTrace(stored);
  if (!t) return undefined;
  return formatTraceparent({ traceId: t.traceId, spanId: spanIdOfRun(runId), traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
}

/** `trace_id` / `span_id` log fields for a request (and one of its runs). */
export function traceLogFields(stored: string | null | undefined, runId?: string): { trace_id?: string; span_id?: string } {
  const t = decodeRequestTrace(stored);
  return t ? { trace_id: t.traceId, span_id: runId ? spanIdOfRun(runId) : t.spanId } : {};
}

/** One committed step attempt. */
export interface StepAttempt {
  requestId: string;
  pipeline: string;
  stepId: string;
  runId: string;
  attempt: number;
  transport: string;
  kind: string;
  module: string | null;
  status: 'completed' | 'failed';
  error?: { code?: string; message?: string } | null;
  startedAt: number;
  finishedAt: number;
  /** A wait or action step: the span covers the moment it was answered, and says how long it waited. */
  held: boolean;
  /** The span of what answered it (an event's), linked. */
  answeredBy?: string;
}

/** Records a committed step attempt as a child of the request span. */
export function recordStepSpan(stored: string | null | undefined, a: StepAttempt): void {
  if (!tracingOn()) return;
  const t = decodeRequestTrace(stored);
  if (!t || !t.sampled) return;
  const parent = trace.setSpanContext(context.active(), { traceId: t.traceId, spanId: t.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
  const links: Link[] = [];
  const by = parseTraceparent(a.answeredBy);
  if (by) links.push({ context: by, attributes: { 'conveyor.link': 'answered by' } });
  const attributes: Attributes = {
    'conveyor.request.id': a.requestId, 'conveyor.pipeline': a.pipeline, 'conveyor.step.id': a.stepId, 'conveyor.run.id': a.runId,
    'conveyor.attempt': a.attempt, 'conveyor.transport': a.transport, 'conveyor.step.kind': a.kind, 'conveyor.step.status': a.status,
  };
  if (a.module) attributes['conveyor.module'] = a.module;
  if (a.error?.code) attributes['conveyor.error.code'] = a.error.code;
  if (a.error?.message) attributes['conveyor.error.message'] = a.error.message;
  // A wait may last days: its span is the answer, not the waiting.
  const start = a.held ? a.finishedAt : Math.min(a.startedAt, a.finishedAt);
  if (a.held) attributes['conveyor.waited_ms'] = Math.max(0, a.finishedAt - a.startedAt);
  const span = withIds(undefined, spanIdOfRun(a.runId), () => tracerOf().startSpan(`conveyor.step ${a.stepId}`, { kind: SpanKind.INTERNAL, startTime: start, attributes, links }, parent));
  span.setStatus(a.status === 'completed' ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: a.error?.message ?? a.error?.code ?? 'failed' });
  span.end(a.finishedAt);
}

/**
 * Records the request span, once its first segment ended (`status`: where it went). The
 * caller claims the stored value first (`recorded` in {@link decodeRequestTrace}), so that one
 * process records it.
 */
export function recordRequestSpan(t: RequestTrace, a: { requestId: string; pipeline: string; status: string; createdAt: number; endedAt: number; error?: string }): void {
  if (!tracingOn() || !t.sampled) return;
  const parent = t.parentSpanId
    ? trace.setSpanContext(context.active(), { traceId: t.traceId, spanId: t.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
    : trace.deleteSpan(context.active());
  const span = withIds(t.traceId, t.spanId, () => tracerOf().startSpan(`conveyor.request ${a.pipeline}`, {
    kind: SpanKind.SERVER, startTime: a.createdAt, attributes: { ...requestAttributes(a), 'conveyor.request.status': a.status },
  }, parent));
  span.setStatus(a.status === 'error_stop' ? { code: SpanStatusCode.ERROR, message: a.error ?? 'error_stop' } : { code: SpanStatusCode.OK });
  span.end(Math.max(a.endedAt, a.createdAt));
}

/** The stored value once the request span is recorded (what a process claims). */
export function markRecorded(t: RequestTrace): string {
  return encodeRequestTrace({ ...t, recorded: true });
}

/**
 * Starts a span for work done on behalf of a remote caller (its `traceparent`, if valid):
 * an event received, a module run by a worker or module server. Undefined when tracing is off.
 */
export function startRemoteSpan(name: string, traceparent: string | null | undefined, attributes: Attributes, kind: SpanKind = SpanKind.SERVER): Span | undefined {
  if (!tracingOn()) return undefined;
  return tracerOf().startSpan(name, { kind, attributes }, contextOf(traceparent));
}

/** The attributes of a module's own span (worker, module server). */
export function moduleSpanAttributes(call: { requestId: string; pipeline: string; stepId: string; attempt: number; module: string }): Attributes {
  return { 'conveyor.request.id': call.requestId, 'conveyor.pipeline': call.pipeline, 'conveyor.step.id': call.stepId, 'conveyor.attempt': call.attempt, 'conveyor.module': call.module };
}

/** Ends a span started by {@link startRemoteSpan}, marking an error when there is one. */
export function endSpan(span: Span | undefined, error?: { code?: string; message?: string } | null): void {
  if (!span) return;
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message ?? error.code });
  span.end();
}

/** The `traceparent` of a span (to pass on), undefined for none. */
export function traceparentOf(span: Span | undefined): string | undefined {
  return span ? formatTraceparent(span.spanContext()) : undefined;
}

/** Runs `fn` with `span` (or the remote span of `traceparent`) as the active span, so log lines carry its ids. */
export function runInSpan<T>(span: Span | string | undefined, fn: () => T): T {
  if (!span || !tracingOn()) return fn();
  const ctx = typeof span === 'string' ? contextOf(span) : trace.setSpan(context.active(), span);
  return context.with(ctx, fn);
}

/**
 * The headers that carry a step's trace on a message (`traceparent`): HTTP modules get them
 * as request headers, and a broker publish step (AMQP, NATS) should add them to the message
 * headers. Empty when the call is not traced.
 */
export function traceHeaders(call: { traceparent?: string }): Record<string, string> {
  return call.traceparent ? { traceparent: call.traceparent } : {};
}
