/**
 * How often a broker source counts its pipeline's backlog (src/sources/runner.ts
 * `nextCheckDelay`): every `checkMs`, or 50 times as long as the last count took when that is
 * longer, so counting a huge backlog never takes more than ~2% of the process's time.
 */
import { expect } from 'chai';
import { nextCheckDelay } from '../../src/sources/runner';

describe('broker source: backlog count interval', () => {
  const table: Array<[checkMs: number, countMs: number, delay: number]> = [
    [500, 0.2, 500], // a small backlog: the configured interval
    [500, 10, 500], // 10 ms × 50 = 500: still the interval
    [500, 10.01, 501],
    [500, 131, 6550], // 750,000 buffered on SQLite: a count every 6.6 s, not every 0.5 s
    [500, 216, 10800],
    [2000, 40, 2000], // a longer configured interval is kept
  ];
  for (const [checkMs, countMs, delay] of table) {
    it(`checkMs ${checkMs}, a count of ${countMs} ms → next in ${delay} ms`, () => {
      expect(nextCheckDelay(checkMs, countMs)).to.equal(delay);
    });
  }
  it('counting takes at most 1/51 of the time, however long a count is', () => {
    for (const countMs of [1, 30, 100, 1000, 10_000]) expect(countMs / (countMs + nextCheckDelay(500, countMs))).to.be.at.most(1 / 51 + 1e-9);
  });
});
