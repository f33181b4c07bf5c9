/**
 * `listing-init`: seed 000 §5.1 INIT. Checks the mode (semi / auto), checks that whoever
 * started the run may do so, and loads the configuration (price limits, categories). Any
 * problem is an error, so the run goes to ERROR_STOP (§5.1 "Ошибка → ERROR_STOP").
 *
 * Params: `mode` (the request's `?mode=`; empty means `semi`, the careful one), `itemId`,
 * `categoryId`, `requestedBy` (the submitting actor: the pipeline passes `request.actor`), `limits`
 * (the item's own limits from the internal database: they may make the configured ones
 * stricter, never looser; a looser key is an error).
 * Output: `{ mode, itemId, categoryId, limits: { min, max, maxStepPct, nearLimitPct, nearLow,
 * nearHigh }, config }`. The pipeline compares prices with `nearLow` / `nearHigh`.
 */
import { defineModule, NonRetryableError } from '../src';
import { obj, str } from './lib/http-json';
import { configuredLimits, loadListingConfig } from './lib/listing-config';
import { itemLimits, type PriceLimits, type PriceLimitsDef } from './lib/pricing-rules';

export interface ListingInit {
  mode: 'semi' | 'auto';
  itemId: string;
  categoryId: string;
  limits: PriceLimits;
  config: string;
}

export default defineModule<Record<string, unknown>, ListingInit>({
  name: 'listing-init',
  description: 'INIT: checks the mode and who started the run, loads limits and categories.',
  retry: { attempts: 1 },
  async handle({ params }) {
    const mode = str(params.mode) ?? 'semi';
    if (mode !== 'semi' && mode !== 'auto') throw new NonRetryableError(`mode must be "semi" or "auto" (got "${mode}")`);
    const itemId = str(params.itemId);
    if (!itemId) throw new NonRetryableError('the payload has no itemId');
    let config;
    try {
      config = loadListingConfig();
    } catch (err) {
      throw new NonRetryableError(`the listing configuration cannot be loaded: ${(err as Error).message}`);
    }
    const who = str(params.requestedBy);
    if (config.admins.length > 0 && (!who || !config.admins.includes(who))) {
      throw new NonRetryableError(`"${who ?? '(nobody)'}" is not an administrator of this workflow`, { admins: config.admins.length });
    }
    const categoryId = str(params.categoryId);
    if (!categoryId) throw new NonRetryableError('the payload has no categoryId');
    if (config.categories.length > 0 && !config.categories.includes(categoryId)) {
      throw new NonRetryableError(`category "${categoryId}" is not enabled (enabled: ${config.categories.join(', ')})`);
    }
    let limits: PriceLimits;
    try {
      limits = itemLimits(configuredLimits(config, categoryId), obj(params.limits) as Partial<PriceLimitsDef>);
    } catch (err) {
      throw new NonRetryableError(`the price limits are unusable: ${(err as Error).message}`);
    }
    return { mode, itemId, categoryId, limits, config: config.source };
  },
});
