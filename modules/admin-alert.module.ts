/**
 * `admin-alert`: tells the administrator that a request stopped on an error (seed 000 §7), by
 * e-mail through the notification provider (`NOTIFY_BASE_URL`). Conveyor's admin notifier
 * calls it when `CONVEYOR_ADMIN_MODULE=admin-alert`; it is not meant as a pipeline step.
 *
 * Params: the notifier's payload `{ requestId, pipeline, error, links }`.
 * Env: `CONVEYOR_ADMIN_EMAIL` (default `admin@localhost`), `NOTIFY_API_KEY`.
 * Output: `{ messageId, to }`.
 */
import { defineModule } from '../src';
import { baseUrl, callJson, obj } from './lib/http-json';

const escape = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'admin-alert',
  description: 'E-mails the administrator when a request stops on an error (the admin notifier\'s module).',
  timeout: '15s',
  async handle({ params }, ctx) {
    const error = obj(params.error);
    const links = obj(params.links);
    const to = process.env.CONVEYOR_ADMIN_EMAIL || 'admin@localhost';
    const lines = [
      `Request ${String(params.requestId)} of pipeline ${String(params.pipeline)} stopped on an error and waits for an operator.`,
      `Step: ${String(error.stepId ?? '?')}, ${String(error.code ?? '')}: ${String(error.message ?? '')}`,
      ...Object.entries(links).map(([k, v]) => `${k}: ${String(v)}`),
    ];
    const key = process.env.NOTIFY_API_KEY;
    const res = await callJson<{ id: string }>(`${baseUrl('NOTIFY_BASE_URL', 'http://127.0.0.1:8084')}/v1/email`, {
      service: 'notification provider',
      headers: { 'idempotency-key': ctx.idempotencyKey, ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: { to: [to], subject: `ERROR_STOP: ${String(params.pipeline)} ${String(params.requestId)}`, html: lines.map((l) => escape(l)).join('<br/>'), sandbox: ctx.test },
      signal: ctx.signal,
    });
    return { messageId: res.id, to: [to] };
  },
});
