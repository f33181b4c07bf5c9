/**
 * Turns a checked request and a plan into the one guarded write that moves it (`RequestMove`):
 * its version, its runs' step ids per the mapping (open runs, and completed ones, whose outputs
 * are the context under their step ids), its join arrivals and error. `vars` stay. Pure.
 */
import { newId } from '../ids';
import type { CompiledPipeline } from '../pipeline/types';
import type { RequestMove } from '../store/migration-store';
import { isInRow, openRunJson } from '../store/rows';
import { maskedSecrets, renderValue } from '../templates/render';
import { openRuns, type MigrationSubject } from './check';
import { mapStep, type MigrationPlan } from './plan';

/** Who asked for a move, for the audit. */
export interface MigrationActor {
  actor: string;
  via?: string | null;
}

/** The context a wait key is rendered from: payload, request, vars and the latest outputs. */
function contextOf(s: MigrationSubject, plan: MigrationPlan): Record<string, unknown> {
  const r = s.request;
  const context: Record<string, unknown> = {
    payload: r.payload,
    request: { id: r.id, pipeline: r.pipelineId, version: plan.toVersion, businessKey: r.businessKey, mode: r.mode, test: r.test, actor: r.submittedBy ?? null },
    vars: r.vars ?? {},
  };
  for (const run of s.runs) if (run.status === 'completed') context[mapStep(plan, run.stepId)] = run.output;
  return context;
}

function rewaitsOf(s: MigrationSubject, to: CompiledPipeline, plan: MigrationPlan): RequestMove['rewaits'] {
  const out: RequestMove['rewaits'] = [];
  let context: Record<string, unknown> | undefined;
  for (const run of openRuns(s)) {
    const target = mapStep(plan, run.stepId);
    const step = to.steps[target];
    if (plan.waits?.[target] !== 'rekey' || step?.kind !== 'wait' || !step.event) continue;
    context ??= contextOf(s, plan);
    let key: string;
    try {
      key = String(renderValue(step.event.key, context, maskedSecrets)).slice(0, 255);
    } catch {
      key = '';
    }
    out.push({ runId: run.id, event: step.event.name, key });
  }
  return out;
}

/** The write that moves one checked request. `now` stamps it. */
export function buildMove(s: MigrationSubject, to: CompiledPipeline, plan: MigrationPlan, who: MigrationActor, now: number, migrationId?: string): RequestMove {
  const r = s.request;
  const renames: RequestMove['renames'] = [];
  for (const run of s.runs) {
    const stepId = mapStep(plan, run.stepId);
    if (stepId === run.stepId || !to.steps[stepId]) continue;
    // A run open in the request's row is renamed in its JSON there (`openRunJson`).
    renames.push(isInRow(run) ? { runId: run.id, stepId, openRun: openRunJson({ ...run, stepId }) } : { runId: run.id, stepId });
  }
  const joins = Object.fromEntries(Object.entries(r.joins).map(([join, arrived]) => [mapStep(plan, join), arrived.map((b) => mapStep(plan, b))]));
  const error = r.error ? { ...r.error, stepId: mapStep(plan, r.error.stepId) } : null;
  const mapping = Object.fromEntries(Object.entries(plan.mapping).filter(([a, b]) => a !== b));
  return {
    requestId: r.id,
    expectRev: r.rev,
    fromVersion: r.version,
    toVersion: plan.toVersion,
    joins,
    error,
    updatedAt: now,
    renames,
    rewaits: rewaitsOf(s, to, plan),
    audit: {
      id: newId(now), requestId: r.id, actor: who.actor, via: who.via ?? null, action: 'migrate', outcome: 'accepted', createdAt: now,
      details: { fromVersion: r.version, toVersion: plan.toVersion, mapping, ...(plan.waits ? { waits: plan.waits } : {}), ...(migrationId ? { migrationId } : {}) },
    },
  };
}
