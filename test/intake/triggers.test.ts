/**
 * Scheduled pipelines (docs/intake.md): cron triggers create requests by themselves, with a
 * payload template; each tick fires once even with two engines watching the same database;
 * ticks missed while no engine ran are caught up by the trigger's policy.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import type { TestEngine } from '../support/engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { INTAKE_FIXTURES, sleep, startIntakeEngine, until } from './helpers';

const PIPELINES = path.resolve(__dirname, '..', 'fixtures', 'intake-trigger', 'pipelines');

interface Fired {
  trigger: string;
  at: string;
  key: string;
}

async function fired(t: TestEngine): Promise<Fired[]> {
  const rows = await t.engine.store.query<{ payload: string; idempotency_key: string }>("SELECT payload, idempotency_key FROM requests WHERE pipeline_id = 'in-trigger' ORDER BY created_at");
  return rows.map((r) => {
    const p = JSON.parse(r.payload) as { trigger: string; at: string };
    return { trigger: p.trigger, at: p.at, key: r.idempotency_key };
  });
}

describe('intake: scheduled triggers', function () {
  this.timeout(30_000);
  after(() => cleanupTmpDirs());

  it('fires every tick once, with the rendered payload, although two engines watch it', async () => {
    const dir = tmpDir('triggers');
    const opts = { databaseUrl: `sqlite:${path.join(dir, 'c.db')}`, pipelinesDir: PIPELINES, modulesDir: path.join(INTAKE_FIXTURES, 'modules') };
    const a = await startIntakeEngine(opts);
    const b = await startIntakeEngine(opts);
    try {
      await sleep(3300);
    } finally {
      await b.close();
    }
    try {
      const all = (await fired(a)).filter((f) => f.trigger === 'all');
      expect(all.length).to.be.within(3, 5);
      const ticks = all.map((f) => Date.parse(f.at));
      expect(new Set(ticks).size, 'no tick twice').to.equal(ticks.length);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, 'no tick skipped').to.equal(1000);
      for (const f of all) {
        expect(Date.parse(f.at) % 1000).to.equal(0);
        expect(f.key).to.equal(`schedule:all:${Date.parse(f.at)}`);
      }
    } finally {
      await a.close();
    }
  });

  it('catches up missed ticks after downtime: "all" fires each of them, "latest" only the most recent', async () => {
    const dir = tmpDir('catchup');
    const opts = { databaseUrl: `sqlite:${path.join(dir, 'c.db')}`, pipelinesDir: PIPELINES, modulesDir: path.join(INTAKE_FIXTURES, 'modules') };
    const first = await startIntakeEngine(opts);
    await until('a first tick', async () => ((await fired(first)).some((f) => f.trigger === 'latest') ? true : undefined), 5000);
    await first.close();
    // Down for 6 seconds.
    await sleep(6000);
    const second = await startIntakeEngine(opts);
    try {
      await until('the catch-up', async () => ((await fired(second)).filter((f) => f.trigger === 'latest').length >= 2 ? true : undefined), 5000);
      const all = (await fired(second)).filter((f) => f.trigger === 'all').map((f) => Date.parse(f.at));
      const latest = (await fired(second)).filter((f) => f.trigger === 'latest').map((f) => Date.parse(f.at));
      const gap = (ticks: number[]) => Math.max(...ticks.slice(1).map((t, i) => t - ticks[i]!));
      expect(gap(all), '"all" leaves no hole').to.equal(1000);
      expect(gap(latest), '"latest" skips the missed ticks').to.be.at.least(5000);
      expect(all.length - latest.length).to.be.at.least(4);
    } finally {
      await second.close();
    }
  });
});
