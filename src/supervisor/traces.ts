/**
 * What a committed decision means for tracing (`tracing/spans.ts`): the attempt it closed is
 * recorded as a step span, and the request span is recorded when the request first stops
 * running (a wait or its end). Called by the supervisor after each commit, only when tracing
 * is on.
 */
import type { Logger } from '../log/logger';
import type { CompiledPipeline } from '../pipeline/types';
import { deliveryOf } from '../pipeline/delivery';
import { moduleOf } from '../pipeline/step-module';
import type { Store } from '../store/store';
import { decodeRequestTrace, markRecorded, recordRequestSpan, recordStepSpan, traceLogFields } from '../tracing/spans';
import { tracingOn } from '../tracing/tracing';
import type { Decision, OpenRun, Outcome, RequestState } from './decide';

/** Steps whose run holds the request until something outside answers. */
const HELD_KINDS = new Set(['wait', 'action']);

export interface TraceDeps {
  store: Pick<Store, 'claimTraceContext'>;
  logger: Logger;
}

/** The `trace_id` / `span_id` log fields of a run of a traced request (nothing to spread otherwise). */
export function traced(state: RequestState, runId: string): Record<string, string> | undefined {
  return state.request.traceContext ? (traceLogFields(state.request.traceContext, runId) as Record<string, string>) : undefined;
}

/** Records the spans a committed decision ends. */
export function traceCommit(deps: TraceDeps, pipeline: CompiledPipeline, state: RequestState, d: Decision, closed: OpenRun | undefined, outcome: Outcome): void {
  const request = state.request;
  const stored = request.traceContext;
  // A process that records nothing must not claim the request span either.
  if (!stored || !tracingOn()) return;
  const f = d.commit.finishRun;
  const step = closed ? pipeline.steps[closed.stepId] : undefined;
  if (f && closed && step) {
    recordStepSpan(stored, {
      requestId: request.id, pipeline: pipeline.id, stepId: closed.stepId, runId: f.id, attempt: closed.attempt,
      transport: deliveryOf(pipeline, step.id).transport, kind: step.kind, module: moduleOf(step)?.subsystem ?? null, status: f.status,
      error: f.error as { code?: string; message?: string } | undefined, startedAt: closed.startedAt ?? f.finishedAt - f.durationMs, finishedAt: f.finishedAt,
      held: HELD_KINDS.has(step.kind), answeredBy: 'trace' in outcome ? outcome.trace : undefined,
    });
  }
  if (request.status !== 'waiting' && !d.finished) return;
  const t = decodeRequestTrace(stored);
  if (!t || t.recorded) return;
  const to = markRecorded(t);
  // Marked in memory at once: this process never tries twice, whatever the store says.
  request.traceContext = to;
  const endedAt = d.commit.request.updatedAt;
  void deps.store.claimTraceContext(request.id, stored, to).then((mine) => {
    if (mine) {
      recordRequestSpan(t, { requestId: request.id, pipeline: pipeline.id, status: request.status, createdAt: request.createdAt, endedAt, error: request.error?.message });
    }
  }, (err: unknown) => deps.logger.warn('request span not recorded', { requestId: request.id, error: (err as Error).message }));
}
