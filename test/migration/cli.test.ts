/**
 * `conveyor requests migrate`: a dry run prints what would move and the refusals table and
 * changes nothing; the real run moves, follows the progress (lines), and exits 1 because some
 * requests were refused; bad usage exits 2.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { OPS_COMMANDS } from '../../src/cli/commands/index';
import type { Io } from '../../src/cli/commands/args';
import { startTestEngine, type TestEngine } from '../support/engine';
import { removeTmpDir, tmpDir } from '../support/tmp';
import { FIXTURES, MOVE_WAIT_V2, registerVersion, scalar, untilCount } from './support';

describe('conveyor requests migrate', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let v2: number;
  let dbUrl: string;
  let dir: string;

  const run = async (...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), env: { CONVEYOR_URL: t.url, CONVEYOR_API_KEY: t.keys.admin } };
    const code = await OPS_COMMANDS.requests!(argv, io);
    return { code, out, err };
  };

  before(async () => {
    dir = tmpDir('migrate-cli');
    dbUrl = `sqlite:${path.join(dir, 'c.db')}`;
    t = await startTestEngine({ databaseUrl: dbUrl, pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), engine: { migrations: { pollMs: 50 } } });
    for (let n = 0; n < 12; n++) await t.engine.intake.submit({ pipelineId: 'move-wait', payload: { n, key: `c-${n}`, hold: n >= 10 } });
    await untilCount(t, "SELECT COUNT(*) AS n FROM requests WHERE status = 'waiting'", [], 12);
    v2 = await registerVersion(t, MOVE_WAIT_V2);
  });
  after(async () => {
    await t?.close();
    if (dir) removeTmpDir(dir);
  });

  it('--dry-run prints what would move and why the others cannot, and changes nothing', async () => {
    const r = await run('migrate', 'move-wait', '--from', '1', '--to', String(v2), '--map', 'wait=await_wake', '--dry-run', '--progress', 'none');
    expect(r.code, r.err.join('\n')).to.equal(1);
    expect(r.out[0]).to.match(new RegExp(`^migration \\S+ done \\(dry run: nothing changed\\): would move 10, refused 2, of 12$`));
    expect(r.out[1]).to.match(/^REQUEST\s+PATH\s+REASON$/);
    expect(r.out.slice(2)).to.have.length(2);
    for (const line of r.out.slice(2)) expect(line).to.match(/steps\.hold\s+the request is at "hold", and version \d+ has no step "hold"/);
    expect(await scalar(t, 'SELECT COUNT(*) AS n FROM requests WHERE version = ?', [v2])).to.equal(0);
  });

  it('moves the requests it can, with progress lines, and exits 1 for the refused ones', async () => {
    const r = await run('migrate', 'move-wait', '--from', '1', '--to', String(v2), '--map=wait=await_wake', '--status', 'waiting', '--progress', 'lines');
    expect(r.code).to.equal(1);
    expect(r.err.at(-1)).to.match(/^migrating 12\/12 \| moved 10 refused 2 left 0$/);
    expect(r.out[0]).to.match(/done: moved 10, refused 2, of 12$/);
    expect(await scalar(t, 'SELECT COUNT(*) AS n FROM requests WHERE version = ?', [v2])).to.equal(10);
  });

  it('conveyor graph --diff compares two stored versions through the mapping', async () => {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: () => undefined, env: { DATABASE_URL: dbUrl } };
    expect(await OPS_COMMANDS.graph!(['move-wait', '--diff', `1..${v2}`, '--map', 'wait=await_wake'], io)).to.equal(0);
    expect(out).to.deep.equal([
      `move-wait: version 1 → ${v2}`, 'added    added', 'removed  hold', 'renamed  wait → await_wake', 'changed  after, await_wake, gate',
    ]);
    expect(await OPS_COMMANDS.graph!(['move-wait', '--diff', '1..9'], io)).to.equal(1);
  });

  it('refuses bad usage with exit 2', async () => {
    for (const argv of [['migrate', 'move-wait', '--to', '2'], ['migrate', 'move-wait', '--from', '1', '--to', '2', '--map', 'wait'], ['migrate', '--from', '1', '--to', '2']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.err.join('\n')).to.include('Usage: conveyor requests migrate');
    }
  });
});
