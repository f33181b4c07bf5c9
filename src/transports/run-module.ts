import type { ModuleCall } from '../bus/bus';
import { StepTimeoutError, toStepError, type StepError } from '../errors';
import type { ModuleContext, ModuleDef, ModuleLogger } from '../module/types';

export type ModuleOutcome = { ok: true; output: unknown } | { ok: false; error: StepError };

/** The most a module's output may weigh as JSON. */
export const MAX_OUTPUT_BYTES = 5 * 1024 * 1024;

/**
 * Runs an in-process module under its time limit. The module's `ctx.signal` aborts on timeout
 * or when `parent` aborts (shutdown). Whatever it throws becomes a bounded step error.
 */
export async function runModule(def: ModuleDef<never, unknown>, call: ModuleCall, log: ModuleLogger, parent?: AbortSignal): Promise<ModuleOutcome> {
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new StepTimeoutError(call.stepId, call.timeoutMs);
      controller.abort(err);
      reject(err);
    }, call.timeoutMs);
  });
  const ctx: ModuleContext = {
    requestId: call.requestId,
    pipeline: call.pipeline,
    stepId: call.stepId,
    attempt: call.attempt,
    idempotencyKey: call.idempotencyKey,
    test: call.test,
    signal: controller.signal,
    log,
  };
  try {
    const output = await Promise.race([def.handle({ params: call.params as never, context: call.context }, ctx), timeout]);
    return checkOutput(output);
  } catch (err) {
    return { ok: false, error: toStepError(err) };
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}

/** Outputs must survive a trip through JSON unchanged in meaning, and stay bounded. */
export function checkOutput(output: unknown): ModuleOutcome {
  if (output === undefined) return { ok: true, output: null };
  let text: string | undefined;
  try {
    text = JSON.stringify(output);
  } catch (err) {
    return { ok: false, error: { code: 'CONVEYOR_ERR_MODULE_FAILED', message: `module output is not JSON-serialisable: ${(err as Error).message}`, retryable: false } };
  }
  if (text === undefined) return { ok: true, output: null };
  if (text.length > MAX_OUTPUT_BYTES) {
    return { ok: false, error: { code: 'CONVEYOR_ERR_MODULE_FAILED', message: `module output is ${text.length} bytes, over the ${MAX_OUTPUT_BYTES}-byte limit`, retryable: false } };
  }
  return { ok: true, output: JSON.parse(text) };
}
