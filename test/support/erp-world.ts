/**
 * Seed 001's world for a test: the shop, ERP and notification stand-ins (and optionally the
 * search stand-in), the ERP's exchange and queues on the shared RabbitMQ under names of the
 * suite's own, and an engine whose pipelines reach them. `close()` takes it all down again.
 */
import * as path from 'node:path';
import { connectErpBroker, type ErpBroker } from '../../scripts/erp-broker';
import { startErpStandin, type ErpStandin } from '../../scripts/erp-standin';
import { startNotifyStandin, type NotifyState } from '../../scripts/notify-standin';
import { startSearchStandin, type SearchStandin } from '../../scripts/search-standin';
import { startShopStandin, type ShopStandin } from '../../scripts/shop-standin';
import type { Standin } from '../../scripts/standin-kit';
import { unique } from '../brokers/helpers';
import { freshPipeline } from '../workflow/support';
import { startTestEngine, type TestEngine } from './engine';
import { requireAmqp } from './services';
import { cleanupTmpDirs, tmpDir } from './tmp';

export interface ErpWorld {
  shop: ShopStandin;
  erp: ErpStandin;
  notify: Standin<NotifyState>;
  search?: SearchStandin;
  erpBroker: ErpBroker;
  /** The suite's own exchange and queues. */
  names: { exchange: string; catalogQueue: string; ordersQueue: string };
  t: TestEngine;
  close(): Promise<void>;
}

export interface ErpWorldOptions {
  /** The exchange and queue names' prefix, unique per suite. */
  label: string;
  /** How many reads each ERP order status lasts. */
  statusReads: number;
  /** Also start the search stand-in (erp-catalog-sync indexes products there). */
  search?: boolean;
  /** `ERP_POLL_EVERY` and `ERP_POLL_MAX_EVERY` of order-to-erp. */
  pollEvery: string;
  pollMaxEvery: string;
}

export async function startErpWorld(o: ErpWorldOptions): Promise<ErpWorld> {
  const names = { exchange: unique(o.label), catalogQueue: unique(`${o.label}.catalog`), ordersQueue: unique(`${o.label}.orders`) };
  const amqpUrl = await requireAmqp();
  const shop = await startShopStandin({ port: 0, database: path.join(tmpDir('shop'), 'shop.db') });
  const search = o.search ? await startSearchStandin({ port: 0 }) : undefined;
  const erp = await startErpStandin({ port: 0, statusReads: o.statusReads });
  const erpBroker = await connectErpBroker(erp, amqpUrl, names);
  const notify = await startNotifyStandin({ port: 0 });
  // ERP_POLL_EVERY is read as the pipeline file loads: load it afresh with this suite's value.
  freshPipeline('order-to-erp');
  const t = await startTestEngine({
    env: {
      SHOP_BASE_URL: shop.url, ...(search ? { SEARCH_BASE_URL: search.url } : {}), ERP_BASE_URL: erp.url, NOTIFY_BASE_URL: notify.url,
      ERP_POLL_EVERY: o.pollEvery, ERP_POLL_MAX_EVERY: o.pollMaxEvery,
      AMQP_URL: amqpUrl, ERP_EXCHANGE: names.exchange, ERP_CATALOG_QUEUE: names.catalogQueue,
    },
  });
  return {
    shop, erp, notify, search, erpBroker, names, t,
    async close() {
      await t.close();
      freshPipeline('order-to-erp');
      await erpBroker.deleteAll();
      await erpBroker.close();
      await Promise.all([shop.close(), search?.close(), erp.close(), notify.close()]);
      cleanupTmpDirs();
    },
  };
}
