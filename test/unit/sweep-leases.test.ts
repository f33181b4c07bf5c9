/**
 * The supervisor's sweep (src/supervisor/timers.ts) reads expired leases every quarter of the
 * shortest lease (`leaseGraceMs / 4`), not at every sweep: that read goes through every attempt
 * in flight. Due runs and callback deadlines are read at every sweep; a full batch of expired
 * leases is followed by another at the next sweep. The clock is the test's own.
 */
import { expect } from 'chai';
import type { Store } from '../../src/store/store';
import type { InboxMessage } from '../../src/supervisor/messages';
import { SupervisorTimers } from '../../src/supervisor/timers';
import { createSilentLogger } from '../support/engine';

describe('sweep: expired leases every quarter of the shortest lease', () => {
  it('reads due runs and deadlines at every sweep, leases every leaseGraceMs / 4, and again at the next sweep after a full batch', async () => {
    const realNow = Date.now;
    let now = 1_000_000;
    Date.now = () => now;
    try {
      const reads: string[] = [];
      let expired = 0;
      const store = {
        claimDueRuns: async () => (reads.push('due'), []),
        claimExpiredLeases: async () => (reads.push('leases'), Array.from({ length: expired }, (_, i) => ({ id: `run-${i}`, requestId: `req-${i}` }))),
        claimExpiredWaits: async () => (reads.push('waits'), []),
      } as unknown as Store;
      const received: InboxMessage[] = [];
      const timers = new SupervisorTimers(store, createSilentLogger(), { sweepIntervalMs: 250, leaseGraceMs: 4000, queueLeaseMs: 600_000, sweepBuffered: false }, (m) => received.push(m));
      const sweep = (): Promise<void> => (timers as unknown as { sweep(): Promise<void> }).sweep();
      const leaseReads = async (at: number[]): Promise<boolean[]> => {
        const out: boolean[] = [];
        for (const t of at) {
          now = 1_000_000 + t;
          reads.length = 0;
          await sweep();
          expect(reads.filter((r) => r !== 'leases'), `at +${t} ms`).to.deep.equal(['due', 'waits']);
          out.push(reads.includes('leases'));
        }
        return out;
      };
      expect(await leaseReads([0, 250, 500, 750, 1000, 1250, 1999, 2000])).to.deep.equal([true, false, false, false, true, false, false, true]);
      // 200 expired (a full batch): read again at the next sweep, then back to every second.
      expired = 200;
      expect(await leaseReads([3000])).to.deep.equal([true]);
      expired = 3;
      expect(await leaseReads([3250, 3500, 4250])).to.deep.equal([true, false, true]);
      expect(received.filter((m) => m.type === 'lease-expired')).to.have.length(200 + 3 + 3);
      timers.stop();
    } finally {
      Date.now = realNow;
    }
  });
});
