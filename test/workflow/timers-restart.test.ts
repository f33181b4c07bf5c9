/**
 * Timers are durable: a request sitting in a `delay`, or in a `wait` with a timeout, survives
 * a SIGKILL of the engine, and after the restart its timer fires exactly once (late, if its
 * time passed while the engine was down).
 *
 * The engine runs as a real child process (`node bin/conveyor.js start`) on a SQLite file with
 * two fixture pipelines whose timers are 2.5 s long. The requests are submitted, the engine is
 * killed with SIGKILL well before the timers are due, and restarted after they are due. The
 * fixture module appends one line to a file each time a timer leads to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../support/engine';
import { pollUntil } from '../support/poll';
import { freePort } from '../support/ports';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { sleep } from './support';

const FIXTURES = path.join(__dirname, 'fixtures', 'timers');
const TIMER_MS = 2500;
const EACH = 5;

interface Child {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<unknown>;
}

describe('durable timers: a delay and a wait timeout survive SIGKILL and fire once after the restart', function () {
  this.timeout(120_000);
  const children: ChildProcess[] = [];
  const key = `timers-${randomBytes(10).toString('hex')}`;
  let dir: string;

  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await new Promise((r) => c.once('exit', r));
      }
    }
    cleanupTmpDirs();
  });

  async function start(): Promise<Child> {
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(process.execPath, ['bin/conveyor.js', 'start'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: `sqlite:${path.join(dir, 'timers.db')}`,
        HOST: '127.0.0.1',
        PORT: String(port),
        CONVEYOR_API_KEYS: `${key}:admin`,
        CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'),
        CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'),
        CONVEYOR_SWEEP_MS: '200',
        TIMER_LOG: path.join(dir, 'fired.log'),
        LOG_LEVEL: 'warn',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const keep = (b: Buffer): void => void output.push(b.toString('utf8'));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise((r) => child.once('exit', r));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 45_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the engine exited:\n${output.join('')}`);
      try {
        if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) break;
      } catch {
        // not yet listening
      }
      if (Date.now() > deadline) throw new Error(`the engine did not start:\n${output.join('')}`);
      await sleep(100);
    }
    return { child, url, output, exited };
  }

  const api = async <T>(e: Child, method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${e.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await res.json()) as T;
  };
  const fired = (): string[] => {
    const file = path.join(dir, 'fired.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  };

  it('fires each timer exactly once after a restart, never before it was due', async () => {
    dir = tmpDir('timers');
    const first = await start();
    const submitted = Date.now();
    const ids: Array<{ id: string; pipeline: string }> = [];
    for (let i = 0; i < EACH; i++) {
      for (const pipeline of ['timer-delay', 'timer-wait']) {
        const r = await api<{ id: string }>(first, 'POST', `/api/pipelines/${pipeline}/requests`, { key: `k-${i}` });
        ids.push({ id: r.id, pipeline });
      }
    }
    for (const { id } of ids) {
      for (;;) {
        const v = await api<{ status: string }>(first, 'GET', `/api/requests/${id}`);
        if (v.status === 'waiting') break;
        await sleep(20);
      }
    }
    expect(Date.now() - submitted, 'all requests waiting well before their timers').to.be.below(TIMER_MS - 500);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(fired(), 'nothing fired before the kill').to.deep.equal([]);

    // Down past the timers' time: they are overdue when the engine comes back.
    await sleep(Math.max(0, submitted + TIMER_MS + 300 - Date.now()));
    const second = await start();
    await pollUntil(() => Promise.all(ids.map(({ id }) => api<{ status: string }>(second, 'GET', `/api/requests/${id}`).then((v) => v.status))), (statuses) => statuses.every((s) => s === 'completed'), {
      timeoutMs: 30_000, everyMs: 100, failure: (statuses) => `not all completed: ${JSON.stringify(statuses)}\n${second.output.join('')}`,
    });
    // Give a duplicate timer the chance to show itself.
    await sleep(800);

    const lines = fired().map((l) => l.split(' '));
    expect(lines.length, fired().join('\n')).to.equal(ids.length);
    for (const { id, pipeline } of ids) {
      const mine = lines.filter(([rid]) => rid === id);
      expect(mine.length, `request ${id} fired once`).to.equal(1);
      expect(mine[0]![1]).to.equal(pipeline === 'timer-delay' ? 'delay' : 'timeout');
      expect(Number(mine[0]![2]) - submitted).to.be.at.least(TIMER_MS);
      const steps = await api<{ items: Array<{ stepId: string; status: string; error: { code: string } | null }> }>(second, 'GET', `/api/requests/${id}/steps`);
      const log = steps.items.map((s) => `${s.stepId}:${s.status}`);
      expect(log).to.deep.equal(pipeline === 'timer-delay' ? ['hold:completed', 'fire:completed'] : ['wait:failed', 'late:completed']);
      if (pipeline === 'timer-wait') expect(steps.items[0]!.error!.code).to.equal('CONVEYOR_ERR_WAIT_TIMEOUT');
    }
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
