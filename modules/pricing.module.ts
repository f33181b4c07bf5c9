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
 */
import { defineModule, NonRetryableError } from '../src';
import { num, obj, str } from './lib/http-json';
import { calculatePrice, nextPrice, type PriceLimits } from './lib/pricing-rules';

function limitsOf(v: unknown): PriceLimits {
  const l = obj(v);
  const keys = ['min', 'max', 'maxStepPct', 'nearLimitPct', 'nearLow', 'nearHigh'] as const;
  const missing = keys.filter((k) => num(l[k]) === undefined);
  if (missing.length > 0) throw new NonRetryableError(`limits are incomplete: missing ${missing.join(', ')}`);
  return Object.fromEntries(keys.map((k) => [k, num(l[k])])) as unknown as PriceLimits;
}

export default defineModule<Record<string, unknown>, Record<string, unknown>>({
  name: 'pricing',
  description: 'Pricing Engine: the final price within MIN/MAX and the change step, with its reason; the next price after a sale.',
  retry: { attempts: 1 },
  async handle({ params }) {
    const limits = limitsOf(params.limits);
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
