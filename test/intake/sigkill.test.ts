/**
 * Buffered requests are durable (docs/intake.md): an engine process holding requests back
 * under `rate: { max: 5, per: 1s }` is killed with SIGKILL; after a restart on the same file
 * every request completes exactly once, still at most 5 in any second (the window is computed
 * from the stored release times, so it spans both lives), in arrival order.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { readSqlite, startChildEngine } from '../support/child-engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { INTAKE_FIXTURES, maxInAnySpan, sleep, until } from './helpers';

const N = 20;

describe('intake: buffered requests survive SIGKILL', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  const key = `kill-${randomBytes(8).toString('hex')}`;
  let dbFile: string;

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  const startEngine = () => startChildEngine({
    DATABASE_URL: `sqlite:${dbFile}`, CONVEYOR_API_KEYS: `${key}:admin`,
    CONVEYOR_PIPELINES_DIR: path.join(INTAKE_FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(INTAKE_FIXTURES, 'modules'),
  }, children);
  const read = <T>(sql: string): T[] => readSqlite<T>(dbFile, sql);

  it(`${N} rate-limited requests, killed mid-way, all complete after a restart`, async () => {
    dbFile = path.join(tmpDir('intake-kill'), 'c.db');
    const first = await startEngine();
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => fetch(`${first.url}/api/pipelines/in-rate/requests`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ i }),
    }).then(async (r) => ({ status: r.status, id: ((await r.json()) as { id: string }).id }))));
    expect(answers.map((a) => a.status)).to.deep.equal(new Array(N).fill(202));
    await until('the first window to complete', async () => read<{ n: number }>("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'")[0]!.n >= 5, 10_000);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const held = read<{ n: number }>("SELECT COUNT(*) AS n FROM requests WHERE status = 'buffered' AND hold = 'gate'")[0]!.n;
    expect(held, 'requests still held at the kill').to.be.at.least(5);

    await sleep(200);
    const second = await startEngine();
    await until(`all ${N} to complete`, async () => read<{ n: number }>("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'")[0]!.n === N, 30_000, 100);
    second.child.kill('SIGTERM');

    const rows = read<{ id: string; release_at: number }>("SELECT id, release_at FROM requests WHERE pipeline_id = 'in-rate' ORDER BY created_at, id");
    expect(rows.map((r) => r.id)).to.have.members(answers.map((a) => a.id));
    expect(maxInAnySpan(rows.map((r) => r.release_at), 1000), 'releases in any second, across both lives').to.be.at.most(5);
    const released = rows.map((r) => r.release_at);
    expect(released).to.deep.equal([...released].sort((a, b) => a - b));
    const runs = read<{ request_id: string; n: number }>("SELECT request_id, COUNT(*) AS n FROM step_runs WHERE status = 'completed' GROUP BY request_id");
    expect(runs).to.have.length(N);
    expect(runs.every((r) => r.n === 1), 'each step committed once').to.equal(true);
  });
});
