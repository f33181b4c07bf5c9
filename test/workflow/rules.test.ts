/**
 * The pure rules behind the seed pipelines' modules, table by table: seed 000's pricing (§5.6
 * PRICE_CALCULATION, §6 UPDATE_PRICE) and seed 003's notification recipients.
 */
import { expect } from 'chai';
import { configuredLimits, DEFAULT_LISTING_CONFIG } from '../../modules/lib/listing-config';
import { calculatePrice, compileLimits, itemLimits, looserThan, marketStats, nextPrice, type PriceInput } from '../../modules/lib/pricing-rules';
import { resolveRecipients, type OrderPeople } from '../../modules/lib/recipients';

const limits = compileLimits({ min: 100, max: 1000, maxStepPct: 20, nearLimitPct: 10 });

describe('seed 000 pricing rules', () => {
  it('works out the near-limit thresholds, and refuses unusable limits with the reason', () => {
    expect(limits).to.include({ nearLow: 110, nearHigh: 900 });
    expect(() => compileLimits({ min: 500, max: 400 })).to.throw('MAX must be above MIN (got MIN 500, MAX 400)');
    expect(() => compileLimits({ min: 0 })).to.throw('MIN must be above 0');
    expect(() => compileLimits({ maxStepPct: 0 })).to.throw('maxStepPct must be in (0, 100]');
  });

  it('summarises the market, or says there is none', () => {
    expect(marketStats([1200, 900, 1000])).to.deep.equal({ count: 3, min: 900, median: 1000, max: 1200 });
    expect(marketStats([100, 200])).to.deep.include({ median: 150 });
    expect(marketStats([])).to.equal(null);
  });

  const cases: Array<{ name: string; input: Omit<PriceInput, 'limits'>; ok: boolean; price: number; source: string; violations?: string[] }> = [
    { name: 'the market median less 3%', input: { marketMedian: 500, reference: 500 }, ok: true, price: 485, source: 'market' },
    { name: 'the administrator wins over everything', input: { manual: 450, suggested: 600, marketMedian: 500, reference: 500 }, ok: true, price: 450, source: 'admin' },
    { name: 'the proposal after a sale wins over the market', input: { suggested: 520, marketMedian: 500, reference: 500 }, ok: true, price: 520, source: 'pricing-update' },
    { name: 'without market data the current price is kept', input: { current: 700, reference: 700 }, ok: true, price: 700, source: 'current' },
    { name: 'above MAX', input: { marketMedian: 1100 }, ok: false, price: 1067, source: 'market', violations: ['1067 is above MAX 1000'] },
    { name: 'below MIN', input: { manual: 50 }, ok: false, price: 50, source: 'admin', violations: ['50 is below MIN 100'] },
    {
      name: 'a change step too large', input: { suggested: 800, reference: 500 }, ok: false, price: 800, source: 'pricing-update',
      violations: ['a change of 60% from 500 exceeds the allowed step of 20%'],
    },
    { name: 'exactly the allowed step', input: { suggested: 600, reference: 500 }, ok: true, price: 600, source: 'pricing-update' },
  ];
  for (const k of cases) {
    it(`PRICE_CALCULATION: ${k.name}`, () => {
      const d = calculatePrice({ limits, ...k.input });
      expect(d).to.include({ ok: k.ok, price: k.price, source: k.source });
      expect(d.violations).to.deep.equal(k.violations ?? []);
      expect(d.reason).to.be.a('string').and.not.equal('');
    });
  }

  it('PRICE_CALCULATION: refuses when no price can be formed at all', () => {
    expect(() => calculatePrice({ limits })).to.throw('no price can be formed');
  });

  it('UPDATE_PRICE: a fast sale raises the price, a slow one lowers it, always within the limits', () => {
    expect(nextPrice({ limits, soldPrice: 500, hoursToSell: 2 })).to.deep.equal({ nextPrice: 525, changePct: 5, reason: 'sold in 2 h (under 24 h): raised by 5%' });
    expect(nextPrice({ limits, soldPrice: 500, hoursToSell: 48 })).to.include({ nextPrice: 500, changePct: 0 });
    expect(nextPrice({ limits, soldPrice: 500, hoursToSell: 200 })).to.include({ nextPrice: 475, changePct: -5 });
    expect(nextPrice({ limits, soldPrice: 990, hoursToSell: 1 })).to.deep.equal({
      nextPrice: 1000, changePct: 1.01, reason: 'sold in 1 h (under 24 h): raised by 5%, then held to the limits 100–1000',
    });
  });
});

describe('seed 000 price limits: only from the configuration', () => {
  const configured = { min: 100, max: 1000, maxStepPct: 20, nearLimitPct: 10 };
  const table: Array<[string, Record<string, number>, string[]]> = [
    ['the same limits', { ...configured }, []],
    ['stricter everywhere', { min: 200, max: 900, maxStepPct: 5, nearLimitPct: 20 }, []],
    ['a lower MIN', { min: 50 }, ['MIN 50 is below the configured 100']],
    ['a higher MAX', { max: 5000 }, ['MAX 5000 is above the configured 1000']],
    ['a larger step', { maxStepPct: 1000 }, ['maxStepPct 1000 is above the configured 20']],
    ['a narrower "near" band (fewer prices for the administrator)', { nearLimitPct: 0 }, ['nearLimitPct 0 is below the configured 10']],
  ];
  for (const [name, given, looser] of table) {
    it(`${looser.length === 0 ? 'accepts' : 'refuses'} ${name}`, () => {
      expect(looserThan(configured, given)).to.deep.equal(looser);
      if (looser.length === 0) expect(itemLimits(configured, given)).to.include(given);
      else expect(() => itemLimits(configured, given)).to.throw(`an item's limits may only be stricter than the configuration: ${looser.join('; ')}`);
    });
  }

  it('takes a category\'s keys over the general ones, and nothing from a name that is not a category', () => {
    const config = { ...DEFAULT_LISTING_CONFIG, categoryLimits: { skins: { maxStepPct: 10 } } };
    expect(configuredLimits(config, 'skins')).to.deep.equal({ min: 100, max: 10_000, maxStepPct: 10, nearLimitPct: 10 });
    expect(configuredLimits(config, 'accounts')).to.deep.equal(DEFAULT_LISTING_CONFIG.limits);
    expect(configuredLimits(config, 'constructor')).to.deep.equal(DEFAULT_LISTING_CONFIG.limits);
    expect(configuredLimits(config, undefined)).to.deep.equal(DEFAULT_LISTING_CONFIG.limits);
  });
});

describe('seed 003 notification recipients', () => {
  const order: OrderPeople = {
    customerUser: { id: 'cust', phone_number: '+7 900 000-00-01', email: 'anna@example.com' },
    executors: [{ id: 'petr', phone_number: '+7 900 000-00-02', email: 'petr@example.com' }, { id: 'ivan', email: 'ivan@example.com' }],
    couriers: [],
    moderators: [{ id: 'olga', email: 'olga@example.com' }],
  };
  const table: Array<[string, string[], 'push' | 'sms' | 'email', string | null, string[]]> = [
    ['a role, by push: user ids', ['customer', 'moderator'], 'push', null, ['cust', 'olga']],
    ['"executor" without an assigned one: every executor of the provider', ['executor'], 'push', null, ['petr', 'ivan']],
    ['"executor" with an assigned one: only that one', ['executor'], 'push', 'ivan', ['ivan']],
    ['by SMS: their phone numbers; who has none is left out', ['executor'], 'sms', null, ['+7 900 000-00-02']],
    ['by e-mail: an address as given, and a role\'s addresses', ['zakaz@crabler.com', 'moderator'], 'email', null, ['zakaz@crabler.com', 'olga@example.com']],
    ['a phone number finds its user for a push', ['+79000000002'], 'push', null, ['petr']],
    ['a phone number of nobody is sent to as an SMS', ['+7 911 111-11-11'], 'sms', null, ['+7 911 111-11-11']],
    ['a user id', ['olga'], 'email', null, ['olga@example.com']],
    ['no couriers: nobody', ['courier'], 'push', null, []],
    ['duplicates once', ['customer', 'cust', 'anna@example.com'], 'push', null, ['cust']],
  ];
  for (const [name, recipients, channel, executor, want] of table) {
    it(name, () => expect(resolveRecipients(recipients, channel, order, executor)).to.deep.equal(want));
  }
});
