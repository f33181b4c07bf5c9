/**
 * Everything that can happen to a request, as it enters the supervisor. Starts, module
 * results (from any transport, a callback, the Redis results queue), external events, user
 * actions, operator commands and the supervisor's own timers are all one of these; they reach
 * `Supervisor.receive` through one port, the inbox (`src/inbox/`), and nothing else calls the
 * supervisor. The pure core's narrower vocabulary is `Outcome` (`decision.ts`).
 */
import type { BusEvents } from '../bus/bus';
import { redact } from '../log/redact';
import type { Outcome } from './decision';

/** A module's answer, an external event or a user action, as the bus carries it. */
export type StepResult = BusEvents['StepCompleted'] | BusEvents['StepFailed'];

export type InboxMessage =
  /** Intake released the request: its first step may start. */
  | { type: 'start'; requestId: string }
  /** A run's result (module, callback, event, action, a wait's timeout). */
  | { type: 'result'; requestId: string; result: StepResult }
  /** A remote module took the call (`202`) and will answer at its callback URL. */
  | { type: 'accepted'; requestId: string; accepted: BusEvents['StepAccepted'] }
  /** An operator retries the failed step (optionally with edited params or a larger budget). */
  | { type: 'resume'; requestId: string; params?: Record<string, unknown>; maxSteps?: number }
  /** An operator stops the request. */
  | { type: 'stop'; requestId: string; reason?: string }
  /** Timer: a pending run came due (`claimed` when the sweeper already claimed it in the store). */
  | { type: 'due'; requestId: string; runId: string; claimed: boolean }
  /** Timer: the lease of a sent run ran out and this process claimed it. */
  | { type: 'lease-expired'; requestId: string; runId: string }
  /** Timer: a waiting run passed its deadline. */
  | { type: 'wait-expired'; requestId: string; runId: string }
  /** Recovery: send again whatever the request still owes (single process, at start). */
  | { type: 'resend'; requestId: string }
  /** A migration moved the request to another version in the store: what this process cached of it is stale. */
  | { type: 'migrated'; requestId: string };

/** How a message ended: committed, not news (duplicate, not applicable), or failed. */
export type HandleResult = 'committed' | 'ignored' | 'failed';

/** The message of a step result. */
export function resultMessage(result: StepResult): InboxMessage {
  return { type: 'result', requestId: result.requestId, result };
}

/** What a step result is to the core: its output redacted (secrets never reach the step log). */
export function outcomeOf(e: StepResult): Outcome {
  return 'output' in e
    ? { type: 'completed', runId: e.runId, output: redact(e.output), finishedAt: e.finishedAt, durationMs: e.durationMs, via: e.via, trace: e.trace }
    : { type: 'failed', runId: e.runId, error: e.error, finishedAt: e.finishedAt, durationMs: e.durationMs, trace: e.trace };
}
