/**
 * How a process is launched: `bin/conveyor.js` run as a program (as `npx conveyor start` and
 * `npm start` run it) gives node the young generation its first line names, and the engine
 * says in its `conveyor started` line what node was started with (src/node-flags.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { freePort } from '../support/ports';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'conveyor.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'crash');

describe('launch: bin/conveyor.js and its node flags', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cleanupTmpDirs();
  });

  /** Starts `command args… start`, answers the fields of its `conveyor started` log line, and stops it with SIGTERM. */
  async function startedLine(command: string, args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
    const port = await freePort();
    const child = spawn(command, [...args, 'start'], {
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
    const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        for (const l of out.split('\n')) {
          if (!l.includes('"conveyor started"')) continue;
          resolve(JSON.parse(l) as Record<string, unknown>);
        }
      });
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      void exited.then((code) => reject(new Error(`exited with ${code} before it started:\n${out}`)));
    });
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, out).to.equal(0);
    return line;
  }

  it('run as a program, it starts node with a 32 MB semi-space', async () => {
    const line = await startedLine(BIN, []);
    expect(line.role).to.equal('start');
    expect(line.semiSpaceMb).to.equal(32);
  });

  it('run by node without the flag, it says node has V8\'s default', async () => {
    expect((await startedLine(process.execPath, [BIN])).semiSpaceMb).to.equal('default');
  });

  it('a flag given to node itself is the one reported', async () => {
    expect((await startedLine(process.execPath, ['--max-semi-space-size=64', BIN])).semiSpaceMb).to.equal(64);
  });
});
