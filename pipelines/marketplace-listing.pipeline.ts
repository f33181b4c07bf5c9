/**
 * Seed 000: the marketplace listing workflow, state by state, in the spec's order (§3):
 *
 *   INIT → DATA_COLLECTION → CONTENT_GENERATION → PREVIEW_GENERATION → ADMIN_CONFIRMATION (if
 *   required) → PRICE_CALCULATION → PUBLISH → WAIT_FOR_SALE → POST_SALE_ACTIONS → STOP (semi)
 *   or UPDATE_PRICE → LOOP → INIT (auto)
 *
 * The spec's rules, and where each one lives:
 * - "If a step is not described, it does not exist" (§11): these are all the steps. STOP is
 *   written twice because its outcome differs: `STOP` ends the run as completed (after the
 *   sale in semi mode, or after the last auto loop), `STOP_REJECTED` as stopped (§5.5 reject).
 * - Any error → ERROR_STOP (§4, §7): no step has an `onError` route, so a failed step (after
 *   its module's retries) halts the run with its state, and the admin notifier is told.
 * - ADMIN_CONFIRMATION is required (§5.5) in semi mode, on the first run in auto mode, when
 *   the market price is near the limits, and when PRICE_CALCULATION refused its own price
 *   (§5.6 "Ошибка → ADMIN_CONFIRMATION"). Otherwise it is skipped, and the log says so.
 *   The administrator may approve, reject (→ STOP), or edit the price, title or description.
 *   "Approve" is not offered for a refused price: the administrator cannot ignore an error
 *   (§8), only fix the price. A price the administrator types that breaks the limits is an
 *   error → ERROR_STOP.
 * - One active run per item (§4): the business key is `payload.itemId`, and a second submit
 *   for an item whose run is active (or in ERROR_STOP) gets 409. An `X-Business-Key` header
 *   that disagrees with `payload.itemId` gets 422: it is never the key instead.
 * - The price limits come only from `LISTING_CONFIG` (§5.1): an item's `limits` may make them
 *   stricter, never looser, and the `pricing` module refuses looser ones whatever it is sent.
 * - §8 "изменить параметры", never "игнорировать ошибки": after an ERROR_STOP, `resume` may
 *   replace only the params a step lists in `resumable` (PRICE_CALCULATION's `manualPrice`,
 *   PUBLISH's `title` and `description`, POST_SALE_ACTIONS's `message`); any other is 422.
 * - The loop is bounded (`LISTING_MAX_LOOPS` iterations); `maxSteps` also bounds the polls.
 *
 * Deployment settings, read when the pipeline loads (a changed value is a new version; running
 * requests keep theirs): `LISTING_POLL_EVERY` (how often WAIT_FOR_SALE polls the marketplace,
 * default 10m), `LISTING_SALE_TIMEOUT` (how long it waits before ERROR_STOP, default 14d),
 * `LISTING_MAX_LOOPS` (auto-mode iterations after the first, default 10).
 *
 * Submit: `POST /api/pipelines/marketplace-listing/requests?mode=semi|auto` with
 * `{ itemId, categoryId, currentPrice, item: { title, game, features }, limits? }`. INIT's admin check is
 * on the submitting actor (`request.actor`: a key name, a token's `sub`, a delegated actor).
 */
import { definePipeline, type Duration } from '../src';

const POLL_EVERY = (process.env.LISTING_POLL_EVERY || '10m') as Duration;
const SALE_TIMEOUT = (process.env.LISTING_SALE_TIMEOUT || '14d') as Duration;
const MAX_LOOPS = Number(process.env.LISTING_MAX_LOOPS || 10);

/** The title and description to publish: the administrator's edit, else the generated text. */
const TITLE = '{{ ADMIN_CONFIRMATION.data.title | default: CONTENT_GENERATION.title }}';
const DESCRIPTION = '{{ ADMIN_CONFIRMATION.data.description | default: CONTENT_GENERATION.description }}';

export default definePipeline({
  id: 'marketplace-listing',
  description: 'Seed 000: list an item on the marketplace, wait for the sale, follow up; loop in auto mode.',
  start: 'INIT',
  intake: { businessKey: { path: 'payload.itemId', onConflict: 'reject' } },
  // Each poll of WAIT_FOR_SALE is a step run: room for many polls in every iteration.
  maxSteps: 100_000,
  steps: {
    INIT: {
      description: '§5.1: mode, rights, configuration (limits, categories)',
      subsystem: 'listing-init',
      params: {
        mode: '{{ request.mode }}', itemId: '{{ payload.itemId }}', categoryId: '{{ payload.categoryId }}',
        requestedBy: '{{ request.actor }}', limits: '{{ payload.limits }}',
      },
      prev: ['LOOP'],
      next: ['DATA_COLLECTION'],
    },
    DATA_COLLECTION: {
      description: '§5.2: the item (internal database) and the marketplace data (category, competitors)',
      subsystem: 'listing-collect',
      params: { item: '{{ payload.item }}', categoryId: '{{ INIT.categoryId }}' },
      prev: ['INIT'],
      next: ['CONTENT_GENERATION'],
    },
    CONTENT_GENERATION: {
      description: '§5.3: title, description, comment by the AI content service; no price, no publishing',
      subsystem: 'llm-content',
      params: { item: '{{ DATA_COLLECTION.item }}', category: '{{ DATA_COLLECTION.category }}', apiKey: '{{ secrets.LLM_API_KEY }}' },
      prev: ['DATA_COLLECTION'],
      next: ['PREVIEW_GENERATION'],
    },
    PREVIEW_GENERATION: {
      description: '§5.4: preview images by the AI image generator',
      subsystem: 'preview-image',
      params: { title: '{{ CONTENT_GENERATION.title }}', game: '{{ DATA_COLLECTION.item.game }}', count: 2, apiKey: '{{ secrets.LLM_API_KEY }}' },
      prev: ['CONTENT_GENERATION'],
      next: ['ADMIN_CONFIRMATION'],
    },
    ADMIN_CONFIRMATION: {
      description: '§5.5: the administrator confirms, rejects or edits; required only when one "when" entry holds',
      kind: 'action',
      when: [
        { field: 'INIT.mode', operation: 'eq', value: 'semi' },
        { field: 'INIT.mode', operation: 'eq', value: 'auto', success: [{ field: 'LOOP', operation: 'empty' }] },
        { field: 'DATA_COLLECTION.market.median', operation: 'lte', valueField: 'INIT.limits.nearLow' },
        { field: 'DATA_COLLECTION.market.median', operation: 'gte', valueField: 'INIT.limits.nearHigh' },
        { field: 'UPDATE_PRICE.nextPrice', operation: 'lte', valueField: 'INIT.limits.nearLow' },
        { field: 'UPDATE_PRICE.nextPrice', operation: 'gte', valueField: 'INIT.limits.nearHigh' },
        { field: 'PRICE_CALCULATION.ok', operation: 'eq', value: false },
      ],
      actions: {
        approve: {
          label: 'Подтвердить',
          allow: ['listing-admin'],
          // A price PRICE_CALCULATION refused cannot be approved as it is (§8: no ignoring errors).
          visible: [{ field: 'PRICE_CALCULATION.ok', operation: '!|eq', value: false }],
          result: ['PRICE_CALCULATION'],
        },
        reject: { label: 'Отклонить', allow: ['listing-admin'], result: ['STOP_REJECTED'] },
        edit: {
          label: 'Изменить параметры',
          allow: ['listing-admin'],
          fields: { price: { label: 'Цена' }, title: { label: 'Название' }, description: { label: 'Описание' } },
          result: ['PRICE_CALCULATION'],
        },
      },
      prev: ['PREVIEW_GENERATION', 'PRICE_CALCULATION'],
      next: ['PRICE_CALCULATION'],
    },
    PRICE_CALCULATION: {
      description: '§5.6: the final price within MIN/MAX and the change step, with its reason',
      subsystem: 'pricing',
      params: {
        operation: 'calculate',
        limits: '{{ INIT.limits }}',
        categoryId: '{{ INIT.categoryId }}',
        marketMedian: '{{ DATA_COLLECTION.market.median }}',
        reference: '{{ PUBLISH.price }}',
        current: '{{ payload.currentPrice }}',
        suggested: '{{ UPDATE_PRICE.nextPrice }}',
        manualPrice: '{{ ADMIN_CONFIRMATION.data.price }}',
      },
      // §8: after an ERROR_STOP the administrator may fix the price, never the limits or the
      // price it is measured against (resume with any other param answers 422).
      resumable: ['manualPrice'],
      prev: ['ADMIN_CONFIRMATION'],
      condition: [{ field: 'PRICE_CALCULATION.ok', operation: 'eq', value: false, result: ['ADMIN_CONFIRMATION'] }],
      next: ['PUBLISH'],
    },
    PUBLISH: {
      description: '§5.7: create the product, set the price, upload the previews, keep the product id',
      subsystem: 'marketplace-publish',
      params: {
        itemId: '{{ INIT.itemId }}', categoryId: '{{ INIT.categoryId }}', title: TITLE, description: DESCRIPTION,
        price: '{{ PRICE_CALCULATION.price }}', images: '{{ PREVIEW_GENERATION.images }}',
      },
      // The marketplace may refuse a text: the administrator may fix it, never the price.
      resumable: ['title', 'description'],
      prev: ['PRICE_CALCULATION'],
      next: ['WAIT_FOR_SALE'],
    },
    WAIT_FOR_SALE: {
      description: '§5.8: passive wait for the sale: the marketplace webhook, or polling',
      kind: 'wait',
      event: { name: 'marketplace.sale', key: '{{ PUBLISH.productId }}' },
      poll: { subsystem: 'marketplace-check-sale', every: POLL_EVERY, params: { productId: '{{ PUBLISH.productId }}' } },
      timeout: SALE_TIMEOUT,
      prev: ['PUBLISH'],
      next: ['POST_SALE_ACTIONS'],
    },
    POST_SALE_ACTIONS: {
      description: '§5.9: message to the buyer, order confirmation, statistics, data for the Pricing Engine',
      subsystem: 'marketplace-post-sale',
      params: {
        orderId: '{{ WAIT_FOR_SALE.data.orderId }}',
        soldPrice: '{{ WAIT_FOR_SALE.data.price }}',
        publishedAt: '{{ PUBLISH.publishedAt }}',
        message: `Спасибо за покупку «${TITLE}»! Заказ {{ WAIT_FOR_SALE.data.orderId }}. {{ CONTENT_GENERATION.comment }}`,
      },
      resumable: ['message'],
      prev: ['WAIT_FOR_SALE'],
      condition: [{ field: 'INIT.mode', operation: 'eq', value: 'auto', result: ['UPDATE_PRICE'] }],
      next: ['STOP'],
    },
    UPDATE_PRICE: {
      description: '§6 auto: the next price from this sale',
      subsystem: 'pricing',
      params: {
        operation: 'update', limits: '{{ INIT.limits }}', categoryId: '{{ INIT.categoryId }}',
        soldPrice: '{{ POST_SALE_ACTIONS.forPricing.soldPrice }}', hoursToSell: '{{ POST_SALE_ACTIONS.forPricing.hoursToSell }}',
      },
      prev: ['POST_SALE_ACTIONS'],
      next: ['LOOP'],
    },
    LOOP: {
      description: '§6 auto: back to INIT, a bounded number of times',
      kind: 'loop',
      target: 'INIT',
      max: MAX_LOOPS,
      onExhausted: ['STOP'],
      prev: ['UPDATE_PRICE'],
    },
    STOP: {
      description: 'the end: after the sale in semi mode, or after the last auto loop',
      kind: 'stop',
      status: 'completed',
      reason: 'the listing workflow ended',
      prev: ['POST_SALE_ACTIONS', 'LOOP'],
    },
    STOP_REJECTED: {
      description: '§5.5: the administrator rejected the listing',
      kind: 'stop',
      status: 'stopped',
      reason: 'the administrator rejected the listing',
      prev: ['ADMIN_CONFIRMATION'],
    },
  },
});
