/**
 * `conveyor import` (docs/intake.md): streams NDJSON or CSV through the bulk route, and
 * resumes after an interruption without duplicates. The importer runs as a real child process
 * against a test engine; it is killed with SIGKILL mid-file and run again.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import type { TestEngine } from '../support/engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { rowsOf, startIntakeEngine } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describe('conveyor import', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let dir: string;
  before(async () => {
    t = await startIntakeEngine();
    dir = tmpDir('import');
  });
  after(async () => {
    await t.close();
    cleanupTmpDirs();
  });

  function runImport(args: string[], killWhen?: () => boolean): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['bin/conveyor.js', 'import', ...args, '--key', t.keys.submit, '--url', t.url, '--progress', 'none'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        // A checkpoint after every batch, so the kill lands mid-file however fast the machine is.
        env: { ...process.env, CONVEYOR_IMPORT_CHECKPOINT_MS: '0' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const watch = killWhen ? setInterval(() => killWhen() && child.kill('SIGKILL'), 5) : undefined;
      child.once('exit', (code, signal) => {
        clearInterval(watch);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  it('resumes an NDJSON import killed mid-file: every good line stored once, bad lines reported', async () => {
    const file = path.join(dir, 'events.ndjson');
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ n: i + 1 }));
    lines[9] = '{broken';
    lines[2500] = '[1,2,3]';
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const state = `${file}.import-state.json`;
    const progress = (): number => {
      try {
        return (JSON.parse(fs.readFileSync(state, 'utf8')) as { doneThrough: number }).doneThrough;
      } catch {
        return 0;
      }
    };
    const first = await runImport([file, '--pipeline', 'in-import', '--batch', '100', '--concurrency', '1'], () => progress() >= 600);
    expect(first.signal, first.stderr).to.equal('SIGKILL');
    const stored = (await rowsOf(t, 'in-import')).length;
    expect(stored).to.be.within(600, 2999);

    const second = await runImport([file, '--pipeline', 'in-import', '--batch', '100']);
    // Some lines were rejected: exit 1, as every command exits when not everything succeeded.
    expect(second.code, second.stdout + second.stderr).to.equal(1);
    expect(second.stderr).to.match(/resuming after line \d+/);
    const summary = /(\d+) accepted, (\d+) replayed, \d+ existing, (\d+) rejected, (\d+) skipped/.exec(second.stdout);
    expect(summary, second.stdout).to.not.equal(null);
    const [, accepted, replayed, rejected, skipped] = summary!.map(Number);
    expect(skipped).to.be.at.least(600);
    expect(rejected).to.equal(1);
    expect(accepted! + replayed! + skipped!).to.be.at.least(2999 - 1);

    const rows = await rowsOf(t, 'in-import');
    expect(rows).to.have.length(2998);
    const payloads = await t.engine.store.query<{ payload: string; idempotency_key: string }>("SELECT payload, idempotency_key FROM requests WHERE pipeline_id = 'in-import'");
    const ns = payloads.map((p) => (JSON.parse(p.payload) as { n: number }).n);
    expect(new Set(ns).size, 'no line stored twice').to.equal(2998);
    expect(payloads.every((p) => p.idempotency_key.startsWith('import:events.ndjson:'))).to.equal(true);
    const rejects = fs.readFileSync(`${file}.rejected.ndjson`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: { code: string } });
    expect(rejects.map((r) => r.line)).to.include(2501);

    // A third run starts over (--no-resume): every line is an idempotent replay.
    const third = await runImport([file, '--pipeline', 'in-import', '--no-resume', '--batch', '500']);
    expect(third.stdout).to.match(/0 accepted, 2998 replayed/);
    expect(await rowsOf(t, 'in-import')).to.have.length(2998);
  });

  it('imports CSV with keys from a column, nesting dotted headers', async () => {
    const file = path.join(dir, 'prices.csv');
    const rows = ['event_id,sku,stock.msk,price', ...Array.from({ length: 40 }, (_, i) => `e-${i},SKU-${i},${i},${100 + i}`)];
    fs.writeFileSync(file, `${rows.join('\n')}\n`);
    const r = await runImport([file, '--pipeline', 'in-rate', '--id-column', 'event_id', '--cast']);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/40 accepted, 0 replayed/);
    const stored = await t.engine.store.query<{ payload: string; idempotency_key: string }>("SELECT payload, idempotency_key FROM requests WHERE pipeline_id = 'in-rate' AND idempotency_key LIKE 'import:prices.csv:%' ORDER BY idempotency_key");
    expect(stored).to.have.length(40);
    const e0 = stored.find((s) => s.idempotency_key === 'import:prices.csv:e-0')!;
    expect(JSON.parse(e0.payload)).to.deep.equal({ event_id: 'e-0', sku: 'SKU-0', stock: { msk: 0 }, price: 100 });
    // Without --cast the same rows make other payloads (strings): the keys refuse them (422).
    const again = await runImport([file, '--pipeline', 'in-rate', '--id-column', 'event_id', '--no-resume']);
    expect(again.code, again.stdout).to.equal(1);
    expect(again.stdout).to.match(/0 accepted, 0 replayed, 0 existing, 40 rejected/);
  });
});
