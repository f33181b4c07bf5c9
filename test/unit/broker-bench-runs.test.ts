/** `npm run bench:broker -- --runs`: how many runs of each size (scripts/broker-bench.ts). */
import { expect } from 'chai';
import { runsPerSize } from '../../scripts/broker-bench';

describe('bench:broker --runs', () => {
  const sizes = [10_000, 100_000, 1_000_000];
  it('one number applies to every size; a list gives each size its own', () => {
    expect(runsPerSize('1', sizes)).to.deep.equal([1, 1, 1]);
    expect(runsPerSize('3', sizes)).to.deep.equal([3, 3, 3]);
    expect(runsPerSize('3, 3, 1', sizes)).to.deep.equal([3, 3, 1]);
  });
  for (const bad of ['0', '-1', '2.5', 'x', '3,1', '3,3,1,1', '']) {
    it(`refuses "${bad}" with a clear error`, () => {
      expect(() => runsPerSize(bad, sizes)).to.throw(/--runs must be one whole number of 1 or more, or one per size \(3\)/);
    });
  }
});
