/**
 * Broker connections, one per URL and shared by every source and publish step of an engine
 * process; closed when the engine stops. A connection that drops is forgotten, so the next
 * use opens a new one.
 *
 * Publishing waits for the broker's confirmation: an AMQP confirm channel (a message no
 * queue takes, `mandatory`, counts as failed), or a JetStream publish ack.
 */
import { connect as amqpConnect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log/logger';
import { expandUrl, redactUrl } from '../pipeline/broker-url';

interface AmqpLink {
  connection: ChannelModel;
  confirm?: Promise<ConfirmChannel>;
  /** Message ids the broker returned as unroutable, until their confirm arrives. */
  returned: Set<string>;
  /** Why the broker closed the publish channel last (an unknown exchange: 404). */
  channelError?: string;
}

interface NatsLink {
  nc: NatsConnection;
  js: JetStreamClient;
}

export interface PublishMessage {
  body: unknown;
  messageId: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

const CONNECT_TIMEOUT_MS = 10_000;

export class BrokerPool {
  private readonly amqp = new Map<string, Promise<AmqpLink>>();
  private readonly nats = new Map<string, Promise<NatsLink>>();
  private closed = false;

  constructor(private readonly logger: Logger) {}

  /** The URL a template names now (`${VAR:-default}` expanded). */
  expand(template: string): string {
    return expandUrl(template);
  }

  /** The AMQP connection of a (template) URL; sources open their own channels on it. */
  async amqpConnection(template: string): Promise<ChannelModel> {
    return (await this.amqpLink(expandUrl(template))).connection;
  }

  /** The NATS connection of a (template) URL. */
  async natsConnection(template: string): Promise<NatsConnection> {
    return (await this.natsLink(expandUrl(template))).nc;
  }

  /** Publishes to an exchange and resolves once the broker confirmed it. */
  async publishAmqp(template: string, exchange: string, routingKey: string, m: PublishMessage): Promise<{ messageId: string; exchange: string; routingKey: string }> {
    const url = expandUrl(template);
    const link = await this.amqpLink(url);
    link.confirm ??= this.openConfirm(link, url);
    const ch = await link.confirm;
    const content = Buffer.from(JSON.stringify(m.body ?? null));
    await withTimeout(new Promise<void>((resolve, reject) => {
      ch.publish(exchange, routingKey, content, {
        messageId: m.messageId, persistent: true, mandatory: true, contentType: 'application/json', headers: m.headers,
      }, (err: unknown) => {
        const unroutable = link.returned.delete(m.messageId);
        if (err) reject(new Error(link.channelError ?? (err instanceof Error ? err.message : `the broker refused the message (${String(err)})`)));
        else if (unroutable) reject(new Error(`no queue is bound to exchange "${exchange}" for routing key "${routingKey}"`));
        else resolve();
      });
    }), m.timeoutMs, 'the broker did not confirm the message');
    return { messageId: m.messageId, exchange, routingKey };
  }

  /** Publishes to a JetStream subject; the stream drops a repeated `msgID` within its duplicate window. */
  async publishNats(template: string, subject: string, m: PublishMessage): Promise<{ messageId: string; stream: string; seq: number; duplicate: boolean }> {
    const { js } = await this.natsLink(expandUrl(template));
    const h = natsHeaders();
    for (const [k, v] of Object.entries(m.headers)) h.set(k, v);
    const ack: PubAck = await js.publish(subject, JSON.stringify(m.body ?? null), { msgID: m.messageId, headers: h, timeout: m.timeoutMs });
    return { messageId: m.messageId, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  }

  async close(): Promise<void> {
    this.closed = true;
    const amqp = [...this.amqp.values()];
    const nats = [...this.nats.values()];
    this.amqp.clear();
    this.nats.clear();
    await Promise.all([
      ...amqp.map((p) => p.then((l) => l.connection.close()).catch(() => undefined)),
      ...nats.map((p) => p.then(async (l) => {
        await l.nc.drain();
      }).catch(() => undefined)),
    ]);
  }

  private amqpLink(url: string): Promise<AmqpLink> {
    if (this.closed) return Promise.reject(new Error('the broker pool is closed'));
    let link = this.amqp.get(url);
    if (!link) {
      link = (async () => {
        const connection = await amqpConnect(url, { timeout: CONNECT_TIMEOUT_MS });
        const forget = (): void => {
          if (this.amqp.get(url) === link) this.amqp.delete(url);
        };
        connection.on('error', (err: Error) => this.logger.warn('AMQP connection error', { url: redactUrl(url), error: err.message }));
        connection.on('close', forget);
        return { connection, returned: new Set<string>() };
      })();
      link.catch(() => {
        if (this.amqp.get(url) === link) this.amqp.delete(url);
      });
      this.amqp.set(url, link);
    }
    return link;
  }

  private async openConfirm(link: AmqpLink, url: string): Promise<ConfirmChannel> {
    try {
      const ch = await link.connection.createConfirmChannel();
      link.channelError = undefined;
      // A channel error (an unknown exchange closes the channel) is the publish's failure; the next publish opens a new channel.
      ch.on('error', (err: Error) => {
        link.channelError = err.message;
        this.logger.warn('AMQP publish channel closed', { url: redactUrl(url), error: err.message });
      });
      ch.on('close', () => {
        link.confirm = undefined;
      });
      ch.on('return', (msg: { properties: { messageId?: string } }) => {
        if (msg.properties.messageId) link.returned.add(msg.properties.messageId);
      });
      return ch;
    } catch (err) {
      link.confirm = undefined;
      throw err;
    }
  }

  private natsLink(url: string): Promise<NatsLink> {
    if (this.closed) return Promise.reject(new Error('the broker pool is closed'));
    let link = this.nats.get(url);
    if (!link) {
      link = (async () => {
        const nc = await natsConnect({ servers: url, name: 'conveyor', timeout: CONNECT_TIMEOUT_MS, maxReconnectAttempts: -1 });
        void nc.closed().then(() => {
          if (this.nats.get(url) === link) this.nats.delete(url);
        });
        return { nc, js: jetstream(nc) };
      })();
      link.catch(() => {
        if (this.nats.get(url) === link) this.nats.delete(url);
      });
      this.nats.set(url, link);
    }
    return link;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
