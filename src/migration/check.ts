/**
 * `checkMigration`: whether one request can move to another version of its pipeline under a
 * plan, and if not, why, path by path (the style of `conveyor validate`). Pure: it reads the
 * request as stored, both compiled versions and the plan, and changes nothing.
 */
import { OPEN_RUN_STATUSES, type RequestRecord, type StepRunRecord } from '../model';
import type { CompiledPipeline, CompiledStep } from '../pipeline/types';
import { mapStep, type MigrationPlan, type MigrationProblem } from './plan';
import { reachable, stepReads } from './refs';

/** A request as the store holds it: the record and its step runs in `seq` order. */
export interface MigrationSubject {
  request: RequestRecord;
  runs: StepRunRecord[];
}

/** Statuses a request may be moved in: it has not ended. */
export const MOVABLE_STATUSES = ['buffered', 'running', 'waiting', 'error_stop'] as const;
const OPEN = new Set<string>(OPEN_RUN_STATUSES);
const CONTEXT_ROOTS = new Set(['payload', 'request', 'vars', 'secrets']);

/** The open runs of a request (pending, dispatched, waiting). */
export const openRuns = (s: MigrationSubject): StepRunRecord[] => s.runs.filter((r) => OPEN.has(r.status));

function checkTarget(s: MigrationSubject, from: CompiledPipeline, to: CompiledPipeline | undefined, plan: MigrationPlan): MigrationProblem[] {
  const r = s.request;
  if (!to) return [{ path: 'toVersion', message: `pipeline "${r.pipelineId}" has no version ${plan.toVersion}` }];
  const out: MigrationProblem[] = [];
  if (to.id !== from.id || to.id !== r.pipelineId) out.push({ path: 'toVersion', message: `version ${plan.toVersion} is of pipeline "${to.id}", not "${r.pipelineId}"` });
  if (plan.toVersion === r.version) out.push({ path: 'toVersion', message: `the request already runs on version ${r.version}` });
  if (!(MOVABLE_STATUSES as readonly string[]).includes(r.status)) out.push({ path: 'status', message: `the request has ended (${r.status}): only a request that has not ended can move` });
  for (const [old, target] of Object.entries(plan.mapping)) {
    if (!from.steps[old]) out.push({ path: `mapping.${old}`, message: `version ${r.version} has no step "${old}"` });
    if (!to.steps[target]) out.push({ path: `mapping.${old}`, message: `version ${plan.toVersion} has no step "${target}"` });
  }
  return out;
}

const kindOf = (step: CompiledStep | undefined): string => step?.kind ?? 'unknown';

/** Open runs: each maps to a step of the same kind; a waiting step's event still matches, or the plan says how. */
function checkOpenRuns(s: MigrationSubject, from: CompiledPipeline, to: CompiledPipeline, plan: MigrationPlan): MigrationProblem[] {
  const out: MigrationProblem[] = [];
  const seen = new Set<string>();
  const steps = openRuns(s).map((r) => r.stepId);
  if (s.request.status === 'error_stop' && s.request.error) steps.push(s.request.error.stepId);
  for (const old of steps) {
    if (seen.has(old)) continue;
    seen.add(old);
    const target = mapStep(plan, old);
    const was = from.steps[old];
    const now = to.steps[target];
    if (!now) {
      out.push({ path: `steps.${old}`, message: `the request is at "${old}", and version ${plan.toVersion} has no step "${target}": map it (${old}=<step>)` });
      continue;
    }
    if (was && now.kind !== was.kind) {
      out.push({ path: `steps.${old}`, message: `"${old}" is a ${kindOf(was)} step; "${target}" in version ${plan.toVersion} is a ${kindOf(now)} step` });
      continue;
    }
    if (was?.kind === 'wait' && now.kind === 'wait') out.push(...checkWait(old, was.event, target, now.event, plan));
  }
  return out;
}

function checkWait(old: string, was: { name: string; key: string } | undefined, target: string, now: { name: string; key: string } | undefined, plan: MigrationPlan): MigrationProblem[] {
  if (was?.name === now?.name && was?.key === now?.key) return [];
  const rule = plan.waits?.[target];
  if (rule === 'keep' || (rule === 'rekey' && now)) return [];
  const show = (e: { name: string; key: string } | undefined): string => (e ? `"${e.name}" keyed "${e.key}"` : 'no event');
  return [{
    path: `steps.${old}.event`,
    message: `"${old}" waits for ${show(was)}; "${target}" waits for ${show(now)}: say "keep" or "rekey" for it in the plan's waits`,
  }];
}

/** Arrivals at a join: the mapped join must wait for every branch that already arrived. */
function checkJoins(s: MigrationSubject, to: CompiledPipeline, plan: MigrationPlan): MigrationProblem[] {
  const out: MigrationProblem[] = [];
  for (const [join, arrived] of Object.entries(s.request.joins)) {
    const target = mapStep(plan, join);
    const step = to.steps[target];
    if (!step || step.join !== 'all') {
      out.push({ path: `joins.${join}`, message: `branches ${JSON.stringify(arrived)} arrived at the join "${join}", and "${target}" in version ${plan.toVersion} is not a join` });
      continue;
    }
    for (const branch of arrived) {
      const mapped = mapStep(plan, branch);
      if (!step.prev.includes(mapped)) out.push({ path: `joins.${join}`, message: `branch "${branch}" arrived, and the join "${target}" in version ${plan.toVersion} does not wait for "${mapped}"` });
    }
  }
  return out;
}

/**
 * Outputs the new version reads: a step still to run (reachable from where the request is)
 * that reads `<stepId>.…` of a step behind it finds that output. Only an output that can
 * never be there is a problem: a step the old version did not have and nothing maps to.
 */
function checkOutputs(s: MigrationSubject, from: CompiledPipeline, to: CompiledPipeline, plan: MigrationPlan): MigrationProblem[] {
  const have = new Set(s.runs.filter((r) => r.status === 'completed').map((r) => mapStep(plan, r.stepId)));
  const targets = new Set(Object.values(plan.mapping));
  const at = openRuns(s).map((r) => mapStep(plan, r.stepId));
  if (s.request.status === 'error_stop' && s.request.error) at.push(mapStep(plan, s.request.error.stepId));
  if (s.request.status === 'buffered') at.push(to.start);
  const ahead = reachable(to, at);
  const out: MigrationProblem[] = [];
  const reported = new Set<string>();
  for (const id of [...ahead].sort()) {
    for (const root of stepReads(to.steps[id]!)) {
      if (CONTEXT_ROOTS.has(root) || !to.steps[root] || ahead.has(root) || have.has(root)) continue;
      if (from.steps[root] || targets.has(root) || reported.has(root)) continue;
      reported.add(root);
      out.push({ path: `outputs.${root}`, message: `step "${id}" of version ${plan.toVersion} reads "${root}.…", a step behind the request that it never ran: map the old step to "${root}"` });
    }
  }
  return out;
}

/** Every reason this request cannot move under the plan; empty when it can. */
export function checkMigration(s: MigrationSubject, from: CompiledPipeline, to: CompiledPipeline | undefined, plan: MigrationPlan): MigrationProblem[] {
  const target = checkTarget(s, from, to, plan);
  if (!to || target.length > 0) return target;
  return [...checkOpenRuns(s, from, to, plan), ...checkJoins(s, to, plan), ...checkOutputs(s, from, to, plan)];
}

/** `requests/<id>: steps.a: …`, one line per problem. */
export function formatProblems(requestId: string, problems: readonly MigrationProblem[]): string[] {
  return problems.map((p) => `requests/${requestId}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
}
