/**
 * A local stand-in for a notification provider (push, SMS, e-mail), for seed 003's `push`,
 * `sms` and `email` steps. It records every message; nothing leaves the machine.
 *
 * Endpoints (`Authorization: Bearer <key>` when the stand-in has a key):
 * - `POST /v1/push` `{ to: [userId], title, body, sandbox? }`
 * - `POST /v1/sms` `{ to: [phone], message, sandbox? }`
 * - `POST /v1/email` `{ to: [address], subject, html, sandbox? }`
 *
 * Each answers `{ id, accepted: to.length, sandbox }`. A message sent with `sandbox: true`
 * (a test request) is recorded in `sandbox`, never in `delivered`: that is the provider's
 * test mode. An `Idempotency-Key` header makes a repeated call answer the first message
 * instead of sending it twice.
 *
 * Controls: `GET /_state`, `POST /_reset`, `GET|POST /_faults` (see `standin-kit.ts`).
 * Run directly (`npx tsx scripts/notify-standin.ts`) it listens on `NOTIFY_PORT` (default 8084).
 */
import { HttpError, requireString, runStandinMain, startStandin, type Json, type Standin } from './standin-kit';

export type NotifyChannel = 'push' | 'sms' | 'email';

export interface NotifyMessage {
  id: string;
  channel: NotifyChannel;
  to: string[];
  /** Push title or e-mail subject. */
  title: string | null;
  /** Push body, SMS text or e-mail HTML. */
  body: string;
  sandbox: boolean;
  idempotencyKey: string | null;
  at: string;
}

export interface NotifyState {
  calls: Record<string, number>;
  /** Messages that a real provider would have delivered. */
  delivered: NotifyMessage[];
  /** Messages sent in test mode: accepted, never delivered. */
  sandbox: NotifyMessage[];
}

/** Starts the notification stand-in. `port: 0` picks a free port. */
export async function startNotifyStandin(opts: { port?: number; host?: string; apiKey?: string } = {}): Promise<Standin<NotifyState>> {
  const apiKey = opts.apiKey ?? process.env.NOTIFY_STANDIN_KEY ?? null;
  let seq = 0;
  const byKey = new Map<string, NotifyMessage>();
  const send = (state: () => NotifyState, channel: NotifyChannel, text: { title: string | null; body: string }) => ({ body, headers }: { body: Json; headers: Record<string, unknown> }) => {
    if (apiKey && headers.authorization !== `Bearer ${apiKey}`) throw new HttpError(401, 'UNAUTHORIZED', 'a valid API key is required');
    const key = typeof headers['idempotency-key'] === 'string' ? headers['idempotency-key'] : null;
    const earlier = key ? byKey.get(key) : undefined;
    if (earlier) return { id: earlier.id, accepted: earlier.to.length, sandbox: earlier.sandbox, duplicate: true };
    if (!Array.isArray(body.to) || body.to.length === 0 || !body.to.every((t) => typeof t === 'string' && t !== '')) {
      throw new HttpError(400, 'INVALID_REQUEST', 'to must be a non-empty list of recipients');
    }
    const msg: NotifyMessage = {
      id: `msg-${++seq}`, channel, to: body.to as string[], title: text.title === null ? null : requireString(body, text.title),
      body: requireString(body, text.body), sandbox: body.sandbox === true, idempotencyKey: key, at: new Date().toISOString(),
    };
    (msg.sandbox ? state().sandbox : state().delivered).push(msg);
    if (key) byKey.set(key, msg);
    return { id: msg.id, accepted: msg.to.length, sandbox: msg.sandbox };
  };
  return startStandin<NotifyState>({
    host: opts.host ?? process.env.NOTIFY_HOST,
    port: opts.port ?? Number(process.env.NOTIFY_PORT ?? 8084),
    initial: () => ({ calls: {}, delivered: [], sandbox: [] }),
    onReset: () => {
      seq = 0;
      byKey.clear();
    },
    routes: (state) => ({
      'POST /v1/push': send(state, 'push', { title: 'title', body: 'body' }),
      'POST /v1/sms': send(state, 'sms', { title: null, body: 'message' }),
      'POST /v1/email': send(state, 'email', { title: 'subject', body: 'html' }),
    }),
  });
}

if (require.main === module) {
  runStandinMain('notification stand-in', () => startNotifyStandin(), (url) => `set NOTIFY_BASE_URL=${url}`);
}
