/**
 * `erp-catalog-sync`: seed 001's catalog flow. The ERP (1C) publishes `product.updated`,
 * `price.changed` and `stock.changed`; each event is validated, upserted into the shop's
 * catalog, and put into the search index; a changed price also notifies the admins (§13.3).
 *
 * - One active request per SKU (`businessKey: payload.sku`, `queue`): two events for the
 *   same SKU never race, and they apply in the order they arrived.
 * - Flow control: `rate` and `maxActive` keep the shop's load steady whatever the ERP sends.
 * - Invalid events end as `stopped` with the reasons in `validate-event.errors`.
 * - A re-sent export is harmless: importers send an `Idempotency-Key` per line, remembered
 *   for 7 days.
 * - Events arrive over HTTP, or from the ERP's RabbitMQ queue (`sources`): the message id
 *   (`event_id`) is the idempotency key; a message is acknowledged once its request is stored,
 *   and consuming pauses while 20,000 events wait, so an export stays in the broker.
 */
import { definePipeline } from '../src';

export default definePipeline({
  id: 'erp-catalog-sync',
  description: 'ERP (1C) catalog events → shop catalog, search index, price-change notices (seed 001).',
  start: 'validate-event',
  // At most 400 events a second reach the shop, and at most 150 are in flight: an ERP export
  // of a million SKUs waits in Conveyor's buffer (durably), not in the shop's request queue.
  intake: {
    rate: { max: 400, per: '1s' },
    maxActive: 150,
    businessKey: { path: 'payload.sku', onConflict: 'queue' },
    idempotencyWindow: '7d',
  },
  sources: [
    {
      kind: 'amqp',
      name: 'erp-catalog',
      url: '${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}',
      queue: '${ERP_CATALOG_QUEUE:-erp.catalog}',
      prefetch: 200,
      maxBuffered: 20_000,
    },
  ],
  defaults: { timeout: '10s', retry: { attempts: 5, backoff: '200ms', factor: 2, maxDelay: '5s' } },
  steps: {
    'validate-event': {
      description: 'Check the event against its shape; normalise numbers.',
      subsystem: 'erp-validate-event',
      params: { expect: 'catalog' },
      next: ['upsert-catalog'],
      condition: [{ field: 'validate-event.valid', operation: 'eq', value: false, result: ['reject-event'] }],
    },
    'reject-event': { kind: 'stop', status: 'stopped', reason: 'invalid ERP event', prev: ['validate-event'] },
    'upsert-catalog': {
      description: "Upsert the fields the event carries into the shop's catalog table.",
      subsystem: 'shop-upsert-product',
      params: { event: '{{ validate-event.event }}' },
      prev: ['validate-event'],
      next: ['update-search-index'],
      condition: [{ field: 'upsert-catalog.priceChanged', operation: 'eq', value: true, result: ['update-search-index', 'notify-price-change'] }],
    },
    'update-search-index': {
      description: 'Index the merged product in the search engine.',
      subsystem: 'search-index-product',
      params: { sku: '{{ upsert-catalog.sku }}', product: '{{ upsert-catalog.product }}' },
      prev: ['upsert-catalog'],
    },
    'notify-price-change': {
      description: 'Tell the admins the price changed.',
      subsystem: 'notify-price-change',
      params: { sku: '{{ upsert-catalog.sku }}', oldPrice: '{{ upsert-catalog.oldPrice }}', price: '{{ upsert-catalog.price }}' },
      prev: ['upsert-catalog'],
    },
  },
});
