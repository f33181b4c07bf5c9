/**
 * The ERP stand-in's broker side (seed 001 §7.2–7.4, over RabbitMQ as 1C would use it): the
 * ERP publishes its catalog events (`product.updated`, `price.changed`, `stock.changed`) to
 * its topic exchange, where the catalog queue takes them, and reads `order.created` from its
 * orders queue, creating the ERP document of each (deduplicated by the message id).
 *
 * Names (environment, defaults): exchange `ERP_EXCHANGE` (`erp`), catalog queue
 * `ERP_CATALOG_QUEUE` (`erp.catalog`, dead-lettering into `erp.catalog.dead`), orders queue
 * `ERP_ORDERS_QUEUE` (`erp.orders`, bound to `order.created`).
 */
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { ErpStandin } from './erp-standin';

export interface ErpBrokerNames {
  exchange: string;
  catalogQueue: string;
  ordersQueue: string;
}

export interface ErpBroker {
  names: ErpBrokerNames;
  /** Publishes catalog events (message id = `event_id`, routing key = `event`), confirmed. */
  publishCatalog(events: Iterable<Record<string, unknown>>): Promise<number>;
  /** Publishes any bytes as a catalog message (to show what a broken one does). */
  publishRaw(routingKey: string, messageId: string, content: string): Promise<void>;
  /** Orders taken from the orders queue so far (a redelivered one counts once). */
  ordersTaken(): number;
  /** Deletes the exchange and queues (tests on a shared broker). */
  deleteAll(): Promise<void>;
  close(): Promise<void>;
}

export function erpBrokerNames(env: NodeJS.ProcessEnv = process.env): ErpBrokerNames {
  return {
    exchange: env.ERP_EXCHANGE || 'erp',
    catalogQueue: env.ERP_CATALOG_QUEUE || 'erp.catalog',
    ordersQueue: env.ERP_ORDERS_QUEUE || 'erp.orders',
  };
}

/** Declares the ERP's exchange and queues and starts reading orders into `erp`. */
export async function connectErpBroker(erp: ErpStandin, url: string, names: ErpBrokerNames = erpBrokerNames()): Promise<ErpBroker> {
  const conn: ChannelModel = await connect(url);
  conn.on('error', () => undefined);
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  const dead = `${names.catalogQueue}.dead`;
  await ch.assertExchange(names.exchange, 'topic', { durable: true });
  await ch.assertQueue(dead, { durable: true });
  await ch.assertQueue(names.catalogQueue, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead } });
  for (const key of ['product.*', 'price.*', 'stock.*']) await ch.bindQueue(names.catalogQueue, names.exchange, key);
  await ch.assertQueue(names.ordersQueue, { durable: true });
  await ch.bindQueue(names.ordersQueue, names.exchange, 'order.created');
  const orders = new Set<string>();
  const consumer = await conn.createChannel();
  await consumer.prefetch(50);
  await consumer.consume(names.ordersQueue, (msg) => {
    if (!msg) return;
    try {
      const body = JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;
      erp.createOrder(body, typeof msg.properties.messageId === 'string' ? msg.properties.messageId : undefined);
      if (typeof body.order_id === 'string') orders.add(body.order_id);
      consumer.ack(msg);
    } catch {
      consumer.nack(msg, false, false);
    }
  });
  return {
    names,
    async publishCatalog(events) {
      let n = 0;
      for (const e of events) {
        const ok = ch.publish(names.exchange, String(e.event), Buffer.from(JSON.stringify(e)), { messageId: String(e.event_id), persistent: true, contentType: 'application/json' });
        n++;
        if (!ok) await new Promise((r) => ch.once('drain', r));
        if (n % 5000 === 0) await ch.waitForConfirms();
      }
      await ch.waitForConfirms();
      return n;
    },
    async publishRaw(routingKey, messageId, content) {
      ch.publish(names.exchange, routingKey, Buffer.from(content), { messageId, persistent: true });
      await ch.waitForConfirms();
    },
    ordersTaken: () => orders.size,
    async deleteAll() {
      for (const q of [names.catalogQueue, dead, names.ordersQueue]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(names.exchange).catch(() => undefined);
    },
    async close() {
      await conn.close().catch(() => undefined);
    },
  };
}
