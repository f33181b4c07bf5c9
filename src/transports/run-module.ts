import type { ModuleCall } from '../bus/bus';
import { StepTimeoutError, toStepError, type StepError } from '../errors';
import type { Logger } from '../log/logger';
import type { ModuleContext, ModuleDef, ModuleLogger } from '../module/types';

export type ModuleOutcome = { ok: true; output: unknown } | { ok: false; error: StepError };

/** The most a module's output may weigh as JSON. */
export const MAX_OUTPUT_BYTES = 5 * 1024 * 1024;

/**
 * The calls running under each parent signal (a module host's shutdown). One listener per
 * parent aborts them all: a listener per call would make every `addEventListener` scan
 * thousands of others (Node checks each new listener for duplicates), O(n²) under load.
 */
const running = new WeakMap<AbortSignal, Set<(reason: unknown) => void>>();

function watch(parent: AbortSignal, onAbort: (reason: unknown) => void): () => void {
  let calls = running.get(parent);
  if (!calls) {
    const set = new Set<(reason: unknown) => void>();
    calls = set;
    running.set(parent, set);
    parent.addEventListener('abort', () => {
      for (const abort of [...set]) abort(parent.reason);
      set.clear();
    }, { once: true });
  }
  calls.add(onAbort);
  const set = calls;
  return () => void set.delete(onAbort);
}

/**
 * A module's logger, made into a child logger (with the call's ids) only when the module
 * first logs: most calls never do, and a child per call is not free.
 */
export function moduleLogger(logger: Logger, fields: Record<string, unknown>): ModuleLogger {
  let child: Logger | undefined;
  const log = (): Logger => (child ??= logger.child(fields));
  return {
    info: (m, f) => void log().info(m, f),
    warn: (m, f) => void log().warn(m, f),
    error: (m, f) => void log().error(m, f),
  };
}

/**
 * Runs an in-process module under its time limit. The module's `ctx.signal` aborts on timeout
 * or when `parent` aborts (shutdown). Whatever it throws becomes a bounded step error.
 *
 * The signal is made on first use of `ctx.signal` (most modules never look at it); a timeout
 * or shutdown that comes before that hands the module an already-aborted signal.
 */
export function runModule(def: ModuleDef<never, unknown>, call: ModuleCall, log: ModuleLogger, parent?: AbortSignal): Promise<ModuleOutcome> {
  return new Promise<ModuleOutcome>((resolve) => {
    let controller: AbortController | undefined;
    let abortReason: { reason: unknown } | undefined;
    let settled = false;
    const abort = (reason: unknown): void => {
      abortReason ??= { reason };
      controller?.abort(reason);
    };
    const unwatch = parent && !parent.aborted ? watch(parent, abort) : undefined;
    if (parent?.aborted) abort(parent.reason);
    const settle = (outcome: ModuleOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unwatch?.();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      const err = new StepTimeoutError(call.stepId, call.timeoutMs);
      abort(err);
      settle({ ok: false, error: toStepError(err) });
    }, call.timeoutMs);
    const ctx: ModuleContext = {
      requestId: call.requestId,
      pipeline: call.pipeline,
      stepId: call.stepId,
      attempt: call.attempt,
      idempotencyKey: call.idempotencyKey,
      test: call.test,
      get signal(): AbortSignal {
        if (!controller) {
          controller = new AbortController();
          if (abortReason) controller.abort(abortReason.reason);
        }
        return controller.signal;
      },
      log,
    };
    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(def.handle({ params: call.params as never, context: call.context }, ctx));
    } catch (err) {
      settle({ ok: false, error: toStepError(err) });
      return;
    }
    pending.then(
      (output) => settle(checkOutput(output)),
      (err: unknown) => settle({ ok: false, error: toStepError(err) }),
    );
  });
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
