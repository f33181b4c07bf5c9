import type { ModuleCall } from '../bus/bus';
import { ErrorCodes, StepTimeoutError, toStepError, type StepError } from '../errors';
import type { Logger } from '../log/logger';
import type { ModuleContext, ModuleDef, ModuleLogger } from '../module/types';

export type ModuleOutcome = { ok: true; output: unknown } | { ok: false; error: StepError };

/** The most a module's output may weigh as JSON. */
export const MAX_OUTPUT_BYTES = 5 * 1024 * 1024;

/**
 * The calls under each parent signal (a module host's shutdown) whose module asked for its
 * signal. One listener per parent aborts them all: a listener per call would make every
 * `addEventListener` scan thousands of others (Node checks each new listener for
 * duplicates), O(n²) under load.
 */
const watched = new WeakMap<AbortSignal, Set<CallContext>>();

function watch(parent: AbortSignal, ctx: CallContext): void {
  let calls = watched.get(parent);
  if (!calls) {
    const set = new Set<CallContext>();
    calls = set;
    watched.set(parent, set);
    parent.addEventListener('abort', () => {
      for (const c of [...set]) c.abort(parent.reason);
      set.clear();
    }, { once: true });
  }
  calls.add(ctx);
}

class LazyChild {
  private child: Logger | undefined;
  constructor(
    private readonly logger: Logger,
    private readonly fields: Record<string, unknown>,
  ) {}

  level(name: 'info' | 'warn' | 'error'): (message: string, fields?: Record<string, unknown>) => void {
    return (message, fields) => void (this.child ??= this.logger.child(this.fields))[name](message, fields);
  }
}

/**
 * A module's logger, made into a child logger (with the call's ids) only when the module
 * first logs: most calls never do, and a child per call is not free.
 */
export function moduleLogger(logger: Logger, fields: Record<string, unknown>): ModuleLogger {
  const lazy = new LazyChild(logger, fields);
  return { info: lazy.level('info'), warn: lazy.level('warn'), error: lazy.level('error') };
}

/**
 * What a module sees of its call. A class, not an object literal: a literal with getters
 * gets a hidden class of its own on every call (garbage, and no inline caches). The signal
 * and the logger are made on first use, since most modules use neither; an abort that
 * comes before the signal is made hands the module an already-aborted signal.
 */
class CallContext implements ModuleContext {
  readonly requestId: string;
  readonly pipeline: string;
  readonly stepId: string;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly test: boolean;
  private controller: AbortController | undefined;
  private aborted: { reason: unknown } | undefined;
  private logger: ModuleLogger | (() => ModuleLogger);

  constructor(
    call: ModuleCall,
    log: ModuleLogger | (() => ModuleLogger),
    private readonly parent: AbortSignal | undefined,
  ) {
    this.requestId = call.requestId;
    this.pipeline = call.pipeline;
    this.stepId = call.stepId;
    this.attempt = call.attempt;
    this.idempotencyKey = call.idempotencyKey;
    this.test = call.test;
    this.logger = log;
  }

  get log(): ModuleLogger {
    if (typeof this.logger === 'function') this.logger = this.logger();
    return this.logger;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.aborted.reason);
      else if (this.parent?.aborted) this.controller.abort(this.parent.reason);
      else if (this.parent) watch(this.parent, this);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    this.aborted ??= { reason };
    this.controller?.abort(reason);
  }

  /** The call is over: the shutdown signal no longer needs to reach it. */
  done(): void {
    if (this.controller && this.parent) watched.get(this.parent)?.delete(this);
  }
}

/** One call in progress: settles once, with the module's outcome or its timeout. */
class PendingCall {
  settled = false;
  timer: NodeJS.Timeout | undefined;
  resolve!: (outcome: ModuleOutcome) => void;

  constructor(
    readonly call: ModuleCall,
    readonly ctx: CallContext,
  ) {}

  settle(outcome: ModuleOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.ctx.done();
    this.resolve(outcome);
  }
}

function timeOut(p: PendingCall): void {
  const err = new StepTimeoutError(p.call.stepId, p.call.timeoutMs);
  p.ctx.abort(err);
  p.settle({ ok: false, error: toStepError(err) });
}

/**
 * Runs an in-process module under its time limit. The module's `ctx.signal` aborts on timeout
 * or when `parent` aborts (shutdown). Whatever it throws becomes a bounded step error.
 * `log` may be given as a function that makes it, called only if the module logs.
 */
export function runModule(def: ModuleDef<never, unknown>, call: ModuleCall, log: ModuleLogger | (() => ModuleLogger), parent?: AbortSignal): Promise<ModuleOutcome> {
  const ctx = new CallContext(call, log, parent);
  const p = new PendingCall(call, ctx);
  const outcome = new Promise<ModuleOutcome>((resolve) => (p.resolve = resolve));
  p.timer = setTimeout(timeOut, call.timeoutMs, p);
  let pending: Promise<unknown>;
  try {
    pending = Promise.resolve(def.handle({ params: call.params as never, context: call.context }, ctx));
  } catch (err) {
    p.settle({ ok: false, error: toStepError(err) });
    return outcome;
  }
  pending.then(
    (output) => p.settle(checkOutput(output)),
    (err: unknown) => p.settle({ ok: false, error: toStepError(err) }),
  );
  return outcome;
}

/** Outputs must survive a trip through JSON unchanged in meaning, and stay bounded. */
export function checkOutput(output: unknown): ModuleOutcome {
  if (output === undefined) return { ok: true, output: null };
  let text: string | undefined;
  try {
    text = JSON.stringify(output);
  } catch (err) {
    return { ok: false, error: { code: ErrorCodes.MODULE_FAILED, message: `module output is not JSON-serialisable: ${(err as Error).message}`, retryable: false } };
  }
  if (text === undefined) return { ok: true, output: null };
  if (text.length > MAX_OUTPUT_BYTES) {
    return { ok: false, error: { code: ErrorCodes.MODULE_FAILED, message: `module output is ${text.length} bytes, over the ${MAX_OUTPUT_BYTES}-byte limit`, retryable: false } };
  }
  return { ok: true, output: JSON.parse(text) };
}
