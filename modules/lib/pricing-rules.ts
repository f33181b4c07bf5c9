/**
 * The pricing rules of seed 000 (§5.6 PRICE_CALCULATION, §6 UPDATE_PRICE), as pure functions
 * so they can be tested with tables. The `pricing` module and `listing-init` call them.
 *
 * §5.6 asks three things of a final price: it lies within MIN/MAX, its change from the
 * previous price is an allowed step, and the reason for it is recorded. A price that fails
 * goes to ADMIN_CONFIRMATION or to ERROR_STOP: here, a computed price that fails is returned
 * with `ok: false` (the pipeline routes it to the administrator), and a price the
 * administrator typed that still fails is an error (the administrator cannot ignore limits).
 */

/** Limits as configured (seed 000 §5.1 "limits"). */
export interface PriceLimitsDef {
  min: number;
  max: number;
  /** The largest change from the previous price, in percent of it. */
  maxStepPct: number;
  /** A price this close to MIN or MAX (percent of the limit) needs the administrator. */
  nearLimitPct: number;
}

/** Limits with the "near" thresholds worked out, so pipeline conditions can compare with them. */
export interface PriceLimits extends PriceLimitsDef {
  /** Prices at or below this are near MIN. */
  nearLow: number;
  /** Prices at or above this are near MAX. */
  nearHigh: number;
}

export const DEFAULT_LIMITS: PriceLimitsDef = { min: 100, max: 10_000, maxStepPct: 20, nearLimitPct: 10 };

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Checks limits and works out the near thresholds; throws `Error` with a reason when they are unusable. */
export function compileLimits(def: Partial<PriceLimitsDef>): PriceLimits {
  const l = { ...DEFAULT_LIMITS, ...def };
  const bad = (Object.keys(DEFAULT_LIMITS) as Array<keyof PriceLimitsDef>).find((k) => typeof l[k] !== 'number' || !Number.isFinite(l[k]));
  if (bad) throw new Error(`limit "${bad}" must be a number`);
  if (l.min <= 0) throw new Error(`MIN must be above 0 (got ${l.min})`);
  if (l.max <= l.min) throw new Error(`MAX must be above MIN (got MIN ${l.min}, MAX ${l.max})`);
  if (l.maxStepPct <= 0 || l.maxStepPct > 100) throw new Error(`maxStepPct must be in (0, 100] (got ${l.maxStepPct})`);
  if (l.nearLimitPct < 0 || l.nearLimitPct >= 50) throw new Error(`nearLimitPct must be in [0, 50) (got ${l.nearLimitPct})`);
  return { ...l, nearLow: round2(l.min * (1 + l.nearLimitPct / 100)), nearHigh: round2(l.max * (1 - l.nearLimitPct / 100)) };
}

/**
 * How `given` limits are looser than the configured `ceiling`: a lower MIN, a higher MAX, a
 * larger change step, or a narrower "near the limits" band (fewer prices for the
 * administrator). Empty when `given` is as strict or stricter everywhere.
 */
export function looserThan(ceiling: PriceLimitsDef, given: Partial<PriceLimitsDef>): string[] {
  const out: string[] = [];
  if (given.min !== undefined && given.min < ceiling.min) out.push(`MIN ${given.min} is below the configured ${ceiling.min}`);
  if (given.max !== undefined && given.max > ceiling.max) out.push(`MAX ${given.max} is above the configured ${ceiling.max}`);
  if (given.maxStepPct !== undefined && given.maxStepPct > ceiling.maxStepPct) out.push(`maxStepPct ${given.maxStepPct} is above the configured ${ceiling.maxStepPct}`);
  if (given.nearLimitPct !== undefined && given.nearLimitPct < ceiling.nearLimitPct) out.push(`nearLimitPct ${given.nearLimitPct} is below the configured ${ceiling.nearLimitPct}`);
  return out;
}

/**
 * The limits of one run: the configured ones, made stricter (never looser) by an item's own
 * `item` limits. Throws `Error` naming every key that would loosen them (seed 000 §8: the
 * limits cannot be ignored), or when the result is unusable.
 */
export function itemLimits(configured: PriceLimitsDef, item: Partial<PriceLimitsDef>): PriceLimits {
  const looser = looserThan(configured, item);
  if (looser.length > 0) throw new Error(`an item's limits may only be stricter than the configuration: ${looser.join('; ')}`);
  return compileLimits({ ...configured, ...item });
}

export interface MarketStats {
  count: number;
  min: number;
  median: number;
  max: number;
}

/** Summary of competitors' prices, or null when there are none. */
export function marketStats(prices: number[]): MarketStats | null {
  const sorted = prices.filter((p) => Number.isFinite(p) && p > 0).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { count: sorted.length, min: sorted[0]!, median: round2(median), max: sorted[sorted.length - 1]! };
}

/** Where a candidate price came from, strongest first. */
export type PriceSource = 'admin' | 'pricing-update' | 'market' | 'current';

export interface PriceInput {
  limits: PriceLimits;
  /** Competitors' median price. */
  marketMedian?: number;
  /** The price to measure the change step against: the last published price, else the current one. */
  reference?: number;
  /** The next price UPDATE_PRICE proposed after the previous sale (auto mode). */
  suggested?: number;
  /** A price the administrator typed at ADMIN_CONFIRMATION. */
  manual?: number;
  /** The item's current price, when nothing better is known. */
  current?: number;
  /** How far under the market median a market-based price goes, in percent. @default 3 */
  undercutPct?: number;
}

export interface PriceDecision {
  ok: boolean;
  price: number;
  source: PriceSource;
  reference: number | null;
  /** Change from `reference`, in percent (negative: cheaper). */
  changePct: number | null;
  violations: string[];
  /** Why this price: always recorded (§5.6 "причина изменения зафиксирована"). */
  reason: string;
}

/** Picks the price and validates it against the limits (§5.6). Throws when no price can be formed. */
export function calculatePrice(input: PriceInput): PriceDecision {
  const { limits } = input;
  const undercut = input.undercutPct ?? 3;
  let price: number;
  let source: PriceSource;
  let why: string;
  if (input.manual !== undefined) {
    [price, source, why] = [input.manual, 'admin', `set by the administrator: ${input.manual}`];
  } else if (input.suggested !== undefined) {
    [price, source, why] = [input.suggested, 'pricing-update', `proposed after the previous sale: ${input.suggested}`];
  } else if (input.marketMedian !== undefined) {
    price = round2(input.marketMedian * (1 - undercut / 100));
    [source, why] = ['market', `competitors' median ${input.marketMedian} less ${undercut}%: ${price}`];
  } else if (input.current !== undefined) {
    [price, source, why] = [input.current, 'current', `no market data; the current price is kept: ${input.current}`];
  } else {
    throw new Error('no price can be formed: no administrator price, no proposal, no market data and no current price');
  }
  const violations: string[] = [];
  if (price < limits.min) violations.push(`${price} is below MIN ${limits.min}`);
  if (price > limits.max) violations.push(`${price} is above MAX ${limits.max}`);
  const reference = input.reference ?? null;
  const changePct = reference ? round2(((price - reference) / reference) * 100) : null;
  if (changePct !== null && Math.abs(changePct) > limits.maxStepPct) {
    violations.push(`a change of ${changePct}% from ${reference} exceeds the allowed step of ${limits.maxStepPct}%`);
  }
  const step = changePct === null ? 'no previous price' : `change ${changePct}% from ${reference} (allowed ±${limits.maxStepPct}%)`;
  const reason = violations.length === 0
    ? `${why}; ${step}; within ${limits.min}–${limits.max}`
    : `${why}; refused: ${violations.join('; ')}`;
  return { ok: violations.length === 0, price, source, reference, changePct, violations, reason };
}

export interface SaleFacts {
  limits: PriceLimits;
  soldPrice: number;
  hoursToSell: number;
  /** A sale faster than this raises the price. @default 24 */
  fastSaleHours?: number;
  /** A sale slower than this lowers it. @default 168 (a week) */
  slowSaleHours?: number;
  /** How much to raise or lower, in percent; never more than `limits.maxStepPct`. @default 5 */
  stepPct?: number;
}

/** UPDATE_PRICE (§6): the next price after a sale, kept within the limits, with its reason. */
export function nextPrice(f: SaleFacts): { nextPrice: number; changePct: number; reason: string } {
  const step = Math.min(f.stepPct ?? 5, f.limits.maxStepPct);
  const fast = f.fastSaleHours ?? 24;
  const slow = f.slowSaleHours ?? 168;
  let pct = 0;
  let why = `sold in ${f.hoursToSell} h: the price is kept`;
  if (f.hoursToSell < fast) [pct, why] = [step, `sold in ${f.hoursToSell} h (under ${fast} h): raised by ${step}%`];
  else if (f.hoursToSell > slow) [pct, why] = [-step, `sold in ${f.hoursToSell} h (over ${slow} h): lowered by ${step}%`];
  const raw = round2(f.soldPrice * (1 + pct / 100));
  const bounded = Math.min(f.limits.max, Math.max(f.limits.min, raw));
  const reason = bounded === raw ? why : `${why}, then held to the limits ${f.limits.min}–${f.limits.max}`;
  return { nextPrice: bounded, changePct: round2(((bounded - f.soldPrice) / f.soldPrice) * 100), reason };
}
