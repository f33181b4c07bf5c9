/**
 * What one request costs the distributed engine, counted, not timed: requests run one at a
 * time through a whole distributed engine (MariaDB + Redis, `bench-linear`: 5 steps, step `s3`
 * on the queue transport, engine and worker roles in this process), and per request:
 *
 * - MySQL round trips (every `query`/`execute` this process sends through mysql2), statements
 *   (a multi-statement query counts each of its statements) and transactions (`COMMIT`s),
 *   with the statements by shape;
 * - Redis commands: the ones this process sends (ioredis, a Lua script call counts once), and
 *   the server's `INFO commandstats` delta, which also counts the commands bull's Lua scripts
 *   run. The server is a private `redis-server` started here on a free port, so no other
 *   client is counted;
 * - InnoDB buffer-pool page writes (`Innodb_buffer_pool_write_requests`: every index page a
 *   statement changes) and redo bytes: server-wide counters, so run it on a quiet server.
 *
 * The periodic sweeps (leases, timers, admission, keys, alerts, migrations) are set to an
 * hour so they do not run during the count; what is left is the requests' own work.
 *
 *   npx tsx scripts/bench/one-in-flight.ts [--requests 200] [--warmup 200] [--shapes] [--trace]
 *
 * `--shapes`: the statements and commands by kind; `--trace`: the last request's round trips.
 *
 * MariaDB from BENCH_MYSQL_URL / TEST_MYSQL_URL (a scratch database is made and dropped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { loadConfig } from '../../src/config';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const FIXTURES = path.join(__dirname, 'fixtures');
const HOUR = 3_600_000;

const mysqlCount = { roundTrips: 0, statements: 0, commits: 0, rollbacks: 0, shapes: new Map<string, number>() };
/** `--trace`: the round trips of the last request, each as its statements' shapes. */
let traced: string[] | undefined;
const redisSent = new Map<string, number>();

/** The first words of a statement and the table it names: `UPDATE requests`, `INSERT INTO step_runs`. */
function shapeOf(sql: string): string {
  const s = sql.trim().replace(/\s+/g, ' ');
  const m = /^(SELECT .*? FROM \S+|INSERT INTO \S+|UPDATE \S+|DELETE FROM \S+|START TRANSACTION|COMMIT|ROLLBACK|SET [A-Z ]+|[A-Z]+)/i.exec(s);
  return (m ? m[1]! : s.slice(0, 40)).replace(/^SELECT .*? FROM/i, 'SELECT … FROM');
}

/** Counts what mysql2 sends, in this process (TypeORM's pool and the multi-statement pool alike). */
function patchMysql(): void {
  const req = createRequire(require.resolve('mysql2'));
  const Base = req('./lib/base/connection.js') as { prototype: Record<string, (...a: unknown[]) => unknown> };
  for (const name of ['query', 'execute']) {
    const f = Base.prototype[name]!;
    Base.prototype[name] = function (this: unknown, sql: unknown, ...rest: unknown[]) {
      const text = typeof sql === 'string' ? sql : String((sql as { sql?: string }).sql ?? '');
      mysqlCount.roundTrips++;
      traced?.push(text.split(';\n').map(shapeOf).join(' ; '));
      // `sendAll` joins its statements with ";\n"; escaped values never hold a raw newline.
      for (const st of text.split(';\n')) {
        mysqlCount.statements++;
        const shape = shapeOf(st);
        mysqlCount.shapes.set(shape, (mysqlCount.shapes.get(shape) ?? 0) + 1);
        if (/^\s*COMMIT\b/i.test(st)) mysqlCount.commits++;
        if (/^\s*ROLLBACK\b/i.test(st)) mysqlCount.rollbacks++;
      }
      return f.call(this, sql, ...rest);
    };
  }
}

/** Counts the commands ioredis sends from this process (bull's clients included). */
function patchRedis(): void {
  const proto = Redis.prototype as unknown as { sendCommand(cmd: { name: string }, ...rest: unknown[]): unknown };
  const send = proto.sendCommand;
  proto.sendCommand = function (this: unknown, cmd: { name: string }, ...rest: unknown[]) {
    redisSent.set(cmd.name, (redisSent.get(cmd.name) ?? 0) + 1);
    return send.call(this, cmd, ...rest);
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function privateRedis(): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oif-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return { url, child, dir };
    } catch {
      r.disconnect();
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  child.kill();
  throw new Error('redis-server did not start');
}

async function commandstats(url: string): Promise<Map<string, number>> {
  const r = new Redis(url);
  try {
    const text = await r.info('commandstats');
    const m = new Map<string, number>();
    for (const line of text.split('\n')) {
      const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
      if (x) m.set(x[1]!, Number(x[2]));
    }
    return m;
  } finally {
    r.disconnect();
  }
}

function delta(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) !== 0) d.set(k, v - (a.get(k) ?? 0));
  return d;
}

const per = (n: number, of: number): string => (n / of).toFixed(2).replace(/\.00$/, '');
const sumOf = (m: Map<string, number>): number => [...m.values()].reduce((s, v) => s + v, 0);
const list = (m: Map<string, number>, of: number): string => [...m].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${per(v, of)}`).join(', ');

async function main(): Promise<void> {
  const n = arg('--requests', 200);
  const warm = arg('--warmup', 200);
  patchMysql();
  patchRedis();
  const mysqlUrl = process.env.BENCH_MYSQL_URL || process.env.TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
  const base = new URL(mysqlUrl);
  base.pathname = '/';
  const dbName = `conveyor_oif_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4`);
  const db = new URL(base.toString());
  db.pathname = `/${dbName}`;
  const redis = await privateRedis();
  let engine: Engine | undefined;
  try {
    const config = loadConfig({ ...process.env, CONVEYOR_ADMIN_SWEEP_MS: String(HOUR), CONVEYOR_MIGRATION_POLL_MS: String(HOUR) });
    engine = await Engine.create({
      config, databaseUrl: db.toString(), redisUrl: redis.url, queuePrefix: 'oif', queueModules: ['bench-qstep'],
      pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), logger: createLogger('warn'),
      supervisor: { sweepIntervalMs: HOUR, maxInFlight: 0 }, intake: { sweepMs: HOUR, pollMs: HOUR },
    });
    await engine.start({ engine: true, worker: true });
    const eng = engine;
    const waiters = new Map<string, () => void>();
    const ended = new Set<string>();
    eng.bus.on('RequestFinished', ({ requestId, status }) => {
      if (status !== 'completed') console.error(`request ${requestId} ended ${status}`);
      const w = waiters.get(requestId);
      if (w) {
        waiters.delete(requestId);
        w();
      } else ended.add(requestId);
    });
    const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };
    const runOne = async (): Promise<void> => {
      const r = await eng.intake.submit({ pipelineId: 'bench-linear', payload });
      if (!ended.delete(r.id)) await new Promise<void>((resolve) => waiters.set(r.id, resolve));
    };
    for (let i = 0; i < warm; i++) await runOne();
    // InnoDB's page writes and redo, server-wide (run it on an otherwise quiet server); read before m0 and after m1, so not counted.
    const innodb = async (): Promise<Record<string, number>> => {
      const [rows] = await admin.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_write_requests', 'Innodb_os_log_written')");
      return Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
    };
    const i0 = await innodb();
    const m0 = { ...mysqlCount, shapes: new Map(mysqlCount.shapes) };
    const s0 = await commandstats(redis.url);
    // Read after the INFO call: its own client is left out.
    const m0Sent = new Map(redisSent);
    for (let i = 0; i < n; i++) {
      if (i === n - 1 && process.argv.includes('--trace')) traced = [];
      await runOne();
    }
    const last = traced;
    traced = undefined;
    const m1 = { ...mysqlCount, shapes: new Map(mysqlCount.shapes) };
    const i1 = await innodb();
    const s1 = await commandstats(redis.url);
    const shapes = delta(m0.shapes, m1.shapes);
    const sent = delta(m0Sent, redisSent);
    sent.delete('info');
    const server = delta(s0, s1);
    server.delete('info');
    const [done] = await eng.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE status = 'completed'");
    const [runs] = await eng.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM step_runs WHERE status = 'completed'");
    console.log(`${n} requests one at a time (after ${warm} warm-up): ` +
      `completed ${Number(done?.n)} of ${n + warm}, step runs completed ${Number(runs?.n)} of ${(n + warm) * 5}`);
    console.log(`MySQL per request: ${per(m1.roundTrips - m0.roundTrips, n)} round trips, ${per(m1.statements - m0.statements, n)} statements, ` +
      `${per(m1.commits - m0.commits, n)} transactions (COMMIT), ${per(m1.rollbacks - m0.rollbacks, n)} rollbacks`);
    const di = (k: string): number => (i1[k] ?? 0) - (i0[k] ?? 0);
    console.log(`InnoDB per request (server-wide): ${per(di('Innodb_buffer_pool_write_requests'), n)} page writes, ${(di('Innodb_os_log_written') / 1024 / n).toFixed(1)} redo KiB`);
    console.log(`Redis per request: ${per(sumOf(sent), n)} commands sent by this process, ${per(sumOf(server), n)} executed by the server (Lua's included)`);
    if (process.argv.includes('--shapes')) {
      console.log(`  MySQL statements: ${list(shapes, n)}`);
      console.log(`  Redis sent: ${list(sent, n)}`);
      console.log(`  Redis server: ${list(server, n)}`);
    }
    if (last) for (const [i, t] of last.entries()) console.log(`  round trip ${i + 1}: ${t}`);
  } finally {
    await engine?.stop();
    await admin.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
    await admin.end();
    redis.child.kill();
    fs.rmSync(redis.dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e);
  process.exit(1);
});
