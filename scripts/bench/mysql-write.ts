/**
 * The MySQL group-commit write alone (`SqlStore.write`, no engine, no Redis): requests go
 * buffered → running → 5 steps → completed, in batches of `--batch` commits, two batches in
 * flight (as the distributed bench's group commit), then `--single` requests one commit at a
 * time. Prints per step: the MariaDB server's CPU time (from /proc of the local `mariadbd`),
 * handler writes, statements, redo KiB and buffer-pool page writes (global counters: run it
 * on an otherwise quiet server), and the steps a second (wall, rough).
 *
 *   npx tsx scripts/bench/mysql-write.ts [--seed 10000] [--requests 10000] [--batch 1000] [--single 200] [--keep]
 *
 * MariaDB from TEST_MYSQL_URL (a scratch database `conveyor_mw_micro_*` is made and dropped).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { execSync } from 'node:child_process';
import { createConnection, type Connection } from 'mysql2/promise';
import { SqlStore } from '../../src/store/store';
import { newId } from '../../src/ids';
import type { RequestCommit, RequestRecord, StepRunRecord } from '../../src/model';

const arg = (name: string, d: number): number => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
const COUNTERS = ['Handler_write', 'Handler_update', 'Handler_delete', 'Questions', 'Innodb_os_log_written', 'Innodb_buffer_pool_write_requests', 'Com_commit'];
/** The local server's process, for its CPU time (NaN when it is not on this machine). */
const mysqldPid = ((): string => {
  try {
    return execSync('pgrep -o mariadbd || pgrep -o mysqld').toString().trim();
  } catch {
    return '';
  }
})();
const cpuTicks = (): number => {
  if (!mysqldPid) return NaN;
  const f = fs.readFileSync(`/proc/${mysqldPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};
async function counters(c: Connection): Promise<Record<string, number>> {
  const [rows] = await c.query(`SHOW GLOBAL STATUS WHERE Variable_name IN (${COUNTERS.map(() => '?').join(',')})`, COUNTERS);
  const o = Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
  o.cpu = cpuTicks();
  return o;
}

function request(now: number): RequestRecord {
  return { id: newId(now), pipelineId: 'bench-linear', version: 1, status: 'buffered', businessKey: null, idempotencyKey: null, mode: null, test: false,
    payload: { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] }, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: now, createdAt: now, updatedAt: now, finishedAt: null };
}
function run(r: RequestRecord, seq: number, now: number): StepRunRecord {
  return { id: newId(now), requestId: r.id, pipelineId: r.pipelineId, stepId: `s${seq}`, seq, attempt: 1, status: 'dispatched', kind: 'module', module: seq === 3 ? 'bench-qstep' : 'bench-step',
    transport: seq === 3 ? 'queue' : 'event', params: { n: seq }, output: null, error: null, causedBy: null, availableAt: null, leaseUntil: now + 30000, waitEvent: null, waitKey: null,
    deadlineAt: null, override: null, startedAt: now, finishedAt: null, durationMs: null };
}

interface Live { r: RequestRecord; rev: number; open?: StepRunRecord; seq: number }
function commitOf(l: Live, now: number, steps: number): RequestCommit {
  const finishing = l.open;
  const last = l.seq === steps;
  const next = last ? undefined : run(l.r, l.seq + 1, now);
  const c: RequestCommit = {
    requestId: l.r.id, expectRev: l.rev,
    request: { status: last ? 'completed' : 'running', error: null, joins: {}, stepCount: l.seq + (next ? 1 : 0), finishedAt: last ? now : null, updatedAt: now },
    ...(finishing ? { finishRun: { id: finishing.id, status: 'completed' as const, output: { n: l.seq }, finishedAt: now, durationMs: 1 } } : {}),
    cancelRuns: [], insertRuns: next ? [next] : [],
  };
  l.rev++; l.open = next; l.seq++;
  return c;
}

async function lifecycle(store: SqlStore, n: number, batch: number, steps: number, parallel = 2): Promise<void> {
  for (let off = 0; off < n; off += batch * parallel) {
    const groups: Live[][] = [];
    for (let p = 0; p < parallel && off + p * batch < n; p++) {
      const lives: Live[] = [];
      const now = Date.now();
      for (let i = 0; i < Math.min(batch, n - off - p * batch); i++) lives.push({ r: request(now), rev: 0, seq: 0 });
      groups.push(lives);
    }
    await Promise.all(groups.map((g) => store.write({ newRequests: g.map((l) => l.r), commits: [] })));
    for (let s = 0; s <= steps; s++) {
      const held = await Promise.all(groups.map((g) => store.write({ newRequests: [], commits: g.map((l) => commitOf(l, Date.now(), steps)) })));
      if (held.some((h) => h.some((x) => !x))) throw new Error('a commit did not hold');
    }
  }
}

async function main(): Promise<void> {
  const base = (process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test').replace(/\/[^/]*$/, '/');
  const dbName = `conveyor_mw_micro_${randomBytes(3).toString('hex')}`;
  const admin = await createConnection({ uri: base });
  await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4`);
  const store = await SqlStore.open(base + dbName);
  try {
    const steps = 5;
    await lifecycle(store, arg('--seed', 20000), arg('--batch', 1000), steps);
    for (const [label, n, b, par] of [['batch', arg('--requests', 10000), arg('--batch', 1000), 2], ['1-in-flight', arg('--single', 200), 1, 1]] as const) {
      const c0 = await counters(admin);
      const t0 = Date.now();
      await lifecycle(store, n, b, steps, par);
      const ms = Date.now() - t0;
      const c1 = await counters(admin);
      const d = (k: string): number => c1[k]! - c0[k]!;
      const st = n * steps;
      console.log(`${label.padEnd(12)} ${n} req: mysqld CPU ${(d('cpu') * 1e6 / 100 / st).toFixed(1)} µs/step, handler writes ${((d('Handler_write') + d('Handler_update') + d('Handler_delete')) / st).toFixed(2)}/step, ` +
        `stmts ${((d('Questions') - 1) / st).toFixed(2)}/step, redo ${(d('Innodb_os_log_written') / 1024 / st).toFixed(2)} KiB/step, bp writes ${(d('Innodb_buffer_pool_write_requests') / st).toFixed(1)}/step, commits ${(d('Com_commit') / st).toFixed(2)}/step, ${Math.round(st / (ms / 1000))} steps/s wall`);
    }
  } finally {
    await store.close();
    if (!process.argv.includes('--keep')) await admin.query(`DROP DATABASE ${dbName}`);
    await admin.end();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
