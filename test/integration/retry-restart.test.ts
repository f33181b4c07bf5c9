import { expect } from 'chai';
import path from 'node:path';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'retry');

describe('retry backoff is durable', () => {
  after(cleanupTmpDirs);

  it('fires a pending retry after the engine restarts, once, with the same idempotency key', async () => {
    const dir = tmpDir('retry');
    const opts = {
      databaseUrl: `sqlite:${dir}/c.db`,
      pipelinesDir: path.join(FIXTURES, 'pipelines'),
      modulesDir: path.join(FIXTURES, 'modules'),
      logger: createLogger('error'),
      supervisor: { sweepIntervalMs: 100 },
    };
    const first = await Engine.create(opts);
    await first.start();
    const req = await first.intake.submit({ pipelineId: 'flaky', payload: {} });
    // Wait until attempt 1 has failed and attempt 2 is pending on its backoff.
    for (let i = 0; i < 100; i++) {
      const runs = await first.store.listStepRuns(req.id);
      if (runs.some((r) => r.status === 'pending')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const pending = (await first.store.listStepRuns(req.id)).find((r) => r.status === 'pending');
    expect(pending, 'a pending retry').to.not.equal(undefined);
    expect(pending!.attempt).to.equal(2);
    expect(pending!.availableAt! - Date.now()).to.be.greaterThan(500);
    await first.stop();

    const second = await Engine.create(opts);
    await second.start();
    try {
      expect(await second.waitForEnd(req.id, 5000)).to.equal('completed');
      const runs = await second.store.listStepRuns(req.id);
      expect(runs.map((r) => [r.attempt, r.status])).to.deep.equal([[1, 'failed'], [2, 'completed']]);
      expect(runs[1]!.startedAt).to.be.at.least(runs[0]!.finishedAt! + 1400);
      expect(runs[1]!.output).to.deep.equal({ attempt: 2, key: runs[0]!.id });
    } finally {
      await second.stop();
    }
  });
});
