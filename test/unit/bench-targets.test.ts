/**
 * `npm run bench`: the targets it prints, from the figures of each run (scripts/bench/index.ts).
 * Ratios to the bull chain are taken within each run, then their median; database work per
 * step is checked against one row written per step attempt.
 */
import { expect } from 'chai';
import type { Result, Spec } from '../../scripts/bench/common';
import { summarise, targets, type Target } from '../../scripts/bench/index';

const engine = (name: string, mode: 'embedded' | 'distributed'): Spec => ({ kind: 'engine', name, mode, pipeline: 'bench-linear', requests: 5000, sequential: 200, tmpDir: '/tmp' });
const specs: Spec[] = [
  { kind: 'bull-chain', name: 'bull chain (5 jobs)', requests: 5000, sequential: 200, steps: 5, concurrency: 50, redisUrl: 'redis://127.0.0.1:6379' },
  engine('embedded linear 5000', 'embedded'),
  engine('distributed linear 5000', 'distributed'),
  engine('embedded linear 100000', 'embedded'),
];

const verified = { requestsCompleted: 5000, runsCompleted: 25000, duplicateRuns: 0, ok: true };
const work = (rowsWritten: number) => ({ batch: { statements: 3.3, rowsWritten, kib: 2.7, pages: 0.7 }, sequential: { statements: 5.6, rowsWritten, kib: 52, pages: 12.9 } });

/** One run: the bull chain at `bull` req/s, the engines at the rates given. */
function run(bull: number, embedded: number, distributed: number, over: { rows?: number; seqP50?: number; rss?: number } = {}): Map<string, Result> {
  const r = (name: string, reqPerS: number, extra: Partial<Result> = {}): [string, Result] => [name, { name, kind: name.startsWith('bull') ? 'bull-chain' : 'engine', reqPerS, peakRssMb: 290, ...extra }];
  return new Map([
    r('bull chain (5 jobs)', bull),
    r('embedded linear 5000', embedded, { seqP50Ms: over.seqP50 ?? 0.84, verified, work: work(over.rows ?? 3.2) }),
    r('distributed linear 5000', distributed, { seqP50Ms: 6.3, verified, work: work(over.rows ?? 3.2) }),
    r('embedded linear 100000', embedded, { peakRssMb: over.rss ?? 729, verified }),
  ]);
}

const byWhat = (list: Target[], text: string): Target => {
  const t = list.find((x) => x.what.includes(text));
  if (!t) throw new Error(`no target about "${text}" in ${list.map((x) => x.what).join('; ')}`);
  return t;
};

describe('bench targets', () => {
  it('compares with the bull chain of the same run, and takes the median of the runs\' ratios', () => {
    // Per run: 2×, 3×, 1.5× embedded. The median of the ratios is 2×, whatever the medians of the rates would say.
    const rows = summarise(specs, [run(1000, 2000, 500), run(2000, 6000, 1000), run(4000, 6000, 6000)]);
    const t = targets(rows);
    expect(byWhat(t, 'embedded ≥ 10×')).to.deep.include({ measured: '2.00×', met: false, note: 'short by 5.0×' });
    expect(byWhat(t, 'MariaDB + Redis ≥ 1.5×')).to.deep.include({ measured: '0.50×, verified: yes', met: false, note: 'short by 3.00×' });
    expect(byWhat(t, '1 in flight')).to.deep.include({ measured: '0.84 ms', met: true });
  });

  it('says met when a target is reached, and how far it is when it is not', () => {
    const fast = targets(summarise(specs, [run(1000, 12_000, 1600, { rows: 1, rss: 480 })]));
    expect(byWhat(fast, 'embedded ≥ 10×')).to.deep.include({ met: true, note: undefined });
    expect(byWhat(fast, 'MariaDB + Redis ≥ 1.5×').met).to.equal(true);
    expect(byWhat(fast, 'embedded linear 5000: one row written per step attempt').met).to.equal(true);
    expect(byWhat(fast, 'peak RSS ≤ 500 MB')).to.deep.include({ measured: '480 MB', met: true });
    const slow = targets(summarise(specs, [run(1000, 2000, 500, { seqP50: 1.5 })]));
    expect(byWhat(slow, '1 in flight')).to.deep.include({ met: false, note: '1.5× the target' });
    expect(byWhat(slow, 'peak RSS ≤ 500 MB')).to.deep.include({ measured: '729 MB', met: false, note: '229 MB over' });
  });

  it('prints the database work per step of each scenario against one row per step attempt', () => {
    const t = targets(summarise(specs, [run(1000, 2000, 500)]));
    const emb = byWhat(t, 'embedded linear 5000: one row written per step attempt');
    expect(emb).to.deep.include({ met: false, note: '3.2× the target' });
    expect(emb.measured).to.equal('3.2 rows, 3.3 statements, 2.7 KiB, 0.7 pages; 1 in flight: 3.2 rows, 5.6 statements, 12.9 pages');
    // MariaDB has no page count, and says what it counts: handler writes (an upsert counts its insert attempt too).
    expect(byWhat(t, 'distributed linear 5000: one row written per step attempt').measured).to.equal('3.2 handler writes, 3.3 statements, 2.7 KiB; 1 in flight: 3.2 handler writes, 5.6 statements');
  });

  it('a distributed run that lost or doubled a step misses its target whatever its speed', () => {
    const runs = [run(1000, 2000, 5000)];
    runs[0]!.get('distributed linear 5000')!.verified = { ...verified, duplicateRuns: 1, ok: false };
    expect(byWhat(targets(summarise(specs, runs)), 'MariaDB + Redis ≥ 1.5×')).to.deep.include({ measured: '5.00×, verified: NO', met: false });
  });
});
