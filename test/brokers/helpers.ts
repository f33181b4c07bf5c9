/** Shared by the broker tests: unique names, fixture pipelines written per test, broker clients. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as amqpConnect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { INTAKE_FIXTURES } from '../intake/helpers';
import { tmpDir } from '../support/tmp';

export const FIXTURE_MODULES = path.join(INTAKE_FIXTURES, 'modules');

export const unique = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Writes each definition to `<dir>/<id>.pipeline.json` in a fresh temp dir; returns the dir. */
export function writePipelines(defs: Array<Record<string, unknown>>): string {
  const dir = tmpDir('brokers-pipelines');
  for (const d of defs) fs.writeFileSync(path.join(dir, `${String(d.id)}.pipeline.json`), JSON.stringify(d, null, 2));
  return dir;
}

export interface Amqp {
  conn: ChannelModel;
  ch: ConfirmChannel;
  /** Publishes and waits for the broker's confirms. */
  send(queue: string, messages: Array<{ body?: unknown; id?: string; raw?: Buffer }>): Promise<void>;
  /** Ready messages in a queue (unacknowledged ones are not counted). */
  depth(queue: string): Promise<number>;
  /** Takes every ready message of a queue (acknowledging them). */
  drain(queue: string): Promise<Array<{ body: string; messageId: string | undefined }>>;
  close(): Promise<void>;
}

export async function openAmqp(url: string): Promise<Amqp> {
  const conn = await amqpConnect(url);
  conn.on('error', () => undefined);
  const ch = await conn.createConfirmChannel();
  const created = new Set<string>();
  return {
    conn,
    ch,
    async send(queue, messages) {
      for (const m of messages) {
        const content = m.raw ?? Buffer.from(JSON.stringify(m.body));
        if (!ch.sendToQueue(queue, content, { messageId: m.id, persistent: true })) await new Promise((r) => ch.once('drain', r));
      }
      await ch.waitForConfirms();
    },
    async depth(queue) {
      const probe = await conn.createChannel();
      probe.on('error', () => undefined); // a missing queue closes the probe channel: checkQueue rejects
      try {
        return (await probe.checkQueue(queue)).messageCount;
      } finally {
        await probe.close().catch(() => undefined);
      }
    },
    async drain(queue) {
      const out: Array<{ body: string; messageId: string | undefined }> = [];
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) return out;
        out.push({ body: m.content.toString('utf8'), messageId: m.properties.messageId as string | undefined });
      }
    },
    async close() {
      for (const q of created) await ch.deleteQueue(q).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

export interface Nats {
  nc: NatsConnection;
  jsm: JetStreamManager;
  send(subject: string, messages: Array<{ body?: unknown; id?: string; raw?: Uint8Array }>): Promise<void>;
  close(): Promise<void>;
}

export async function openNats(url: string): Promise<Nats> {
  const nc = await natsConnect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  return {
    nc,
    jsm,
    async send(subject, messages) {
      const window = 500;
      for (let i = 0; i < messages.length; i += window) {
        await Promise.all(messages.slice(i, i + window).map((m) => {
          const h = natsHeaders();
          if (m.id) h.set('Nats-Msg-Id', m.id);
          return js.publish(subject, m.raw ?? JSON.stringify(m.body), { headers: h });
        }));
      }
    },
    async close() {
      await nc.close();
    },
  };
}
