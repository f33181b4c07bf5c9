/**
 * Graceful shutdown: SIGTERM stops intake, lets steps in flight finish (or hands them back)
 * within a deadline, and exits 0. A restart finishes everything, each step committed once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { freePort } from '../support/ports';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'crash');
const KEY = 'shutdown-key-123456';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('graceful shutdown: SIGTERM drains and exits 0, nothing is lost', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  async function start(db: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/conveyor.js', 'start'], {
      cwd: ROOT,
      env: {
        ...process.env, DATABASE_URL: `sqlite:${db}`, PORT: String(port), HOST: '127.0.0.1', CONVEYOR_API_KEYS: `${KEY}:admin`,
        CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'),
        LOG_LEVEL: 'warn', REDIS_URL: '', CONVEYOR_SHUTDOWN_DEADLINE_MS: '5000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return { child, url, exited };
      await sleep(100);
    }
    throw new Error('engine did not start');
  }

  it('finishes or hands back the steps in flight, exits 0, and the restart completes every request once', async () => {
    const db = path.join(tmpDir('shutdown'), 'c.db');
    const first = await start(db);
    const ids: string[] = [];
    await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      const res = await fetch(`${first.url}/api/pipelines/crash-chain/requests`, {
        method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ i }),
      });
      expect(res.status).to.equal(202);
      ids.push(((await res.json()) as { id: string }).id);
    }));
    const t0 = Date.now();
    first.child.kill('SIGTERM');
    await sleep(100); // let the process take the signal
    // During the drain new work is refused with 503 (or the connection is already closed).
    const during = await fetch(`${first.url}/api/pipelines/crash-chain/requests`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{}',
    }).then((r) => r.status, () => 'closed');
    expect([503, 'closed']).to.include(during);
    expect(await first.exited).to.equal(0);
    const drainMs = Date.now() - t0;
    expect(drainMs).to.be.lessThan(9000);

    const conn = new Database(db, { readonly: true });
    const unfinished = Number((conn.prepare("SELECT COUNT(*) AS n FROM requests WHERE status <> 'completed'").get() as { n: number }).n);
    conn.close();
    console.log(`      drained in ${drainMs} ms; ${unfinished} of ${ids.length} requests left for the restart`);
    // The signal came with most requests mid-way: the drain committed their steps in flight
    // as due runs instead of starting them, so the restart has work to pick up.
    expect(unfinished).to.be.greaterThan(0);

    const second = await start(db);
    for (let i = 0; i < 300; i++) {
      const c = new Database(db, { readonly: true });
      const n = Number((c.prepare("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'").get() as { n: number }).n);
      c.close();
      if (n === ids.length) break;
      await sleep(100);
    }
    second.child.kill('SIGTERM');
    expect(await second.exited).to.equal(0);
    const check = new Database(db, { readonly: true });
    expect(Number((check.prepare("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'").get() as { n: number }).n)).to.equal(ids.length);
    const dup = check.prepare("SELECT request_id, step_id, COUNT(*) AS n FROM step_runs WHERE status = 'completed' GROUP BY request_id, step_id HAVING COUNT(*) <> 1").all();
    expect(dup).to.deep.equal([]);
    expect(Number((check.prepare("SELECT COUNT(*) AS n FROM step_runs WHERE status = 'completed'").get() as { n: number }).n)).to.equal(ids.length * 5);
    expect(check.prepare("SELECT COUNT(*) AS n FROM step_runs WHERE status IN ('pending','dispatched','waiting')").get()).to.deep.equal({ n: 0 });
    check.close();
  });
});
