/**
 * What a pipeline's steps read and where they lead: the step outputs (`<stepId>.…`) its
 * conditions and templates read, and the steps reachable from a set of steps. Pure.
 */
import type { CompiledCondition, CompiledPipeline, CompiledStep } from '../pipeline/types';
import { templateRoots } from '../templates/render';

function conditionRoots(entries: readonly CompiledCondition[] | undefined, out: Set<string>): void {
  for (const c of entries ?? []) {
    if (c.field[0]) out.add(c.field[0]);
    if (c.valueField?.[0]) out.add(c.valueField[0]);
    conditionRoots(c.success, out);
  }
}

function templateValueRoots(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') {
    if (!value.includes('{{') && !value.includes('{%')) return;
    try {
      for (const root of templateRoots(value)) out.add(root);
    } catch {
      // A template that does not parse was refused at load; nothing to read here.
    }
  } else if (Array.isArray(value)) for (const v of value) templateValueRoots(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) templateValueRoots(v, out);
}

/** The context keys one step reads: condition fields and template roots. */
export function stepReads(step: CompiledStep): Set<string> {
  const out = new Set<string>();
  conditionRoots(step.condition, out);
  templateValueRoots(step.assign, out);
  switch (step.kind) {
    case 'module':
      templateValueRoots(step.params, out);
      break;
    case 'setData':
      templateValueRoots(step.data, out);
      break;
    case 'wait':
      templateValueRoots(step.event?.key, out);
      templateValueRoots(step.poll?.params, out);
      break;
    case 'action':
      conditionRoots(step.when, out);
      for (const a of Object.values(step.actions)) conditionRoots(a.visible, out);
      break;
    case 'publish':
      templateValueRoots([step.body, step.headers, step.amqp?.routingKey, step.nats?.subject], out);
      break;
    default:
      break;
  }
  return out;
}

/** Every route out of a step, whatever decides it. */
export function stepTargets(step: CompiledStep): string[] {
  const out = [...step.next];
  const walk = (entries: readonly CompiledCondition[]): void => {
    for (const c of entries) {
      out.push(...(c.result ?? []));
      walk(c.success ?? []);
    }
  };
  walk(step.condition);
  if ('onError' in step) out.push(...step.onError);
  if ('onTimeout' in step) out.push(...step.onTimeout);
  if (step.kind === 'action') for (const a of Object.values(step.actions)) out.push(...(a.result ?? []));
  if (step.kind === 'loop') out.push(step.target, ...step.onExhausted);
  return out;
}

/** The steps reachable from `from` (those included). */
export function reachable(pipeline: CompiledPipeline, from: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const todo = [...from];
  while (todo.length > 0) {
    const id = todo.pop()!;
    const step = pipeline.steps[id];
    if (seen.has(id) || !step) continue;
    seen.add(id);
    todo.push(...stepTargets(step));
  }
  return seen;
}
