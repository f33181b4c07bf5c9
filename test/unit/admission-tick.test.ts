/**
 * Admission control's pulls (src/supervisor/admission.ts). The once-a-second look: with room,
 * it reads the store for starts waiting longer than a tick even when no start was turned away
 * (the backlog flag is only a hint), and starts those not already starting; without room it
 * reads nothing. And the flag itself: a 100,000 burst once left 468 requests `buffered` with
 * the process idle, because a short read that found more than the room cleared it.
 */
import { expect } from 'chai';
import { Admission } from '../../src/supervisor/admission';
import { createLogger } from '../../src/log/logger';

function harness(o: { cached: number; max: number; waiting: string[]; maxBacklog?: number; backlog?: number }) {
  const reads: Array<{ before: number; limit: number }> = [];
  const started: string[] = [];
  const a = new Admission(o.max, {
    cached: () => o.cached,
    listStartable: (before, limit) => {
      reads.push({ before, limit });
      return Promise.resolve(o.waiting.slice(0, limit));
    },
    start: (ids) => void started.push(...ids),
    logger: createLogger('error'),
    backlog: () => o.backlog ?? 0,
  }, o.maxBacklog);
  return { a, reads, started };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('admission: the once-a-second look for waiting starts', () => {
  it('with room and no start ever turned away, it still finds and starts what waits in the store', async () => {
    const { a, reads, started } = harness({ cached: 0, max: 10, waiting: ['r1', 'r2', 'r3'] });
    a.freed(); // the per-end pull trusts the flag: nothing was turned away, so no read
    expect(reads).to.have.length(0);
    const t0 = Date.now();
    a.tick();
    await settle();
    expect(reads).to.have.length(1);
    expect(reads[0]!.limit).to.equal(10);
    // Only starts waiting longer than a tick: fresh ones get their own start message.
    expect(reads[0]!.before).to.be.at.most(t0 - 1000 + 50).and.at.least(t0 - 1000 - 50);
    expect(started).to.deep.equal(['r1', 'r2', 'r3']);
    expect(a.stats.pulled).to.equal(3);
  });

  it('reads at most the room, and skips starts already under way', async () => {
    const { a, reads, started } = harness({ cached: 8, max: 10, waiting: ['r1', 'r2', 'r3', 'r4'] });
    expect(a.admit('r1')).to.equal(true); // r1 starting: in flight 9, room 1
    a.tick();
    await settle();
    expect(reads).to.have.length(1);
    expect(reads[0]!.limit, 'room 1, plus the 1 starting that the read may return').to.equal(2);
    expect(started).to.deep.equal(['r2']);
  });

  it('a short read that finds more waiting starts than the room keeps the backlog, so the next end pulls the rest', async () => {
    const o = { cached: 5, max: 10, waiting: ['r1', 'r2', 'r3', 'r4'] };
    const { a, reads, started } = harness(o);
    // Three starts under way that are not buffered rows (started at submit): room 2, asked 5.
    for (const id of ['x1', 'x2', 'x3']) expect(a.admit(id)).to.equal(true);
    expect(a.admit('late')).to.equal(true); // in flight 9
    a.started('late');
    o.cached = 5;
    a.tick();
    await settle();
    expect(reads.at(-1)!.limit).to.equal(5);
    expect(started).to.deep.equal(['r1', 'r2']);
    // r1, r2 start and leave the store; room frees as the x's end.
    o.waiting = ['r3', 'r4'];
    for (const id of ['x1', 'x2', 'x3']) a.started(id);
    a.freed();
    await settle();
    expect(started, 'the rest found by the pull an end triggers, not a second later').to.deep.equal(['r1', 'r2', 'r3', 'r4']);
  });

  it('without room it does not read the store', async () => {
    const { a, reads } = harness({ cached: 10, max: 10, waiting: ['r1'] });
    a.tick();
    await settle();
    expect(reads).to.have.length(0);
  });
});

describe("admission: the store's backlog as a second bound", () => {
  it('turns a start away while the writes waiting and the starts under way reach the bound, however few are in flight', () => {
    const o = { cached: 0, max: 100, maxBacklog: 4, backlog: 2, waiting: [] };
    const { a } = harness(o);
    expect(a.admit('s1')).to.equal(true);
    expect(a.admit('s2')).to.equal(true); // 2 writes + 2 starts = 4
    expect(a.hasRoom()).to.equal(false);
    expect(a.admit('s3')).to.equal(false);
    expect(a.stats.deferred).to.equal(1);
    o.backlog = 1; // a batch answered
    expect(a.admit('s3')).to.equal(true);
  });

  it("a pull asks only for the backlog's room; a start it read is admitted on the in-flight cap alone, even with the backlog full", async () => {
    const o = { cached: 0, max: 100, maxBacklog: 10, backlog: 10, waiting: ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'] };
    const { a, reads, started } = harness(o);
    expect(a.admit('x')).to.equal(false); // the backlog is full: the start waits in the store
    a.freed();
    a.tick();
    await settle();
    expect(reads, 'no read while the backlog is full').to.have.length(0);
    o.backlog = 4; // room 6 under the backlog, 100 under the cap
    a.freed();
    await settle();
    expect(reads).to.have.length(1);
    expect(reads[0]!.limit, "the backlog's room").to.equal(6);
    expect(started).to.deep.equal(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    // The running requests have handed in their next commits meanwhile: the backlog is full again.
    o.backlog = 10;
    expect(a.admit('r7'), 'a start that was not pulled waits').to.equal(false);
    expect(a.admit('r1', true), 'the pulled ones go ahead: the cap has room').to.equal(true);
    o.cached = 100;
    expect(a.admit('r9', true), 'pulled, but the cap is full').to.equal(false);
  });

  it('pulls nothing once stopped (the engine drains its writes after the stop)', async () => {
    const o = { cached: 0, max: 100, maxBacklog: 10, backlog: 10, waiting: ['r1'] };
    const { a, reads } = harness(o);
    expect(a.admit('x')).to.equal(false);
    a.stop();
    o.backlog = 0;
    a.freed();
    a.tick();
    await settle();
    expect(reads).to.have.length(0);
  });
});
