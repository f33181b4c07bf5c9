import { expect } from 'chai';
import { isId, newId } from '../../src/ids';

describe('newId', () => {
  it('makes RFC 9562 version 7 UUIDs: version nibble 7, variant bits 10', () => {
    for (let i = 0; i < 2000; i++) {
      const id = newId();
      expect(isId(id), id).to.equal(true);
      expect(id[14]).to.equal('7');
      expect(['8', '9', 'a', 'b']).to.include(id[19]);
    }
  });

  it('sorts in creation order, also within one millisecond', () => {
    const now = Date.now();
    // More than the 4,096 a millisecond's counter holds: it then borrows the next millisecond.
    const ids = Array.from({ length: 5000 }, () => newId(now));
    expect([...ids].sort()).to.deep.equal(ids);
    expect(new Set(ids).size).to.equal(ids.length);
    expect(parseInt(ids[0]!.slice(0, 13).replace('-', ''), 16)).to.be.within(now, now + 5);
  });

  it('stays unique across many refills of its random pool', () => {
    // 4 KiB pool / 8 bytes an id: 100,000 ids refill it ~195 times.
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(newId());
    expect(seen.size).to.equal(100_000);
  });

  it('spreads its random part over all hex digits', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) for (const c of newId().slice(24)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).to.equal(16);
    // 48,000 digits: about 3,000 of each; a stuck byte or a bad table would skew this far more.
    for (const n of counts.values()) expect(n).to.be.within(2400, 3600);
  });
});
