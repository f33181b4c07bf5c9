/**
 * A `publish` step, done by the engine itself: renders the body and headers like a module
 * step's params, sends the message with the step's idempotency key as its message id, and
 * completes once the broker confirmed it.
 */
import { ConveyorError, ErrorCodes } from '../errors';
import type { CompiledPublishStep } from '../pipeline/types';
import { renderValue, type SecretSource } from '../templates/render';
import type { BrokerPool } from './pool';
import { expandUrl } from '../pipeline/broker-url';

export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;

/** The rendered message of a publish step (secrets as `source` gives them). */
export function renderPublish(step: CompiledPublishStep, context: Record<string, unknown>, secrets: SecretSource): { body: unknown; headers: Record<string, string> } {
  const headers = Object.fromEntries(Object.entries(step.headers).map(([k, v]) => [k, String(renderValue(v, context, secrets) ?? '')]));
  return { body: renderValue(step.body, context, secrets), headers };
}

/** Where a publish step sends, for logs and the step log. */
export function publishTarget(step: CompiledPublishStep): Record<string, string> {
  return step.amqp ? { broker: 'amqp', exchange: step.amqp.exchange, routingKey: step.amqp.routingKey } : { broker: 'nats', subject: step.nats?.subject ?? '' };
}

/** Publishes; resolves with the step's output, or rejects with a retryable `CONVEYOR_ERR_PUBLISH_FAILED`. */
export async function runPublish(
  pool: BrokerPool | undefined, step: CompiledPublishStep, message: { body: unknown; headers: Record<string, string>; messageId: string; timeoutMs: number },
): Promise<Record<string, unknown>> {
  if (!pool) throw new ConveyorError(ErrorCodes.PUBLISH_FAILED, 'this process has no broker connections (an API-only process never publishes)', { retryable: true });
  try {
    if (step.amqp) return { published: true, ...(await pool.publishAmqp(step.amqp.url, expandUrl(step.amqp.exchange), expandUrl(step.amqp.routingKey), message)) };
    return { published: true, subject: step.nats!.subject, ...(await pool.publishNats(step.nats!.url, step.nats!.subject, message)) };
  } catch (err) {
    throw new ConveyorError(ErrorCodes.PUBLISH_FAILED, `publish to ${JSON.stringify(publishTarget(step))} failed: ${(err as Error).message}`, { retryable: true, cause: err });
  }
}
