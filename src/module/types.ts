/**
 * The module contract: a name and one async function. A module sees its input and a small
 * context; it cannot call another module or move a request.
 */

/** What a module receives: the step's resolved params and the request context. */
export interface ModuleInput<P = Record<string, unknown>> {
  params: P;
  /** `{ payload, request, <stepId>: output, ... }` */
  context: Record<string, unknown>;
}

export interface ModuleLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Facts about the call in progress. */
export interface ModuleContext {
  requestId: string;
  pipeline: string;
  stepId: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Stable across redeliveries of the same attempt: use it to drop duplicates. */
  idempotencyKey: string;
  /** True for requests submitted with `?test=1`: use sandboxes, charge nothing. */
  test: boolean;
  /** Aborted when the attempt times out or the engine shuts down. */
  signal: AbortSignal;
  log: ModuleLogger;
}

/** A module as written in `modules/<name>.module.ts`. */
export interface ModuleDef<P = Record<string, unknown>, O = unknown> {
  name: string;
  description?: string;
  /** Per-attempt time limit for this module's steps, unless the step sets its own. */
  timeout?: import('../pipeline/types').Duration;
  /** Default retry policy for this module's steps, unless the step sets its own. */
  retry?: import('../pipeline/types').RetryPolicyDef;
  /**
   * How queue workers take this module's jobs (when it runs on the queue transport):
   * `concurrency` jobs at once per worker process, and at most `rate.max` jobs per `rate.per`
   * across all workers (a limit kept in Redis).
   */
  queue?: { concurrency?: number; rate?: { max: number; per: import('../pipeline/types').Duration } };
  /** Do the work. The returned value becomes `context[stepId]`; it must be JSON-serialisable. */
  handle(input: ModuleInput<P>, ctx: ModuleContext): Promise<O>;
}

/** A remote module declared in `modules/<name>.module.json` (no TypeScript needed). */
export interface RemoteModuleDef {
  name: string;
  description?: string;
  transport: {
    kind: 'http';
    url: string;
    /** Per-attempt time limit of the HTTP call itself. */
    timeout?: import('../pipeline/types').Duration;
    /** After a `202`, how long the module has to post its result to the callback URL. @default '1h' */
    callbackTimeout?: import('../pipeline/types').Duration;
  };
  retry?: import('../pipeline/types').RetryPolicyDef;
}

/**
 * Declares an in-process module. Returns its argument unchanged; it exists for type inference.
 */
export function defineModule<P = Record<string, unknown>, O = unknown>(def: ModuleDef<P, O>): ModuleDef<P, O> {
  return def;
}
