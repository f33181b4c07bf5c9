/**
 * `pricing`: seed 000's Pricing Engine, for PRICE_CALCULATION (§5.6, `operation: 'calculate'`)
 * and UPDATE_PRICE (§6, `operation: 'update'`). The rules are in `lib/pricing-rules.ts`.
 *
 * `calculate` params: `limits` (INIT's), `marketMedian`, `reference` (the last published
 * price) or `current` (the item's current price), `suggested` (UPDATE_PRICE's proposal),
 * `manualPrice` (typed by the administrator). Output: `{ ok, price, source, reference,
 * changePct, violations, reason }`. A computed price outside the limits answers `ok: false`,
 * and the pipeline asks the administrator; an administrator's price outside them is an error
 * (ERROR_STOP), because §8 forbids ignoring it.
 *
 * `update` params: `limits`, `soldPrice`, `hoursToSell`. Output: `{ nextPrice, changePct, reason }`.
 *
 * Both take `categoryId`, and refuse (not retried) `limits` looser than the configured ones of
 * that category (`LISTING_CONFIG`): limits come only from configuration, so no payload, no
 * edited param and no resume can widen them (seed 000 §8).
 */
import { defineModule, NonRetryableError } from '../src';
import { num, obj, str } from './lib/http-json';
import { configuredLimits, loadListingConfig } from './lib/listing-config';
import { calculatePrice, looserThan, nextPrice, type PriceLimits } from './lib/pricing-rules';

function limitsOf(v: unknown, categoryId: string | undefined): PriceLimits {
  const l = obj(v);
  const keys = ['min', 'max', 'maxStepPct', 'nearLimitPct', 'nearLow', 'nearHigh'] as const;
  const missing = keys.filter((k) => num(l[k]) === undefined);
  if (missing.length > 0) throw new NonRetryableError(`limits are incomplete: missing ${missing.join(', ')}`);
  const limits = Object.fromEntries(keys.map((k) => [k, num(l[k])])) as unknown as PriceLimits;
  let config;
  try {
    config = loadListingConfig();
  } catch (err) {
    throw new NonRetryableError(`the listing configuration cannot be loaded: ${(err as Error).message}`);
  }
  const looser = looserThan(configuredLimits(config, categoryId), limits);
  if (looser.length > 0) throw new NonRetryableError(`the price limits are looser than the configuration allows: ${looser.join('; ')}`, { limits });
  return limits;
}

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'pricing',
  description: 'Pricing Engine: the final price within MIN/MAX and the change step, with its reason; the next price after a sale.',
  retry: { attempts: 1 },
  async handle({ params }) {
    const limits = limitsOf(params.limits, str(params.categoryId));
    const operation = str(params.operation) ?? 'calculate';
    if (operation === 'update') {
      const soldPrice = num(params.soldPrice);
      const hoursToSell = num(params.hoursToSell);
      if (soldPrice === undefined || hoursToSell === undefined) throw new NonRetryableError('update needs soldPrice and hoursToSell');
      return { ...nextPrice({ limits, soldPrice, hoursToSell }) };
    }
    if (operation !== 'calculate') throw new NonRetryableError(`unknown operation "${operation}" (calculate or update)`);
    const manual = num(params.manualPrice);
    let decision;
    try {
      decision = calculatePrice({
        limits, manual, suggested: num(params.suggested), marketMedian: num(params.marketMedian),
        reference: num(params.reference) ?? num(params.current), current: num(params.current),
      });
    } catch (err) {
      throw new NonRetryableError((err as Error).message);
    }
    if (!decision.ok && decision.source === 'admin') {
      throw new NonRetryableError(`the administrator's price is refused: ${decision.violations.join('; ')}`, decision);
    }
    return { ...decision };
  },
});
