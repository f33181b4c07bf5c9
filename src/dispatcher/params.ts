/**
 * Facts about compiled steps, which never change once compiled: which module a step calls
 * and whether its params hold templates. Asked on every dispatch and every commit, they are
 * worked out once per step (and params object). Also the params a run is logged with.
 */
import { publishTarget, renderPublish } from '../brokers/publish-step';
import { moduleOf, type StepModuleCall } from '../pipeline/step-module';
import type { CompiledStep } from '../pipeline/types';
import { hasTemplates, maskedSecrets, renderValue } from '../templates/render';

const calls = new WeakMap<CompiledStep, StepModuleCall | null>();
const templated = new WeakMap<object, boolean>();

/** The module a step calls (module steps, polling waits), cached per compiled step. */
export function moduleCallOf(step: CompiledStep): StepModuleCall | undefined {
  let call = calls.get(step);
  if (call === undefined) {
    call = moduleOf(step) ?? null;
    calls.set(step, call);
  }
  return call ?? undefined;
}

/** Whether params hold templates, cached per params object. */
export function isTemplated(params: Record<string, unknown>): boolean {
  let has = templated.get(params);
  if (has === undefined) {
    has = hasTemplates(params);
    templated.set(params, has);
  }
  return has;
}

/** The params a run is logged with: rendered, but with every secret masked. */
export function loggedParams(step: CompiledStep, context: Record<string, unknown>, override?: Record<string, unknown> | null): unknown {
  if (step.kind === 'publish') {
    try {
      return { ...publishTarget(step), ...renderPublish(step, context, maskedSecrets) };
    } catch (err) {
      return { template: step.body, error: (err as Error).message };
    }
  }
  const call = moduleCallOf(step);
  if (!call) return null;
  try {
    const rendered = isTemplated(call.params) ? renderValue(call.params, context, maskedSecrets) : call.params;
    return override ? { ...(rendered as Record<string, unknown>), ...override } : rendered;
  } catch (err) {
    return { template: call.params, error: (err as Error).message };
  }
}
