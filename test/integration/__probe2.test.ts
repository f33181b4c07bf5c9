import { expect } from 'chai';
describe('probe2', () => {
  it('fails', () => { expect(1).to.equal(2); });
});
