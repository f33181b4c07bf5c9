/**
 * The engine's heap growth (src/heap.ts): set from `CONVEYOR_HEAP_GROWING_PERCENT` unless it is
 * 0 or node was given the flag itself. Its effect on memory is measured by `npm run bench --
 * --large` (docs/performance.md), not here.
 */
import { expect } from 'chai';
import { applyHeapGrowing } from '../../src/heap';

describe('heap growing (src/heap.ts)', () => {
  it('sets the factor for a positive percent', () => {
    expect(applyHeapGrowing(50, [])).to.equal(true);
  });
  it('leaves V8 its own choice for 0', () => {
    expect(applyHeapGrowing(0, [])).to.equal(false);
  });
  for (const flag of ['--heap-growing-percent=30', '--heap_growing_percent=30']) {
    it(`leaves the factor alone when node was started with ${flag}`, () => {
      expect(applyHeapGrowing(50, ['--max-old-space-size=512', flag])).to.equal(false);
    });
  }
});
