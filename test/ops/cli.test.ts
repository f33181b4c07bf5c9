/**
 * The operations commands of `conveyor`: client commands against a running engine, keys and
 * migrate on the database, graph as Mermaid and as a picture. Most run in-process through
 * `OPS_COMMANDS` with captured output; a few run `bin/conveyor.js` as a real process to check
 * exit codes and the wiring in `src/cli/main.ts`.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { OPS_COMMANDS, OPS_USAGE } from '../../src/cli/commands/index';
import { chromiumPath } from '../../src/cli/commands/graph';
import { clientKey, clientUrl, type Io } from '../../src/cli/commands/args';
import { REPO_ROOT, type TestEngine } from '../support/engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { FIXTURES, startOpsEngine } from './support';

interface Captured {
  code: number;
  out: string;
  err: string;
}

/** Runs one command in-process with the given environment. */
async function run(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), env };
  const [command, ...rest] = argv;
  const code = await OPS_COMMANDS[command!]!(rest, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Runs `bin/conveyor.js` as a process. */
function spawn(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<Captured> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'bin', 'conveyor.js'), ...argv], { env: { ...process.env, ...env }, cwd: REPO_ROOT, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

describe('conveyor operations commands', function () {
  this.timeout(120_000);
  let t: TestEngine;
  let dbUrl: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dbUrl = `sqlite:${path.join(tmpDir('cli'), 'conveyor.db')}`;
    t = await startOpsEngine({ databaseUrl: dbUrl });
    env = { CONVEYOR_URL: t.url, CONVEYOR_KEY: t.keys.admin, DATABASE_URL: dbUrl };
  });
  after(async () => {
    await t?.close();
    cleanupTmpDirs();
  });

  it('answers --help for every command, exit 0', async () => {
    for (const name of Object.keys(OPS_COMMANDS)) {
      const r = await run(env, name, '--help');
      expect(r.code, name).to.equal(0);
      expect(r.out, name).to.equal(OPS_USAGE[name]);
      expect(r.out, name).to.match(new RegExp(`^Usage: conveyor ${name}\\b`));
    }
  });

  it('refuses an unknown option with the usage, exit 2', async () => {
    const r = await run(env, 'requests', '--pipline', 'orders');
    expect(r.code).to.equal(2);
    expect(r.err).to.include('unknown option --pipline');
    expect(r.err).to.include('Usage: conveyor requests');
  });

  it('submits a request from inline JSON or a file, and prints JSON with --json', async () => {
    const inline = await run(env, 'submit', 'orders', '--data', '{"sku":"cli-1"}', '--wait', '10', '--json');
    expect(inline.code, inline.err).to.equal(0);
    const body = JSON.parse(inline.out) as { id: string; status: string; context: { payload: unknown } };
    expect(body.status).to.equal('completed');
    expect(body.context.payload).to.deep.equal({ sku: 'cli-1' });

    const file = path.join(tmpDir('cli-data'), 'payload.json');
    writeFileSync(file, JSON.stringify({ sku: 'cli-2' }));
    const fromFile = await run(env, 'submit', 'orders', '--data', file, '--business-key', 'cli-bk');
    expect(fromFile.code, fromFile.err).to.equal(0);
    expect(fromFile.out).to.match(/^[0-9a-f-]{36} {2}(buffered|running|completed)$/);
  });

  it('fails with the API error when the API refuses, exit 1', async () => {
    const unknown = await run(env, 'submit', 'nope', '--data', '{}');
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.include('answered 404 CONVEYOR_ERR_UNKNOWN_PIPELINE');
    const noKey = await run({ ...env, CONVEYOR_KEY: 'wrong-key-123' }, 'requests');
    expect(noKey.code).to.equal(1);
    expect(noKey.err).to.include('401');
    const down = await run({ ...env, CONVEYOR_URL: 'http://127.0.0.1:9' }, 'requests');
    expect(down.code).to.equal(1);
    expect(down.err).to.include('cannot reach http://127.0.0.1:9');
  });

  it('lists requests with filters, as a table or JSON', async () => {
    await run(env, 'submit', 'orders', '--data', '{"sku":"gone","fail":true}', '--wait', '10');
    const json = await run(env, 'requests', '--pipeline', 'orders', '--status', 'error_stop', '--json');
    expect(json.code, json.err).to.equal(0);
    const page = JSON.parse(json.out) as { items: Array<{ status: string }>; nextCursor: string | null };
    expect(page.items).to.have.length(1);
    expect(page.items[0]!.status).to.equal('error_stop');
    const text = await run(env, 'requests', '--pipeline', 'orders', '--limit', '1');
    expect(text.out.split('\n')[0]).to.match(/^ID +PIPELINE +STATUS +CREATED +BUSINESS KEY +ERROR$/);
    expect(text.out).to.match(/\nmore: conveyor requests .*--cursor \S+$/);
    const bad = await run(env, 'requests', '--status', 'finished');
    expect(bad.code).to.equal(1);
    expect(bad.err).to.include('CONVEYOR_ERR_BAD_PARAM');
  });

  it('submit --wait exits 0 when the request completes and 1 when it ends in error_stop', async () => {
    const completed = await run(env, 'submit', 'orders', '--data', '{"sku":"w-ok"}', '--wait', '10');
    expect(completed.code, completed.err).to.equal(0);
    expect(completed.out).to.match(/ {2}completed$/);
    const failed = await run(env, 'submit', 'orders', '--data', '{"sku":"w-gone","fail":true}', '--wait', '10');
    expect(failed.code).to.equal(1);
    expect(failed.out).to.match(/ {2}error_stop {2}CONVEYOR_ERR_NON_RETRYABLE: sku w-gone is not sold any more$/);
    const json = await run(env, 'submit', 'orders', '--data', '{"sku":"w-gone-2","fail":true}', '--wait', '10', '--json');
    expect(json.code).to.equal(1);
    expect((JSON.parse(json.out) as { status: string }).status).to.equal('error_stop');
    // Without --wait, an accepted request is a success whatever comes next.
    const accepted = await run(env, 'submit', 'orders', '--data', '{"sku":"w-gone-3","fail":true}');
    expect(accepted.code, accepted.err).to.equal(0);
    // Still waiting (for an approval) when the wait runs out: not completed, exit 1, said so.
    const waiting = await run(env, 'submit', 'refund', '--data', '{}', '--wait', '1');
    expect(waiting.code).to.equal(1);
    expect(waiting.err, waiting.err).to.match(/is still (buffered|running|waiting) after 1 s$/);
  });

  it('every client command takes CONVEYOR_API_KEY or its alias CONVEYOR_KEY, and calls http://HOST:PORT by default', async () => {
    const port = new URL(t.url).port;
    const done = (JSON.parse((await run(env, 'submit', 'greet', '--data', '{}', '--wait', '10', '--json')).out) as { id: string }).id;
    const file = path.join(tmpDir('cli-import'), 'two.ndjson');
    writeFileSync(file, '{"n":1}\n{"n":2}\n');
    for (const keyVar of ['CONVEYOR_API_KEY', 'CONVEYOR_KEY']) {
      // No CONVEYOR_URL: the default is http://HOST:PORT, as the engine listens.
      const e: NodeJS.ProcessEnv = { HOST: '127.0.0.1', PORT: port, [keyVar]: t.keys.admin };
      const ok = [
        ['requests', '--limit', '1'],
        ['steps', done],
        ['submit', 'greet', '--data', '{}'],
        ['import', file, '--pipeline', 'greet', '--no-resume', '--key-prefix', `cli-${keyVar}`, '--progress', 'none'],
      ];
      for (const argv of ok) {
        const r = await run(e, ...argv);
        expect(r.code, `${keyVar} ${argv.join(' ')}: ${r.err}`).to.equal(0);
      }
      // A resume or stop of a completed request reaches the API and is refused there (409, not 401).
      for (const verb of ['resume', 'stop']) {
        const r = await run(e, verb, done);
        expect(r.code, `${keyVar} ${verb}`).to.equal(1);
        expect(r.err, `${keyVar} ${verb}`).to.include('answered 409 CONVEYOR_ERR_NOT_APPLICABLE');
      }
    }
    const imported = await run({ HOST: '127.0.0.1', PORT: port, CONVEYOR_KEY: t.keys.admin }, 'import', file, '--pipeline', 'greet', '--no-resume', '--key-prefix', 'cli-out', '--progress', 'none');
    expect(imported.out).to.match(/2 accepted, 0 replayed, 0 existing, 0 rejected/);
    // No key at all: each says which variables it reads.
    for (const argv of [['requests'], ['import', file, '--pipeline', 'greet']]) {
      const r = await run({ HOST: '127.0.0.1', PORT: port }, ...argv);
      expect(r.code, argv[0]).to.equal(1);
      expect(r.err, argv[0]).to.include('CONVEYOR_API_KEY').and.include('CONVEYOR_KEY');
    }
  });

  it('resolves the URL and the key in one order: flag, CONVEYOR_URL / CONVEYOR_API_KEY, then HOST:PORT / CONVEYOR_KEY', () => {
    const table: Array<[NodeJS.ProcessEnv, Record<string, string>, string]> = [
      [{}, {}, 'http://127.0.0.1:3000'],
      [{ HOST: '127.0.0.2', PORT: '4000' }, {}, 'http://127.0.0.2:4000'],
      [{ PORT: '4000' }, {}, 'http://127.0.0.1:4000'],
      [{ CONVEYOR_URL: 'http://127.0.0.3:5000/', PORT: '4000' }, {}, 'http://127.0.0.3:5000'],
      [{ CONVEYOR_URL: 'http://127.0.0.3:5000' }, { url: 'http://127.0.0.4:6000' }, 'http://127.0.0.4:6000'],
    ];
    for (const [e, flags, want] of table) expect(clientUrl(e, flags), JSON.stringify([e, flags])).to.equal(want);
    const keys: Array<[NodeJS.ProcessEnv, Record<string, string>, string | undefined]> = [
      [{}, {}, undefined],
      [{ CONVEYOR_KEY: 'alias' }, {}, 'alias'],
      [{ CONVEYOR_API_KEY: 'main', CONVEYOR_KEY: 'alias' }, {}, 'main'],
      [{ CONVEYOR_API_KEY: '', CONVEYOR_KEY: 'alias' }, {}, 'alias'],
      [{ CONVEYOR_API_KEY: 'main' }, { key: 'flag' }, 'flag'],
    ];
    for (const [e, flags, want] of keys) expect(clientKey(e, flags), JSON.stringify([e, flags])).to.equal(want);
  });

  it('prints the step log of a request, one line per attempt', async () => {
    const sub = JSON.parse((await run(env, 'submit', 'orders', '--data', '{"sku":"f","flaky":true}', '--wait', '10', '--json')).out) as { id: string };
    const r = await run(env, 'steps', sub.id);
    expect(r.code).to.equal(0);
    const lines = r.out.split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/check-order#1 +failed +event +\d+ ms +CONVEYOR_ERR_MODULE_FAILED: stock service busy$/);
    expect(lines[1]).to.match(/check-order#2 +completed +event/);
    expect(lines[2]).to.match(/ship-standard#1 +completed +event/);
  });

  it('follows the step log until the request ends', async () => {
    const waiting = JSON.parse((await run(env, 'submit', 'refund', '--data', '{"amount":5}', '--json')).out) as { id: string };
    const following = run(env, 'steps', waiting.id, '--follow', '--interval', '100');
    await new Promise((r) => setTimeout(r, 400));
    const approved = await t.api('POST', `/api/requests/${waiting.id}/actions/approve`);
    expect(approved.status).to.equal(200);
    const r = await following;
    expect(r.code).to.equal(0);
    const lines = r.out.split('\n');
    expect(lines[0]).to.match(/review#1 +waiting/);
    expect(lines).to.satisfy((ls: string[]) => ls.some((l) => /review#1 +completed/.test(l)));
    expect(lines).to.satisfy((ls: string[]) => ls.some((l) => /pay#1 +completed/.test(l)));
    expect(lines.at(-1)).to.equal(`request ${waiting.id} completed`);
  });

  it('resumes and stops requests through the API', async () => {
    const failing = JSON.parse((await run(env, 'submit', 'orders', '--data', JSON.stringify({ sku: 'r', failUntil: Date.now() + 300 }), '--wait', '10', '--json')).out) as { id: string; status: string };
    expect(failing.status).to.equal('error_stop');
    await new Promise((r) => setTimeout(r, 350));
    const resumed = await run(env, 'resume', failing.id);
    expect(resumed.code, resumed.err).to.equal(0);
    expect(resumed.out).to.match(new RegExp(`^${failing.id} {2}(running|completed)$`));

    const again = await run(env, 'resume', failing.id);
    expect(again.code).to.equal(1);
    expect(again.err).to.include('answered 409');

    const waiting = JSON.parse((await run(env, 'submit', 'refund', '--data', '{}', '--wait', '1', '--json')).out) as { id: string };
    const stopped = await run(env, 'stop', waiting.id, '--reason', 'duplicate', '--json');
    expect(stopped.code, stopped.err).to.equal(0);
    expect((JSON.parse(stopped.out) as { status: string }).status).to.equal('stopped');

    const readOnly = await run({ ...env, CONVEYOR_KEY: t.keys.read }, 'stop', failing.id);
    expect(readOnly.code).to.equal(1);
    expect(readOnly.err).to.include('answered 403');
  });

  it('creates, lists and revokes stored keys on the database', async () => {
    const created = await run(env, 'keys', 'create', '--name', 'grafana', '--roles', 'read', '--json');
    expect(created.code, created.err).to.equal(0);
    const key = JSON.parse(created.out) as { id: string; key: string; roles: string[] };
    expect(key.roles).to.deep.equal(['read']);
    expect((await t.api('GET', '/api/requests?limit=1', { key: key.key })).status).to.equal(200);
    expect((await t.api('POST', '/api/pipelines/orders/requests', { key: key.key, body: {} })).status).to.equal(403);

    const list = await run(env, 'keys', 'list');
    expect(list.out).to.match(new RegExp(`${key.id} +grafana +read +\\S+ +active`));
    expect(list.out).to.not.include(key.key);

    const revoked = await run(env, 'keys', 'revoke', key.id);
    expect(revoked.code).to.equal(0);
    expect((await t.api('GET', '/api/requests?limit=1', { key: key.key })).status).to.equal(401);
    const twice = await run(env, 'keys', 'revoke', key.id);
    expect(twice.code).to.equal(1);
    expect(twice.err).to.include('already revoked');
    expect((await run(env, 'keys', 'create', '--name', 'x')).code).to.equal(2);
    expect((await run(env, 'keys', 'rotate')).code).to.equal(2);
  });

  it('migrates a fresh database, then finds it up to date', async () => {
    const fresh = { ...env, DATABASE_URL: `sqlite:${path.join(tmpDir('cli-migrate'), 'm.db')}` };
    const first = await run(fresh, 'migrate');
    expect(first.code, first.err).to.equal(0);
    expect(first.out).to.match(/^applied Initial1763800000000$/m);
    expect(first.out).to.match(/^applied SearchIndexes1763800000010$/m);
    const second = await run(fresh, 'migrate', '--json');
    expect(JSON.parse(second.out)).to.include({ dialect: 'sqlite' }).and.have.property('applied').that.deep.equals([]);
  });

  it('refuses to migrate a database a newer release migrated, and says which', async () => {
    const file = path.join(tmpDir('cli-migrate-ahead'), 'm.db');
    const fresh = { ...env, DATABASE_URL: `sqlite:${file}` };
    expect((await run(fresh, 'migrate')).code).to.equal(0);
    const db = new Database(file);
    try {
      db.prepare('INSERT INTO migrations (timestamp, name) VALUES (?, ?)').run(1_899_999_999_999, 'FromTheFuture1899999999999');
    } finally {
      db.close();
    }
    const refused = await run(fresh, 'migrate');
    expect(refused.code).to.equal(1);
    expect(refused.err).to.include('newer Conveyor release').and.include('FromTheFuture1899999999999').and.include('Upgrading');
  });

  it('runs as a process: exit codes, and unknown commands still refused', async () => {
    const ok = await spawn(env, 'requests', '--limit', '2', '--json');
    expect(ok.code, ok.err).to.equal(0);
    expect((JSON.parse(ok.out) as { items: unknown[] }).items).to.have.length(2);
    const failed = await spawn(env, 'steps', '01a20187-df0f-7000-b8ea-bf397f8d5898');
    expect(failed.code).to.equal(1);
    expect(failed.err).to.include('CONVEYOR_ERR_UNKNOWN_REQUEST');
    const usage = await spawn(env, 'steps');
    expect(usage.code).to.equal(2);
    expect((await spawn(env, 'no-such-command')).code).to.equal(2);
    const help = await spawn(env, 'help');
    expect(help.out).to.include('steps <request-id> [--follow]');
  });

  it('prints a pipeline graph as Mermaid, and draws it as SVG and PNG', async function () {
    // Two Chromium renders in one process: slow on a loaded machine.
    this.timeout(300_000);
    const dirs = { CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules') };
    expect(chromiumPath(), 'Chromium is needed: bash scripts/services.sh --with-chromium').to.be.a('string');
    const out = tmpDir('cli-graph');
    const r = await spawn({ ...env, ...dirs }, 'graph', 'orders', '--svg', path.join(out, 'orders.svg'), '--png', path.join(out, 'orders.png'));
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/^flowchart TD\n/);
    expect(r.out).to.include('n_check_order -->|"check-order.express eq true"| n_ship_express');
    expect(r.out).to.include('n_check_order -->|"otherwise"| n_ship_standard');
    // The API serves the same graph and Mermaid text; the dashboard draws that text.
    const api = await t.api<{ graph: { mermaid: string; edges: Array<{ from: string; to: string; via: string; label?: string }> } }>('GET', '/api/pipelines/orders');
    expect(api.body.graph.mermaid).to.equal(r.out.trimEnd());
    expect(api.body.graph.edges).to.deep.include({ from: 'check-order', to: 'ship-standard', via: 'next', label: 'otherwise' });
    const svg = readFileSync(path.join(out, 'orders.svg'), 'utf8');
    expect(svg).to.match(/^<svg /);
    expect(svg).to.include('ship-express');
    expect(readFileSync(path.join(out, 'orders.png')).subarray(1, 4).toString()).to.equal('PNG');
    const unknown = await spawn({ ...env, ...dirs }, 'graph', 'nope');
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.include('unknown pipeline "nope"');
  });
});
