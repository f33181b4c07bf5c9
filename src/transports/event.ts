import { setMaxListeners } from 'node:events';
import type { Bus, ModuleCall } from '../bus/bus';
import type { Logger } from '../log/logger';
import type { ModuleRegistry, RegisteredModule } from '../module/registry';
import { runInSpan } from '../tracing/spans';
import type { ModuleLogger } from '../module/types';
import { moduleLogger, runModule, type ModuleOutcome } from './run-module';
import type { StepTransport } from './types';

/** In-process delivery: the call is an event on the bus, and a `ModuleHost` answers it. */
export class EventTransport implements StepTransport {
  constructor(private readonly bus: Bus) {}

  send(call: ModuleCall): void {
    this.bus.emit('ModuleCall', call);
  }
}

/**
 * Runs the in-process modules of this process: it takes `ModuleCall` events for the modules
 * it has and answers with `StepCompleted` / `StepFailed`.
 */
export class ModuleHost {
  private readonly shutdown = new AbortController();
  private off: (() => void) | undefined;
  private active = 0;

  constructor(
    private readonly bus: Bus,
    private readonly registry: ModuleRegistry,
    private readonly logger: Logger,
  ) {
    // Every running module listens on this one signal: many at once is normal, not a leak.
    setMaxListeners(0, this.shutdown.signal);
  }

  start(): void {
    this.off = this.bus.on('ModuleCall', (call) => {
      const mod = this.registry.get(call.module);
      if (mod?.def) this.execute(call, mod);
    });
  }

  get inFlight(): number {
    return this.active;
  }

  private execute(call: ModuleCall, mod: RegisteredModule): void {
    const started = Date.now();
    this.active++;
    const log = (): ModuleLogger => moduleLogger(this.logger, { requestId: call.requestId, stepId: call.stepId, module: call.module });
    // A traced call runs with its attempt span active, so the module's log lines carry its ids;
    // an untraced one (most) runs straight, without a closure for the span.
    const outcome = call.traceparent
      ? runInSpan(call.traceparent, () => runModule(mod.def!, call, log, this.shutdown.signal))
      : runModule(mod.def!, call, log, this.shutdown.signal);
    // One `then` (a step each): the count drops in it rather than in a `finally`, which cost
    // another promise, its callbacks and a turn of the microtask queue.
    void outcome.then((res) => {
      try {
        this.answer(call, started, res);
      } finally {
        this.active--;
      }
    }, (err: unknown) => {
      this.active--;
      throw err;
    });
  }

  /** The module's outcome, on the bus: the result fields written out, not spread from a base object. */
  private answer(call: ModuleCall, started: number, res: ModuleOutcome): void {
    const finishedAt = Date.now();
    const durationMs = finishedAt - started;
    if (res.ok) this.bus.emit('StepCompleted', { requestId: call.requestId, runId: call.runId, stepId: call.stepId, attempt: call.attempt, finishedAt, durationMs, output: res.output });
    else this.bus.emit('StepFailed', { requestId: call.requestId, runId: call.runId, stepId: call.stepId, attempt: call.attempt, finishedAt, durationMs, error: res.error });
  }

  stop(): void {
    this.off?.();
    this.shutdown.abort(new Error('engine shutting down'));
  }
}
