/**
 * The pipeline vocabulary as a user writes it (seed 002's words), and the compiled form the
 * engine runs. Everything here is plain data: no functions, so a definition can be stored,
 * hashed, diffed and shown. The written form is in `./def-types`, the condition entries in
 * `../conditions/types`; both are re-exported here, so this file is the one place to import from.
 */
import type { CompiledCondition } from '../conditions/types';
import type { BusinessKeyPolicy, BusinessKeyReuse, PipelineDef } from './def-types';
import type { StepDelivery } from './delivery';

export { OPERATIONS, type BaseOperation, type CompiledCondition, type ConditionDef, type Operation } from '../conditions/types';
export type {
  Duration,
  RetryPolicyDef,
  AssignDef,
  ModuleStepDef,
  SetDataStepDef,
  StopStepDef,
  WaitStepDef,
  PollDef,
  ActionDef,
  ActionStepDef,
  DelayStepDef,
  LoopStepDef,
  PublishStepDef,
  StepDef,
  IntakeReleaseDef,
  BusinessKeyPolicy,
  BusinessKeyReuse,
  IntakeOptionsDef,
  IntakeDef,
  ScheduleTriggerDef,
  AmqpSourceDef,
  NatsSourceDef,
  SourceDef,
  PipelineDef,
  RedactDef,
} from './def-types';

// ---- compiled form -------------------------------------------------------------------------

/** A retry policy with every default applied and durations in ms. */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  factor: number;
  maxDelayMs: number;
  jitter: number;
}

interface CompiledRoutes {
  id: string;
  description?: string;
  /** Absent when the step assigns nothing. */
  assign?: Record<string, unknown>;
  next: string[];
  prev: string[];
  join: 'any' | 'all';
  condition: CompiledCondition[];
}

export interface CompiledModuleStep extends CompiledRoutes {
  kind: 'module';
  subsystem: string;
  params: Record<string, unknown>;
  /** Undefined: use the module's or the engine default at dispatch. */
  timeoutMs?: number;
  retry?: RetryPolicy;
  onError: string[];
  /** The params `resume` may replace; absent when none may be. */
  resumable?: string[];
}

export interface CompiledSetDataStep extends CompiledRoutes {
  kind: 'setData';
  data: Record<string, unknown>;
}

export interface CompiledStopStep extends CompiledRoutes {
  kind: 'stop';
  status: 'completed' | 'stopped';
  reason?: string;
}

export interface CompiledWaitStep extends CompiledRoutes {
  kind: 'wait';
  event?: { name: string; key: string };
  poll?: CompiledPoll;
  timeoutMs?: number;
  onTimeout: string[];
}

export interface CompiledPoll {
  subsystem: string;
  everyMs: number;
  backoff: number;
  maxEveryMs: number;
  maxPolls?: number;
  params: Record<string, unknown>;
  doneField: string;
}

export interface CompiledAction {
  code: string;
  label?: string;
  allow: string[];
  visible: CompiledCondition[];
  fields: Record<string, { required: boolean; value?: unknown; label?: string }>;
  result?: string[];
}

export interface CompiledActionStep extends CompiledRoutes {
  kind: 'action';
  actions: Record<string, CompiledAction>;
  when: CompiledCondition[];
  timeoutMs?: number;
  onTimeout: string[];
}

export interface CompiledDelayStep extends CompiledRoutes {
  kind: 'delay';
  durationMs: number;
}

export interface CompiledLoopStep extends CompiledRoutes {
  kind: 'loop';
  target: string;
  max: number;
  onExhausted: string[];
}

export interface CompiledPublishStep extends CompiledRoutes {
  kind: 'publish';
  /** Exactly one of `amqp` and `nats`. URLs are kept as written (`${VAR}` expanded at publish). */
  amqp?: { url: string; exchange: string; routingKey: string };
  nats?: { url: string; subject: string };
  body: unknown;
  headers: Record<string, string>;
  timeoutMs?: number;
  retry?: RetryPolicy;
  onError: string[];
}

export type CompiledStep =
  | CompiledPublishStep
  | CompiledModuleStep
  | CompiledSetDataStep
  | CompiledStopStep
  | CompiledWaitStep
  | CompiledActionStep
  | CompiledDelayStep
  | CompiledLoopStep;

export type CompiledIntake =
  | { kind: 'immediate' }
  | { kind: 'rate'; max: number; perMs: number }
  | { kind: 'batch'; size: number; everyMs: number }
  | { kind: 'schedule'; cron: string; /** Absent: UTC. */ timezone?: string };

/** The intake options besides the release policy, with defaults applied. */
export interface CompiledIntakeOptions {
  idempotencyWindowMs: number;
  businessKey?: { path?: string[]; onConflict: BusinessKeyPolicy; reuse: BusinessKeyReuse; reuseWindowMs: number };
  callbackUrl?: string;
  maxActive?: number;
}

export interface CompiledTrigger {
  id: string;
  cron: string;
  timezone?: string;
  payload: Record<string, unknown>;
  catchUp: 'latest' | 'all' | 'none';
}

export interface CompiledRedact {
  path: string[];
  from: string[];
  except: string[];
  when: CompiledCondition[];
}

export type CompiledSource =
  | { kind: 'amqp'; name: string; url: string; queue: string; prefetch: number; maxBuffered: number; maxMessageBytes: number }
  | { kind: 'nats'; name: string; url: string; stream: string; subject: string; durable: string; ackWaitMs: number; prefetch: number; maxBuffered: number; maxMessageBytes: number };

/** A validated pipeline, ready to run. `hash` identifies the exact definition a request is pinned to. */
export interface CompiledPipeline {
  id: string;
  description?: string;
  start: string;
  steps: Record<string, CompiledStep>;
  intake: CompiledIntake;
  /** Absent on hand-built pipelines: the defaults apply. */
  intakeOptions?: CompiledIntakeOptions;
  /** Cron triggers (`schedule`). */
  triggers?: CompiledTrigger[];
  /** Broker sources (`sources`). */
  sources?: CompiledSource[];
  maxSteps: number;
  defaults: { timeoutMs?: number; retry?: RetryPolicy };
  /** Participant role → path segments (`participants`). Absent or empty: none declared. */
  participants?: Record<string, string[]>;
  /** `redact`, compiled. Absent or empty: nothing is masked. */
  redact?: CompiledRedact[];
  /** sha256 of the canonical JSON of the definition. */
  hash: string;
  /** The definition as written, for storage and display. */
  definition: PipelineDef;
  /** Where it was loaded from, for messages. */
  source: string;
  /** Each step's transport, timeout and retry, resolved by the catalog at load (`pipeline/delivery.ts`). */
  delivery?: Record<string, StepDelivery>;
}
