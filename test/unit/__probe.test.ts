import { expect } from 'chai';
import * as os from 'node:os';
describe('probe', () => {
  it('adds numbers', () => { expect(1 + 1).to.equal(2); void os; });
  it.skip('is skipped', () => {});
  it('awaits', async () => { await new Promise((r) => setTimeout(r, 5)); });
});
