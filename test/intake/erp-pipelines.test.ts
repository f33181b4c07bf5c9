/**
 * Seed 001's pipelines end to end against the local stand-ins: `erp-catalog-sync` (product,
 * price and stock events → the shop's catalog table, the search index, price notices), over
 * HTTP and from the ERP's RabbitMQ queue, and `order-to-erp` (an order → `order.created` on
 * the ERP's exchange → an ERP document → each status to the customer → its final status back
 * in the shop).
 */
import { expect } from 'chai';
import type { ErpBroker } from '../../scripts/erp-broker';
import type { ErpStandin } from '../../scripts/erp-standin';
import type { NotifyState } from '../../scripts/notify-standin';
import type { SearchStandin } from '../../scripts/search-standin';
import type { ShopStandin } from '../../scripts/shop-standin';
import type { Standin } from '../../scripts/standin-kit';
import type { TestEngine } from '../support/engine';
import { startErpWorld, type ErpWorld } from '../support/erp-world';
import { until } from './helpers';

interface RequestBody {
  id: string;
  status: string;
  context: Record<string, Record<string, unknown>>;
}

describe('seed 001 pipelines: erp-catalog-sync and order-to-erp (shop, search and ERP stand-ins)', function () {
  this.timeout(60_000);
  let world: ErpWorld;
  let shop: ShopStandin;
  let search: SearchStandin;
  let erp: ErpStandin;
  let notify: Standin<NotifyState>;
  let erpBroker: ErpBroker;
  let t: TestEngine;
  let names: ErpWorld['names'];

  before(async () => {
    // Each ERP status lasts two reads, so the poller sees every one of them on any machine.
    world = await startErpWorld({ label: 't.erp', statusReads: 2, search: true, pollEvery: '20ms', pollMaxEvery: '100ms' });
    ({ shop, erp, notify, erpBroker, t, names } = world);
    search = world.search!;
  });
  after(() => world?.close());

  const run = async (pipeline: string, payload: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RequestBody> => {
    const r = await t.api<RequestBody>('POST', `/api/pipelines/${pipeline}/requests?wait=20`, { body: payload, headers });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body;
  };
  const product = async (sku: string) => (await fetch(`${shop.url}/catalog/products/${sku}`)).json() as Promise<Record<string, unknown>>;

  describe('erp-catalog-sync', () => {
    it('product.updated creates the product in the catalog table and the search index', async () => {
      const r = await run('erp-catalog-sync', {
        event: 'product.updated', id: '1001', sku: 'IP15P-256GB-BLUE', name: 'iPhone 15 Pro', price: 98000,
        stock: { msk: 100, spb: 50 }, attributes: { color: 'Синий', memory: '256 ГБ' },
      });
      expect(r.status).to.equal('completed');
      expect(Object.keys(r.context)).to.include.members(['validate-event', 'upsert-catalog', 'update-search-index']);
      expect(r.context).to.not.have.property('notify-price-change');
      const row = await shop.catalog.query("SELECT sku, name, price, stock, version FROM catalog_products WHERE sku = 'IP15P-256GB-BLUE'");
      expect(row).to.deep.equal([{ sku: 'IP15P-256GB-BLUE', name: 'iPhone 15 Pro', price: 98000, stock: '{"msk":100,"spb":50}', version: 1 }]);
      const doc = search.indexes.get('products')!.get('IP15P-256GB-BLUE')!;
      expect(doc.doc).to.include({ name: 'iPhone 15 Pro', price: 98000 });
    });

    it('price.changed updates the price, re-indexes and notifies the admins; stock.changed merges warehouses', async () => {
      const r = await run('erp-catalog-sync', { event: 'price.changed', sku: 'IP15P-256GB-BLUE', price: '95000' });
      expect(r.status).to.equal('completed');
      expect(r.context['upsert-catalog']).to.include({ priceChanged: true, oldPrice: 98000, price: 95000 });
      expect(shop.notifications.filter((n) => n.sku === 'IP15P-256GB-BLUE')).to.have.length(1);
      expect(shop.notifications.at(-1)).to.include({ kind: 'price.changed', oldPrice: 98000, price: 95000 });
      await run('erp-catalog-sync', { event: 'stock.changed', sku: 'IP15P-256GB-BLUE', stock: { spb: 7, ekb: 3 } });
      expect(await product('IP15P-256GB-BLUE')).to.deep.include({ price: 95000, stock: { msk: 100, spb: 7, ekb: 3 }, version: 3 });
      expect(search.indexes.get('products')!.get('IP15P-256GB-BLUE')!.doc).to.deep.include({ stock: { msk: 100, spb: 7, ekb: 3 } });
    });

    it('an invalid event stops with the reasons and touches nothing', async () => {
      const r = await run('erp-catalog-sync', { event: 'price.changed', sku: 'BAD SKU!', price: -1 });
      expect(r.status).to.equal('stopped');
      expect(r.context['validate-event']).to.deep.equal({ valid: false, errors: ['sku must be 1-100 letters, digits, ".", "_" or "-"', 'price must be a number >= 0'] });
      expect(r.context).to.not.have.property('upsert-catalog');
    });

    it('applies 12 concurrent events for one SKU one at a time, in arrival order (business key queue)', async () => {
      const answers = [];
      for (let i = 1; i <= 12; i++) {
        // Sequential submits fix the arrival order; none waits for the previous to run.
        answers.push(await t.api<{ id: string }>('POST', '/api/pipelines/erp-catalog-sync/requests', { body: { event: 'price.changed', sku: 'ORDERED-1', price: i * 10 } }));
      }
      expect(answers.every((a) => a.status === 202)).to.equal(true);
      await until('12 events applied', async () => ((await product('ORDERED-1').catch(() => ({}))) as { version?: number }).version === 12 ? true : undefined, 30_000);
      expect(await product('ORDERED-1')).to.include({ price: 120, version: 12 });
    });
  });

  describe('erp-catalog-sync from the ERP\'s RabbitMQ queue (source)', () => {
    it('catalog events the ERP publishes reach the shop in order per SKU; a bad one is dead-lettered and listed', async () => {
      const events = [
        { event_id: 'q-1', event: 'product.updated', id: '7001', sku: 'Q-SKU-1', name: 'Kindle 7001', price: 9000, stock: { msk: 5 } },
        { event_id: 'q-2', event: 'product.updated', id: '7002', sku: 'Q-SKU-2', name: 'Pixel 7002', price: 50000, stock: { msk: 1 } },
        ...Array.from({ length: 8 }, (_, i) => ({ event_id: `q-p${i}`, event: 'price.changed', sku: 'Q-SKU-1', price: 9100 + i })),
        { event_id: 'q-3', event: 'stock.changed', sku: 'Q-SKU-2', stock: { spb: 4 } },
      ];
      expect(await erpBroker.publishCatalog(events)).to.equal(11);
      await until('the events to be applied', async () => ((await product('Q-SKU-1').catch(() => ({}))) as { version?: number }).version === 9 ? true : undefined, 30_000);
      expect(await product('Q-SKU-1')).to.include({ price: 9107, version: 9 });
      await until('the stock event to be applied', async () => ((await product('Q-SKU-2').catch(() => ({}))) as { version?: number }).version === 2 ? true : undefined, 30_000);
      expect(await product('Q-SKU-2')).to.deep.include({ price: 50000, stock: { msk: 1, spb: 4 } });
      const keys = await t.engine.store.query<{ idempotency_key: string }>("SELECT idempotency_key FROM requests WHERE pipeline_id = 'erp-catalog-sync' AND idempotency_key LIKE 'q-%'");
      expect(keys).to.have.length(11);
      // The ERP sends the same export again: nothing new is stored.
      await erpBroker.publishCatalog(events.slice(0, 2));
      await erpBroker.publishRaw('product.updated', 'q-broken', '{"sku": ');
      await until('the broken event to be listed', async () => (await t.api<{ rejects: Array<{ messageId: string }> }>('GET', '/api/sources')).body.rejects.some((r) => r.messageId === 'q-broken'), 20_000, 100);
      const source = () => t.api<{ sources: Array<{ pipeline: string; duplicates: number; stored: number }> }>('GET', '/api/sources').then((r) => r.body.sources.find((x) => x.pipeline === 'erp-catalog-sync')!);
      await until('the re-sent events to be seen as duplicates', async () => (await source()).duplicates === 2, 20_000, 100);
      expect(await source()).to.include({ stored: 11, duplicates: 2 });
    });
  });

  describe('order-to-erp', () => {
    const order = (id: string, quantity = 1) => ({ event: 'order.created', order_id: id, user_id: 'USR-789', items: [{ product_id: '1001', quantity }, { product_id: '2002', quantity: 2 }], total: 102000, status: 'created' });

    it('sends the order to the ERP, follows its status, and writes the final status back to the shop', async () => {
      const r = await run('order-to-erp', order('ORD-2024-12345'));
      expect(r.status).to.equal('completed');
      const erpId = r.context['follow-erp-status']!.erpId as string;
      expect(r.context['send-to-erp']).to.include({ published: true, exchange: names.exchange, routingKey: 'order.created' });
      expect(r.context['follow-erp-status']).to.include({ erpId, status: 'completed', done: true });
      expect(shop.orders.get('ORD-2024-12345')).to.include({ status: 'completed', erpId });
      expect(erp.orders.get(erpId)!.orderId).to.equal('ORD-2024-12345');
      const steps = await t.api<{ items: Array<{ stepId: string; status: string }> }>('GET', `/api/requests/${r.id}/steps`);
      expect(steps.body.items.filter((s) => s.status === 'completed').map((s) => s.stepId)).to.include.members(['validate-order', 'send-to-erp', 'follow-erp-status', 'shop-update-order']);
    });

    it('reports an order the ERP rejects as rejected, with the reason', async () => {
      const r = await run('order-to-erp', order('ORD-BIG', 500));
      expect(r.status).to.equal('completed');
      expect(shop.orders.get('ORD-BIG')).to.include({ status: 'rejected', reason: 'not enough stock' });
    });

    it('answers a re-sent order with the run already following it (business key, return-existing)', async () => {
      const first = await t.api<{ id: string }>('POST', '/api/pipelines/order-to-erp/requests', { body: order('ORD-TWICE') });
      const again = await t.api<{ id: string }>('POST', '/api/pipelines/order-to-erp/requests', { body: order('ORD-TWICE') });
      expect(first.status).to.equal(202);
      expect(again.status).to.equal(200);
      expect(again.body.id).to.equal(first.body.id);
      await until('the order to reach the shop', async () => (shop.orders.get('ORD-TWICE') ? true : undefined), 20_000);
      expect([...erp.orders.values()].filter((o) => o.orderId === 'ORD-TWICE')).to.have.length(1);
    });

    it('tells the customer each status the ERP reports: by e-mail when the order has an address, else by SMS', async () => {
      const byMail = await run('order-to-erp', { ...order('ORD-MAIL'), customer: { email: 'anna@example.com', phone: '+7 900 000-00-01' } });
      const bySms = await run('order-to-erp', { ...order('ORD-SMS', 500), customer: { phone: '+7 900 000-00-02' } });
      expect([byMail.status, bySms.status]).to.deep.equal(['completed', 'completed']);
      const sent = notify.state.delivered;
      const mails = sent.filter((m) => m.to.includes('anna@example.com'));
      expect(mails.map((m) => [m.channel, m.title])).to.deep.equal([
        ['email', 'Order ORD-MAIL: accepted'], ['email', 'Order ORD-MAIL: processing'], ['email', 'Order ORD-MAIL: completed'],
      ]);
      const sms = sent.filter((m) => m.to.includes('+7 900 000-00-02'));
      expect(sms.map((m) => [m.channel, m.body])).to.deep.equal([
        ['sms', 'Order ORD-SMS: accepted'], ['sms', 'Order ORD-SMS: processing'], ['sms', 'Order ORD-SMS: rejected (not enough stock)'],
      ]);
      expect(shop.orders.get('ORD-SMS')).to.include({ status: 'rejected' });
    });

    it('answers a re-sent finished order with the finished request, and calls no module (reuse: return-existing)', async () => {
      const first = await run('order-to-erp', { ...order('ORD-AGAIN'), customer: { email: 'bob@example.com' } });
      expect(first.status).to.equal('completed');
      const before = { rows: (await t.countRows()).stepRuns, erp: erp.orders.size, mails: notify.state.delivered.length, shop: shop.orders.get('ORD-AGAIN') };
      const again = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/order-to-erp/requests', { body: { ...order('ORD-AGAIN'), customer: { email: 'bob@example.com' } } });
      expect(again.status).to.equal(200);
      expect(again.headers['x-conveyor-existing-request']).to.equal('true');
      expect(again.body).to.include({ id: first.id, status: 'completed' });
      expect({ rows: (await t.countRows()).stepRuns, erp: erp.orders.size, mails: notify.state.delivered.length, shop: shop.orders.get('ORD-AGAIN') }).to.deep.equal(before);
      expect([...erp.orders.values()].filter((o) => o.orderId === 'ORD-AGAIN')).to.have.length(1);
    });

    it('stops an invalid order before the ERP sees it', async () => {
      const before = erp.orders.size;
      const r = await run('order-to-erp', { order_id: 'ORD-EMPTY', user_id: 'U', items: [], total: 0 });
      expect(r.status).to.equal('stopped');
      expect(erp.orders.size).to.equal(before);
    });
  });
});
