/**
 * How a process is launched: with the node flags `npm start` gives it, or `NODE_OPTIONS` for
 * `bin/conveyor.js` run as a program (`npx conveyor`), node gets a 32 MB semi-space, and the
 * engine says in its `conveyor started` line what node was started with (src/node-flags.ts).
 * Each role handles SIGTERM from the line that says it started: a SIGTERM sent on that line
 * drains and exits 0 (before, the engine's handler came after its line, and such a SIGTERM
 * killed it outright).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { LAUNCH_FLAGS } from '../../src/node-flags';
import { cleanRedisPrefix, uniquePrefix } from '../fixtures/dist/harness';
import { freePort } from '../support/ports';
import { requireRedis } from '../support/services';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'conveyor.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'crash');

describe('launch: the node flags of a conveyor process', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  /** Starts `command args… start`, answers the fields of its `conveyor started` log line, and stops it with SIGTERM. */
  function startedLine(command: string, args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
    return untilLine(command, [...args, 'start'], env, (l) => l.includes('"conveyor started"'));
  }

  /**
   * Starts `command args…` and, the moment it prints a line `isReady` accepts, sends it SIGTERM;
   * answers that line's JSON fields (or `{ line }`), once the process has exited 0.
   */
  async function untilLine(command: string, args: string[], env: Record<string, string>, isReady: (line: string) => boolean): Promise<Record<string, unknown>> {
    const port = await freePort();
    const child = spawn(command, args, {
      cwd: ROOT,
      env: {
        ...process.env, DATABASE_URL: `sqlite:${path.join(tmpDir('launch'), 'c.db')}`, PORT: String(port), HOST: '127.0.0.1',
        CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'),
        LOG_LEVEL: 'info', REDIS_URL: '', NODE_OPTIONS: '', ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let out = '';
    let ready = false;
    const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        // Whole lines only: a chunk may end inside one. One SIGTERM, on the first ready line.
        const l = ready ? undefined : out.split('\n').slice(0, -1).find(isReady);
        if (l === undefined) return;
        ready = true;
        child.kill('SIGTERM');
        resolve(l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : { line: l });
      });
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      void exited.then((code) => reject(new Error(`exited with ${code} before it started:\n${out}`)));
    });
    const code = await exited;
    expect(code, out).to.equal(0);
    return line;
  }

  it('started as npm start starts it, node has a 32 MB semi-space', async () => {
    const line = await startedLine(process.execPath, [...LAUNCH_FLAGS, BIN]);
    expect(line.role).to.equal('start');
    expect(line.semiSpaceMb).to.equal(32);
  });

  it('run as a program (npx conveyor) with NODE_OPTIONS, node has what it names', async () => {
    // `node` on PATH is this test's own node.
    const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
    expect((await startedLine(BIN, [], { PATH, NODE_OPTIONS: '--max-semi-space-size=32' })).semiSpaceMb).to.equal(32);
  });

  it('without the flag, it says node has V8\'s default', async () => {
    expect((await startedLine(process.execPath, [BIN])).semiSpaceMb).to.equal('default');
  });

  it('a worker stopped on its `worker started` line drains and exits 0', async () => {
    const redis = await requireRedis();
    const prefix = uniquePrefix('launch');
    try {
      const line = await untilLine(process.execPath, [...LAUNCH_FLAGS, BIN, 'worker', '--modules', 'crash-step'], { REDIS_URL: redis, CONVEYOR_QUEUE_PREFIX: prefix }, (l) => l.includes('"worker started"'));
      expect(line.modules).to.deep.equal(['crash-step']);
    } finally {
      await cleanRedisPrefix(redis, prefix);
    }
  });

  it('a module server stopped on the line that says it listens exits 0', async () => {
    const port = await freePort();
    const line = await untilLine(process.execPath, [BIN, 'module-server', '--modules', 'crash-step', '--port', String(port), '--host', '127.0.0.1'], {}, (l) => l.startsWith('module server on'));
    expect(line.line).to.include(`http://127.0.0.1:${port}/modules/crash-step`);
  });
});
