/**
 * The two broker sources, behind one small interface: open, start/pause consuming, close.
 * Each delivery carries its own ack (after the request is stored), dead-letter (a bad
 * message) and retry (a store failure: the message comes back later).
 *
 * - AMQP: a channel with `prefetch` on the pool's connection for the URL. A queue that does
 *   not exist is created durable, dead-lettering into `<queue>.dead`; an existing queue keeps
 *   its own dead-letter settings. Dead-letter = `nack` without requeue.
 * - JetStream: a durable pull consumer (`ack: explicit`, `max_ack_pending = prefetch`); the
 *   stream is created for the subject when missing. Dead-letter = `term`.
 */
import type { Channel, Message } from 'amqplib';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { BrokerPool } from '../brokers/pool';
import { expandUrl } from '../pipeline/broker-url';
import type { CompiledSource } from '../pipeline/types';

export interface Delivery {
  content: Uint8Array;
  /** AMQP `message_id`; JetStream `Nats-Msg-Id`, else `<stream>:<sequence>`. */
  messageId: string | null;
  ack(): void;
  deadLetter(reason: string): void;
  retry(delayMs: number): void;
}

export interface SourceAdapter {
  /** Connects and makes sure the queue / stream and consumer exist. */
  open(onLost: (err: Error) => void): Promise<void>;
  start(deliver: (d: Delivery) => void): Promise<void>;
  pause(): Promise<void>;
  close(): Promise<void>;
}

export function adapterFor(source: CompiledSource, pool: BrokerPool): SourceAdapter {
  return source.kind === 'amqp' ? new AmqpAdapter(source, pool) : new NatsAdapter(source, pool);
}

class AmqpAdapter implements SourceAdapter {
  private ch: Channel | undefined;
  /** One per channel: a pause and a new consume on the same channel share it (see AckBatcher). */
  private acks: AckBatcher | undefined;
  private tag: string | undefined;
  private closing = false;
  /** The queue name, `${VAR:-default}` expanded (at open: a missing variable is the source's error, not the engine's). */
  private queue = '';

  constructor(
    private readonly s: Extract<CompiledSource, { kind: 'amqp' }>,
    private readonly pool: BrokerPool,
  ) {}

  async open(onLost: (err: Error) => void): Promise<void> {
    this.queue = expandUrl(this.s.queue);
    const conn = await this.pool.amqpConnection(this.s.url);
    const channel = async (): Promise<Channel> => {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined); // the close that follows is what counts
      return ch;
    };
    let ch = await channel();
    try {
      await ch.checkQueue(this.queue);
    } catch {
      // The check closed the channel (404): create the queue with its dead-letter queue.
      ch = await channel();
      const dead = `${this.queue}.dead`;
      await ch.assertQueue(dead, { durable: true });
      await ch.assertQueue(this.queue, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead } });
    }
    await ch.prefetch(this.s.prefetch);
    ch.on('close', () => {
      this.ch = undefined;
      if (!this.closing) onLost(new Error('the AMQP channel closed'));
    });
    this.ch = ch;
    this.acks = new AckBatcher(ch, () => this.ch === ch);
  }

  async start(deliver: (d: Delivery) => void): Promise<void> {
    const ch = this.ch;
    if (!ch || this.tag) return;
    const acks = this.acks!;
    const ok = await ch.consume(this.queue, (msg) => {
      if (!msg) return; // cancelled by the broker (queue deleted): the channel's close follows or the sweep reopens
      let settled = false;
      const once = (fn: () => void): void => {
        if (settled || this.ch !== ch) return;
        settled = true;
        fn();
      };
      acks.delivered(msg);
      deliver({
        content: msg.content,
        messageId: typeof msg.properties.messageId === 'string' && msg.properties.messageId !== '' ? msg.properties.messageId : null,
        ack: () => once(() => acks.ack(msg)),
        deadLetter: () => once(() => acks.nack(msg, false)),
        retry: (delayMs) => setTimeout(() => once(() => acks.nack(msg, true)), delayMs),
      });
    }, { noAck: false });
    this.tag = ok.consumerTag;
  }

  async pause(): Promise<void> {
    const tag = this.tag;
    this.tag = undefined;
    if (tag && this.ch) await this.ch.cancel(tag).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pause();
    await this.ch?.close().catch(() => undefined);
    this.ch = undefined;
  }
}

/**
 * Acknowledges a channel's deliveries in as few frames as the order allows. An `ack` is sent at
 * the end of the event-loop turn it was asked in (never later): the acked deliveries at the
 * front of the unsettled ones (in delivery order) go as one `basic.ack` with `multiple`, and any
 * acked behind a delivery still unsettled go one by one. A `nack` (dead-letter or retry) is sent
 * at once, on its own. So a message is never acknowledged before its request is stored, and no
 * acknowledgement waits for another message.
 */
export class AckBatcher {
  /** Unsettled deliveries by delivery tag, in delivery order; `true` once acked but not yet sent. */
  private readonly open = new Map<number, { msg: Message; acked: boolean }>();
  private scheduled = false;
  /** Frames sent: `basic.ack` frames and the deliveries they settled (for tests and the bench). */
  readonly sent = { ackFrames: 0, acked: 0 };

  /**
   * One per channel, for every consume on it: a `multiple` ack settles every earlier delivery
   * on the channel, so all of them must be known here. `live` is false once the channel is
   * gone: nothing is sent on it then (its unsettled deliveries come back to the broker).
   */
  constructor(
    private readonly ch: Pick<Channel, 'ack' | 'nack'>,
    private readonly live: () => boolean = () => true,
  ) {}

  delivered(msg: Message): void {
    this.open.set(msg.fields.deliveryTag, { msg, acked: false });
  }

  ack(msg: Message): void {
    const entry = this.open.get(msg.fields.deliveryTag);
    if (!entry) return;
    entry.acked = true;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  nack(msg: Message, requeue: boolean): void {
    if (!this.open.delete(msg.fields.deliveryTag) || !this.live()) return;
    this.ch.nack(msg, false, requeue);
  }

  private flush(): void {
    this.scheduled = false;
    if (!this.live()) return;
    let front: Message | undefined;
    let frontCount = 0;
    let inOrder = true;
    for (const [tag, entry] of this.open) {
      if (!entry.acked) {
        if (front) this.send(front, frontCount > 1, frontCount);
        front = undefined;
        inOrder = false;
        continue;
      }
      this.open.delete(tag);
      if (inOrder) {
        front = entry.msg;
        frontCount++;
      } else this.send(entry.msg, false, 1);
    }
    if (front) this.send(front, frontCount > 1, frontCount);
  }

  private send(msg: Message, multiple: boolean, count: number): void {
    try {
      this.ch.ack(msg, multiple);
    } catch {
      return; // the channel closed meanwhile: the broker redelivers what it did not get
    }
    this.sent.ackFrames++;
    this.sent.acked += count;
  }
}

class NatsAdapter implements SourceAdapter {
  private messages: ConsumerMessages | undefined;
  private consumer: Awaited<ReturnType<ReturnType<typeof jetstream>['consumers']['get']>> | undefined;
  private onLost: (err: Error) => void = () => undefined;

  constructor(
    private readonly s: Extract<CompiledSource, { kind: 'nats' }>,
    private readonly pool: BrokerPool,
  ) {}

  async open(onLost: (err: Error) => void): Promise<void> {
    this.onLost = onLost;
    const nc = await this.pool.natsConnection(this.s.url);
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(this.s.stream);
    } catch {
      await jsm.streams.add({ name: this.s.stream, subjects: [this.s.subject] });
    }
    const config = {
      durable_name: this.s.durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: this.s.subject,
      ack_wait: this.s.ackWaitMs * 1_000_000, max_ack_pending: this.s.prefetch,
    };
    const exists = await jsm.consumers.info(this.s.stream, this.s.durable).then(() => true, () => false);
    if (!exists) await jsm.consumers.add(this.s.stream, config);
    // An existing consumer takes the current limits where the server allows it to change them.
    else await jsm.consumers.update(this.s.stream, this.s.durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending }).catch(() => undefined);
    this.consumer = await jetstream(nc).consumers.get(this.s.stream, this.s.durable);
  }

  async start(deliver: (d: Delivery) => void): Promise<void> {
    if (!this.consumer || this.messages) return;
    const messages = await this.consumer.consume({ max_messages: this.s.prefetch });
    this.messages = messages;
    void (async () => {
      for await (const m of messages) deliver(this.delivery(m));
    })().then(
      () => {
        if (this.messages === messages) {
          this.messages = undefined;
          this.onLost(new Error('the JetStream consumer stopped'));
        }
      },
      (err: unknown) => {
        if (this.messages === messages) this.messages = undefined;
        this.onLost(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private delivery(m: JsMsg): Delivery {
    const id = m.headers?.get('Nats-Msg-Id');
    return {
      content: m.data,
      messageId: id ? id : `${this.s.stream}:${m.seq}`,
      ack: () => m.ack(),
      // No reason text: servers before 2.10.4 ignore a "+TERM <reason>" and redeliver.
      deadLetter: () => m.term(),
      retry: (delayMs) => m.nak(delayMs),
    };
  }

  async pause(): Promise<void> {
    const messages = this.messages;
    this.messages = undefined;
    if (messages) await messages.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.pause();
    this.consumer = undefined;
  }
}
