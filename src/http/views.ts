/** The JSON shapes of the API (DESIGN.md "Shapes"). Times are ISO-8601 UTC. */
import type { RequestRecord, StepRunRecord } from '../model';
import { OPEN_RUN_STATUSES } from '../model';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const OPEN = new Set<string>(OPEN_RUN_STATUSES);

/** A request with its context; the process variables are shown once, as `vars`, not in `context`. */
export function requestView(request: RequestRecord, runs: StepRunRecord[], fullContext: Record<string, unknown>) {
  const { vars, ...context } = fullContext;
  return {
    id: request.id,
    pipeline: request.pipelineId,
    version: request.version,
    status: request.status,
    businessKey: request.businessKey,
    mode: request.mode,
    test: request.test,
    vars: (vars as Record<string, unknown> | undefined) ?? request.vars ?? {},
    context,
    currentSteps: runs.filter((r) => OPEN.has(r.status)).map((r) => ({ stepId: r.stepId, runId: r.id, attempt: r.attempt, status: r.status, since: iso(r.startedAt) })),
    error: request.error,
    createdAt: iso(request.createdAt),
    updatedAt: iso(request.updatedAt),
    finishedAt: iso(request.finishedAt),
  };
}

export function stepView(r: StepRunRecord) {
  return {
    id: r.id,
    requestId: r.requestId,
    stepId: r.stepId,
    attempt: r.attempt,
    status: r.status,
    kind: r.kind,
    module: r.module,
    transport: r.transport,
    params: r.params,
    output: r.output,
    error: r.error,
    assigned: r.assigned ?? null,
    causedBy: r.causedBy,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    durationMs: r.durationMs,
    endedBy: r.endedBy ?? null,
    polls: r.polls ?? 0,
    lastPollAt: iso(r.lastPollAt ?? null),
  };
}

export function acceptedView(request: RequestRecord) {
  return {
    id: request.id,
    status: request.status,
    links: { self: `/api/requests/${request.id}`, steps: `/api/requests/${request.id}/steps` },
  };
}
