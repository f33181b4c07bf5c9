/**
 * The pipeline vocabulary as a user writes it (seed 002's words): steps, intake, schedule,
 * sources and the pipeline itself. Plain data, like the compiled form in `./types`.
 */
import type { ConditionDef } from '../conditions/types';

/** A duration: milliseconds as a number, or a string such as `'500ms'`, `'10s'`, `'5m'`, `'1h'`, `'1d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

/** How often and how patiently a step's module is called. */
export interface RetryPolicyDef {
  /** Total attempts, the first included. @default 1 */
  attempts?: number;
  /** Delay before the second attempt. @default '1s' */
  backoff?: Duration;
  /** Each further delay is multiplied by this. @default 2 */
  factor?: number;
  /** The longest delay between attempts. @default '5m' */
  maxDelay?: Duration;
  /** Randomise each delay by up to this fraction (0..1). @default 0.2 */
  jitter?: number;
}

// Route positions use NoInfer<S> so that the step names are inferred from the keys of `steps`
// alone: a typo in `next` then fails on that line instead of silently widening S.

/**
 * Process variables a step sets once its own output is known: `{ name: value-or-template }`.
 * Templates read the context with the step's output in it (`'{{ take.data.who }}'` on the
 * action step `take`); a whole `{{ path }}` keeps the value's type. The new values are merged
 * into the request's `vars` and committed with the step's result.
 */
export type AssignDef = Record<string, unknown>;

/** Fields every step kind shares: its routes. */
interface StepRoutes<S extends string> {
  /** Human text for the dashboard and the graph. */
  description?: string;
  /** Process variables set when the step completes (see {@link AssignDef}). */
  assign?: AssignDef;
  /** The default route when no condition entry yields one. Several targets run in parallel. */
  next?: NoInfer<S>[];
  /** The steps that may lead here; checked at load. With `join: 'all'` the step waits for all. */
  prev?: NoInfer<S>[];
  /** `'all'` waits until every step in `prev` has arrived (a join). @default 'any' */
  join?: 'any' | 'all';
  /** Routing entries tried in order after the step completes. */
  condition?: ConditionDef<S>[];
}

/** A step done by a module (the seed's `subsystem`). */
export interface ModuleStepDef<S extends string = string> extends StepRoutes<S> {
  kind?: 'module';
  /** The module that does the work. */
  subsystem: string;
  /** Input for the module. String values may hold `{{ path }}` templates over the context. */
  params?: Record<string, unknown>;
  /** Per-attempt time limit. @default the module's, else the pipeline's, else '30s' */
  timeout?: Duration;
  retry?: RetryPolicyDef;
  /** Route taken once the retries are spent, instead of `error_stop`. */
  onError?: NoInfer<S>[];
  /**
   * The params an operator may replace when resuming this step from `error_stop`
   * (`POST /api/requests/:id/resume` with `{ "params": { … } }`); any other name is refused
   * with 422. Each must be a key of `params`. @default [] (params cannot be replaced)
   */
  resumable?: string[];
}

/** A step that writes constants or templates into the context under its own id. */
export interface SetDataStepDef<S extends string = string> extends StepRoutes<S> {
  kind: 'setData';
  data: Record<string, unknown>;
}

/** A step that ends the whole request at once. */
export interface StopStepDef<S extends string = string> {
  kind: 'stop';
  description?: string;
  assign?: AssignDef;
  prev?: NoInfer<S>[];
  /** @default 'stopped' */
  status?: 'completed' | 'stopped';
  reason?: string;
}

/**
 * Waits for an external event (`POST /api/events/<event.name>` with a matching key), and/or
 * polls a module every interval until its output says done. Its output is the event
 * (`{ event, key, data }`) or the final poll output.
 */
export interface WaitStepDef<S extends string = string> extends StepRoutes<S> {
  kind: 'wait';
  /** Wake on this event. `key` is a template over the context: `'{{ payload.itemId }}'`. */
  event?: { name: string; key: string };
  /**
   * Call `subsystem` every `every` until `output[doneField]` is true. All polls are one step
   * run (they do not count toward `maxSteps`); each poll is kept in the run's poll history.
   */
  poll?: PollDef;
  /** Give up after this long: this, not the number of polls, decides when waiting is over. */
  timeout?: Duration;
  /** Route taken on timeout; without one, a timeout sends the request to `error_stop`. */
  onTimeout?: NoInfer<S>[];
}

/** How a `wait` step polls: every `every`, slowing by `backoff` up to `maxEvery`. */
export interface PollDef {
  subsystem: string;
  /** The first interval. */
  every: Duration;
  /** Each further interval is multiplied by this (≥ 1). @default 1 (a fixed interval) */
  backoff?: number;
  /** The longest interval. @default `every` when `backoff` is 1, else '10m' */
  maxEvery?: Duration;
  /** Give up (as on timeout) after this many polls that were not done. @default no limit */
  maxPolls?: number;
  params?: Record<string, unknown>;
  /** @default 'done' */
  doneField?: string;
}

/** One user action offered by an action step (seed 003's `actions`, seed 000's confirmation). */
export interface ActionDef<S extends string = string> {
  label?: string;
  /** Roles that may take it: global roles (`admin` may take those too) or participant roles (only this request's participants). */
  allow: string[];
  /** Offered only when one of these entries holds (entries nest with `success` for "and"). */
  visible?: ConditionDef<S>[];
  /**
   * Data the action collects, written to the step's output `data`. `required` fields must be
   * sent; `value` sets a constant: `'_CURRENT_USER_'` is the actor, `'_NULL_'` is null.
   */
  fields?: Record<string, { required?: boolean; value?: unknown; label?: string }>;
  /** Where the request goes after this action. @default the step's `condition`/`next` */
  result?: NoInfer<S>[];
}

/** Waits for a person: named actions, each gated by roles (an approval is one such step). */
export interface ActionStepDef<S extends string = string> extends StepRoutes<S> {
  kind: 'action';
  actions: Record<string, ActionDef<S>>;
  /** Ask only when one of these entries holds (seed 000 §5.5); otherwise continue by `next` at once. */
  when?: ConditionDef<S>[];
  timeout?: Duration;
  onTimeout?: NoInfer<S>[];
}

/** Waits a fixed time, durably. */
export interface DelayStepDef<S extends string = string> extends StepRoutes<S> {
  kind: 'delay';
  duration: Duration;
}

/**
 * Jumps back to `target` at most `max` times (seed 000 auto mode: `LOOP → INIT`), then takes
 * `onExhausted` (or ends the branch). Its output is `{ iteration, max }`.
 */
export interface LoopStepDef<S extends string = string> {
  kind: 'loop';
  description?: string;
  assign?: AssignDef;
  prev?: NoInfer<S>[];
  target: NoInfer<S>;
  max: number;
  onExhausted?: NoInfer<S>[];
}

/**
 * Publishes one JSON message to a broker and completes once the broker confirmed it (an AMQP
 * confirm channel; a JetStream publish ack). The message id is the step's idempotency key.
 */
export interface PublishStepDef<S extends string = string> extends StepRoutes<S> {
  kind: 'publish';
  /** `url` defaults to `${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}`. */
  amqp?: { url?: string; exchange: string; routingKey?: string };
  /** `url` defaults to `${NATS_URL:-nats://127.0.0.1:4222}`. */
  nats?: { url?: string; subject: string };
  /** The message: a JSON value whose strings may be `{{ path }}` templates (rendered like `params`). */
  body: unknown;
  /** Message headers; values may be templates. */
  headers?: Record<string, string>;
  /** How long to wait for the broker's confirmation. @default '30s' */
  timeout?: Duration;
  retry?: RetryPolicyDef;
  onError?: NoInfer<S>[];
}

export type StepDef<S extends string = string> =
  | PublishStepDef<S>
  | ModuleStepDef<S>
  | SetDataStepDef<S>
  | StopStepDef<S>
  | WaitStepDef<S>
  | ActionStepDef<S>
  | DelayStepDef<S>
  | LoopStepDef<S>;

/** Intake policy: when an accepted request may start. */
export type IntakeReleaseDef =
  | { mode?: 'immediate' }
  | { rate: { max: number; per: Duration } }
  | { batch: { size: number; every: Duration } }
  | { schedule: string; /** IANA time zone of the cron. @default 'UTC' */ timezone?: string };

/** What a submit does when its business key is held by an active request. */
export type BusinessKeyPolicy = 'reject' | 'queue' | 'return-existing';

/**
 * What a submit does when its business key was used by a request that has ended, within
 * `reuseWindow` (Temporal's workflow id reuse policy): `allow` starts a new request;
 * `reject-duplicate` answers 409 with the earlier request's id; `return-existing` answers 200
 * with the earlier request; `allow-after-failure` starts a new request only if the earlier
 * one ended `stopped` (by a `stop` step, or an operator who stopped it in `error_stop`).
 */
export type BusinessKeyReuse = 'allow' | 'reject-duplicate' | 'return-existing' | 'allow-after-failure';

/** Intake options that combine with any release policy (docs/intake.md). */
export interface IntakeOptionsDef {
  /** How long an `Idempotency-Key` keeps naming the same request. @default '24h' */
  idempotencyWindow?: Duration;
  /**
   * One active request per business key. The key is the `X-Business-Key` header, else the
   * value at `path` (`'payload.sku'`). `onConflict` says what a second submit gets.
   */
  businessKey?: {
    path?: string;
    onConflict: BusinessKeyPolicy;
    /** What the key may do once its request ended. @default 'allow' */
    reuse?: BusinessKeyReuse;
    /** How long `reuse` applies after the earlier request ended. @default '24h' */
    reuseWindow?: Duration;
  };
  /** Receives a signed POST when each request ends, unless the request names its own. */
  callbackUrl?: string;
  /**
   * At most this many requests of the pipeline started and not ended at once, across all
   * processes: flow control for a slow downstream. Combines with any policy.
   */
  maxActive?: number;
}

export type IntakeDef = IntakeReleaseDef & IntakeOptionsDef;

/**
 * A trigger that creates a request by itself at cron times (a nightly price import). Each
 * tick fires once across all processes; `catchUp` says what happens to ticks missed while
 * no engine ran: `'latest'` fires the most recent one, `'all'` fires each (at most 100),
 * `'none'` skips them.
 */
export interface ScheduleTriggerDef {
  /** Names the trigger in its marks and idempotency keys. @default `trigger-<index>` */
  id?: string;
  cron: string;
  /** @default 'UTC' */
  timezone?: string;
  /** The new request's payload. Strings may use `{{ trigger.id }}`, `{{ trigger.tick }}` (ISO time of the tick). */
  payload?: Record<string, unknown>;
  /** @default 'latest' */
  catchUp?: 'latest' | 'all' | 'none';
}

/** Fields every broker source shares. */
interface SourceBaseDef {
  /** Names the source in `GET /api/sources` and in rejects. @default `<kind>-<index>` */
  name?: string;
  /** Broker URL; `${VAR}` and `${VAR:-default}` are taken from the environment. */
  url?: string;
  /** Messages held unacknowledged at once. @default 100 */
  prefetch?: number;
  /** Stop consuming while more of the pipeline's requests than this wait to start or run. @default 10000 */
  maxBuffered?: number;
  /** Larger messages are rejected (dead-lettered). @default 1048576 */
  maxMessageBytes?: number;
}

/** Consumes a RabbitMQ queue (created durable, with a `<queue>.dead` dead-letter queue, when missing). */
export interface AmqpSourceDef extends SourceBaseDef {
  kind: 'amqp';
  queue: string;
}

/** Consumes a JetStream stream through a durable pull consumer. */
export interface NatsSourceDef extends SourceBaseDef {
  kind: 'nats';
  stream: string;
  subject: string;
  durable: string;
  /** Redelivery delay of a message not acknowledged (a crashed engine). @default '30s' */
  ackWait?: Duration;
}

export type SourceDef = AmqpSourceDef | NatsSourceDef;

/** A pipeline as written in `pipelines/<id>.pipeline.ts` or `.pipeline.json`. */
export interface PipelineDef<S extends string = string> {
  id: string;
  description?: string;
  /** The first step. */
  start: NoInfer<S>;
  steps: { [K in S]: StepDef<S> };
  intake?: IntakeDef;
  /** Cron triggers that create requests by themselves. */
  schedule?: ScheduleTriggerDef[];
  /** Broker queues and streams whose messages become requests (README "Sources"). */
  sources?: SourceDef[];
  /** Defaults for every module step of this pipeline. */
  defaults?: { timeout?: Duration; retry?: RetryPolicyDef };
  /** Upper bound on how many step runs one request may make (guards loops). @default 1000 */
  maxSteps?: number;
  /**
   * Per-request roles: role → a dotted path into the request context (`payload.customer.id`,
   * `vars.executor`, a step's output) whose value is an actor id, an object with an `id`, or
   * an array of them. Evaluated at each call; a role named here is never taken from a key's
   * or token's roles.
   */
  participants?: Record<string, string>;
  /** Values masked as `[REDACTED]` in every view the named roles get. */
  redact?: RedactDef<S>[];
}

/** One redaction rule: the value at `path` is hidden from `from` while any `when` entry holds (always, without `when`). */
export interface RedactDef<S extends string = string> {
  path: string;
  /** Participant or global roles. */
  from: string[];
  /** Roles that see the value even when they also hold a `from` role (the assigned executor among the candidates). */
  except?: string[];
  when?: ConditionDef<S>[];
}
