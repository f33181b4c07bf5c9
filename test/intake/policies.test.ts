/**
 * Intake policies with real timing (docs/intake.md): `rate` starts at most `max` requests in
 * any span of `per`, `batch` releases up to `size` at each tick of `every`, `schedule` releases
 * what is buffered at each cron tick, `maxActive` caps how many run at once; all in arrival order. The limits are asserted on the
 * durable release times the intake decided (`requests.release_at`, exact); a `rate` also
 * holds, exactly, on when the first step was dispatched (the step log's `startedAt`).
 */
import { expect } from 'chai';
import type { TestEngine } from '../support/engine';
import { firstStarts, maxInAnySpan, rowsOf, sleep, startIntakeEngine, until } from './helpers';

function expectArrivalOrder(rows: Array<{ release_at: number | null }>): void {
  const released = rows.map((r) => r.release_at!);
  expect(released, 'release times in arrival order').to.deep.equal([...released].sort((a, b) => a - b));
}

describe('intake policies (timing)', function () {
  this.timeout(30_000);
  let t: TestEngine;

  before(async () => {
    t = await startIntakeEngine();
  });
  after(() => t.close());

  const submitAll = (pipeline: string, n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => t.api<{ id: string; status: string }>('POST', `/api/pipelines/${pipeline}/requests`, { body: { i } })));

  const allCompleted = (pipeline: string, n: number) =>
    until(`${n} ${pipeline} requests to complete`, async () => {
      const rows = await rowsOf(t, pipeline);
      return rows.length === n && rows.every((r) => r.status === 'completed') ? rows : undefined;
    }, 20_000);

  it('rate {max: 5, per: 1s}: 17 requests start at most 5 in any second, in arrival order', async () => {
    const answers = await submitAll('in-rate', 17);
    expect(answers.map((a) => a.status)).to.deep.equal(new Array(17).fill(202));
    expect(answers.every((a) => a.body.status === 'buffered')).to.equal(true);
    const rows = await allCompleted('in-rate', 17);
    const released = rows.map((r) => r.release_at!);
    expect(maxInAnySpan(released, 1000), 'releases in any 1 s span').to.equal(5);
    // The limit holds at the first step's dispatch too, exactly (the step log's startedAt).
    const starts = [...(await firstStarts(t, 'in-rate')).values()];
    expect(starts).to.have.length(17);
    expect(maxInAnySpan(starts, 1000), 'first steps dispatched in any 1 s span').to.be.at.most(5);
    // 17 = 5 + 5 + 5 + 2: four windows, so the last release comes 3 s after the first.
    const span = Math.max(...released) - Math.min(...released);
    expect(span).to.be.within(3000, 3000 + 600);
    expectArrivalOrder(rows);
  });

  it('batch {size: 4, every: 1s}: 10 requests leave as 4 + 4 + 2 on consecutive ticks, in arrival order', async () => {
    // Submit just after a tick, so all 10 are buffered before the next one.
    await until('a second to begin', () => Promise.resolve(Date.now() % 1000 < 300 ? true : undefined), 5000, 10);
    await submitAll('in-batch', 10);
    await sleep(100);
    const held = await rowsOf(t, 'in-batch');
    expect(held.filter((r) => r.hold === 'gate').length, 'held until the next tick').to.be.at.least(6);
    const rows = await allCompleted('in-batch', 10);
    const ticks = new Map<number, number>();
    for (const r of rows) {
      const tick = Math.floor(r.release_at! / 1000) * 1000;
      expect(r.release_at! - tick, 'released just after a tick').to.be.below(300);
      ticks.set(tick, (ticks.get(tick) ?? 0) + 1);
    }
    const sizes = [...ticks.entries()].sort((a, b) => a[0] - b[0]);
    expect(sizes.map(([, n]) => n)).to.deep.equal([4, 4, 2]);
    expect(sizes[1]![0] - sizes[0]![0]).to.equal(1000);
    expect(sizes[2]![0] - sizes[1]![0]).to.equal(1000);
    expectArrivalOrder(rows);
  });

  it('schedule "*/2 * * * * *": what is buffered at a tick is released at that tick, later arrivals wait for the next', async () => {
    // Start right after an even second, so the first group surely waits for the next tick.
    await until('an even second to pass', () => Promise.resolve(Date.now() % 2000 < 200 ? true : undefined), 5000, 10);
    await submitAll('in-cron', 5);
    await sleep(150);
    expect((await rowsOf(t, 'in-cron')).every((r) => r.hold === 'gate' && r.status === 'buffered')).to.equal(true);
    const first = await allCompleted('in-cron', 5);
    const tick1 = Math.floor(first[0]!.release_at! / 2000) * 2000;
    for (const r of first) {
      expect(r.created_at).to.be.at.most(tick1);
      expect(r.release_at! - tick1).to.be.within(0, 300);
    }
    await submitAll('in-cron', 3);
    const all = await allCompleted('in-cron', 8);
    const later = all.filter((r) => r.created_at > tick1);
    expect(later).to.have.length(3);
    for (const r of later) expect(Math.floor(r.release_at! / 2000) * 2000).to.be.above(tick1);
    expectArrivalOrder(all);
  });

  it('maxActive: 3: of 10 slow requests, never more than 3 run at once; the next starts as one ends', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => t.api<{ id: string }>('POST', '/api/pipelines/in-active/requests', { body: { i, ms: 300 } })));
    expect(answers.every((a) => a.status === 202)).to.equal(true);
    const rows = await allCompleted('in-active', 10);
    const runs = await t.engine.store.query<{ started_at: number; finished_at: number }>("SELECT started_at, finished_at FROM step_runs WHERE pipeline_id = 'in-active'");
    const edges = runs.flatMap((r) => [[Number(r.started_at), 1], [Number(r.finished_at), -1]] as Array<[number, number]>).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peak = 0;
    for (const [, d] of edges) peak = Math.max(peak, (running += d));
    expect(peak, 'running at once').to.equal(3);
    // 10 requests of 300 ms, 3 at a time: at least 4 rounds.
    expect(Math.max(...runs.map((r) => Number(r.finished_at))) - Math.min(...runs.map((r) => Number(r.started_at)))).to.be.at.least(1200);
    expectArrivalOrder(rows);
  });

  it('?wait answers 202 while the policy still holds the request, and 200 with the final request once it ran in time', async () => {
    // Just after a tick of the 1 s batch, so the request is held for most of a second.
    await until('a second to begin', () => Promise.resolve(Date.now() % 1000 < 100 ? true : undefined), 5000, 10);
    const held = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/in-batch/requests?wait=0.3', { body: { w: 1 } });
    expect(held.status).to.equal(202);
    expect(held.body.status).to.equal('buffered');
    const waited = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/in-batch/requests?wait=3', { body: { w: 2 } });
    expect(waited.status).to.equal(200);
    expect(waited.body.status).to.equal('completed');
  });

  it('immediate: a request starts at once (release_at = created_at, nothing held)', async () => {
    const r = await t.api<{ id: string }>('POST', '/api/pipelines/in-plain/requests?wait=5', { body: { x: 1 } });
    expect(r.status).to.equal(200);
    const [row] = (await rowsOf(t, 'in-plain')).filter((x) => x.id === r.body.id);
    expect(row!.release_at).to.equal(row!.created_at);
    expect(row!.hold).to.equal(null);
  });
});
