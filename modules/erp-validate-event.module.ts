/**
 * `erp-validate-event`: checks an ERP (1C) event against its shape (seed 001 §19) and
 * normalises it. Invalid events are not errors of the step: the output says
 * `{ valid: false, errors }` and the pipeline routes them (to a `stop`).
 *
 * Params: `expect`: `'catalog'` (product.updated, price.changed, stock.changed; the default)
 * or `'order'` (order.created).
 */
import { defineModule } from '../src';
import { validateCatalogEvent, validateOrderEvent } from './lib/erp-events';

export default defineModule<{ expect?: string }, Record<string, unknown>>({
  name: 'erp-validate-event',
  description: 'Validates and normalises an ERP catalog or order event.',
  async handle({ params, context }) {
    const payload = (context.payload ?? {}) as Record<string, unknown>;
    const r = params.expect === 'order' ? validateOrderEvent(payload) : validateCatalogEvent(payload);
    return r.valid ? { valid: true, event: r.event } : { valid: false, errors: r.errors };
  },
});
