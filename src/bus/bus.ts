import { EventEmitter2 } from 'eventemitter2';
import type { StepError } from '../errors';
import type { RequestStatus } from '../model';

/** A call to a module, as a transport carries it. Its JSON form is the HTTP module protocol body. */
export interface ModuleCall {
  requestId: string;
  pipeline: string;
  stepId: string;
  runId: string;
  attempt: number;
  idempotencyKey: string;
  test: boolean;
  module: string;
  params: Record<string, unknown>;
  context: Record<string, unknown>;
  timeoutMs: number;
  /** The W3C `traceparent` of this attempt's span, when tracing is on (carried in bull job data and HTTP headers). */
  traceparent?: string;
  /**
   * Queue transport: the results queue of the engine that sent this call
   * (`conveyor:results:<engine>`), where the worker sends the answer, so that it reaches the
   * engine that holds the request. Absent: `conveyor:results`, any engine's.
   */
  replyTo?: string;
}

export interface StepResultBase {
  requestId: string;
  runId: string;
  stepId: string;
  attempt: number;
  finishedAt: number;
  durationMs: number;
  /** The `traceparent` of what answered (an event's span), linked from the step's span. */
  trace?: string;
}

/** The events between intake, supervisor, dispatcher and modules, name → payload. */
export interface BusEvents {
  ModuleCall: ModuleCall;
  /** `via` marks results that are not a module's answer: an external event, a user action. */
  StepCompleted: StepResultBase & { output: unknown; via?: 'event' | 'action' };
  StepFailed: StepResultBase & { error: StepError };
  /**
   * A step result this process took from a module (any transport, the Redis results queue)
   * or worked out itself (an engine step), as it reaches the supervisor: counted by metrics.
   */
  StepAnswered: (StepResultBase & { output: unknown; via?: 'event' | 'action' }) | (StepResultBase & { error: StepError });
  /** A remote module answered `202`: it will post the result to its callback URL by `until`. */
  StepAccepted: { requestId: string; runId: string; stepId: string; attempt: number; until: number };
  /** A step attempt's result was committed by this process (counted by `conveyor_steps_total`). */
  StepCommitted: { requestId: string; pipeline: string; stepId: string; attempt: number; transport: string; status: 'completed' | 'failed' };
  /** `callback: false` when the request is known to have no end-of-request callback URL. */
  RequestFinished: { requestId: string; pipeline: string; status: RequestStatus; callback?: boolean };
}

export type BusEventName = keyof BusEvents;

/** A typed facade over EventEmitter2: `emit` and `on` are checked against `BusEvents`. */
export class Bus {
  private readonly ee = new EventEmitter2({ maxListeners: 100 });

  emit<K extends BusEventName>(name: K, payload: BusEvents[K]): void {
    this.ee.emit(name, payload);
  }

  on<K extends BusEventName>(name: K, listener: (payload: BusEvents[K]) => void): () => void {
    this.ee.on(name, listener);
    return () => this.ee.off(name, listener);
  }

  removeAll(): void {
    this.ee.removeAllListeners();
  }
}
