/**
 * `notify`: seed 003's `push`, `sms` and `email` steps, through a notification provider (the
 * stand-in `scripts/notify-standin.ts` by default; `NOTIFY_BASE_URL`). Texts arrive rendered:
 * the pipeline's templates (`Заказ #{{ order.code }}`) are filled in by the engine.
 *
 * Recipients are roles, user ids, phone numbers or e-mail addresses (see `lib/recipients.ts`):
 * "executor" is the order's assigned executor (`executorUserId`) if there is one, otherwise
 * every executor of the provider. A test request (`?test=1`) goes to the provider's sandbox:
 * accepted, never delivered. The step's idempotency key goes with the call, so a redelivery
 * does not notify twice.
 *
 * Params: `channel` (`push` | `sms` | `email`), `recipients`, `order` (the order, for its
 * people), `executorUserId`, `apiKey` (`{{ secrets.NOTIFY_API_KEY }}`), and the texts: push
 * `title` + `body`; sms `message`; email `subject` + `text`.
 * Output: `{ channel, to, messageId, sandbox }`, or `{ channel, to: [], skipped }` when
 * nobody has an address on that channel.
 */
import { defineModule, NonRetryableError } from '../src';
import { baseUrl, callJson, obj, str } from './lib/http-json';
import { resolveRecipients, type Channel, type OrderPeople } from './lib/recipients';

const CHANNELS: readonly Channel[] = ['push', 'sms', 'email'];

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'notify',
  description: 'push / sms / email to roles, users, phones or addresses, through the notification provider.',
  timeout: '15s',
  retry: { attempts: 4, backoff: '1s' },
  async handle({ params }, ctx) {
    const channel = params.channel as Channel;
    if (!CHANNELS.includes(channel)) throw new NonRetryableError(`channel must be push, sms or email (got ${JSON.stringify(params.channel)})`);
    const recipients = Array.isArray(params.recipients) ? params.recipients.map(String) : [];
    const to = resolveRecipients(recipients, channel, obj(params.order) as OrderPeople, str(params.executorUserId) ?? null);
    if (to.length === 0) return { channel, to: [], skipped: `nobody in ${JSON.stringify(recipients)} has a ${channel} address` };
    const text = channel === 'push'
      ? { title: str(params.title) ?? '', body: str(params.body) }
      : channel === 'sms' ? { message: str(params.message) } : { subject: str(params.subject) ?? '', html: str(params.text) };
    if (Object.values(text).some((v) => v === undefined)) throw new NonRetryableError(`a ${channel} needs its text (${channel === 'push' ? 'body' : channel === 'sms' ? 'message' : 'text'})`);
    const apiKey = str(params.apiKey);
    const res = await callJson<{ id: string; sandbox: boolean }>(`${baseUrl('NOTIFY_BASE_URL', 'http://127.0.0.1:8084')}/v1/${channel}`, {
      service: 'notification provider',
      headers: { 'idempotency-key': ctx.idempotencyKey, ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: { to, ...text, sandbox: ctx.test },
      signal: ctx.signal,
    });
    return { channel, to, messageId: res.id, sandbox: res.sandbox };
  },
});
