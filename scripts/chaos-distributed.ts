/**
 * The distributed chaos run (DESIGN "Guarantees" and "Deployment modes"):
 *
 * 1. starts 1 `api`, 2 `engine` and 2 `worker --modules chaos-q` processes
 *    (`node bin/conveyor.js …`) on a fresh MariaDB database and a bull key prefix of their own;
 * 2. submits N requests (default 2,000) of the `chaos` fixture pipeline through the HTTP API
 *    (4 steps: c1 event → c2 queue | c3 event → c4 queue, join all; 1–15 ms each);
 * 3. midway (once 30 % have completed) SIGKILLs one engine and one worker, and restarts them
 *    a second later;
 * 4. proves that every accepted request completes, that each (request, step) has exactly one
 *    committed result, and that nothing is left running past the timeout.
 *
 * `--via engines`: no `api` process; the two engines are `conveyor start` processes (api,
 * engine and worker roles) and the requests are submitted to them in turn, so each is started
 * at submit, in the transaction that stores it (docs/performance.md, "Distributed: start at
 * submit"), and the SIGKILLed one dies with such requests in flight. A submit whose engine
 * died is sent again to the other one; a request stored by the dead engine whose answer was
 * lost is not among the accepted, but must complete too (every stored request is judged).
 *
 * It prints the counts (accepted, completed, duplicates, stuck, elapsed, req/s) and exits 1 on
 * any violation.
 *
 *   npm run chaos:distributed                          # 2,000 requests
 *   npx tsx scripts/chaos-distributed.ts --requests 400 [--timeout 120] [--via engines] [--keep]
 *
 * MariaDB and Redis come from `TEST_MYSQL_URL` / `TEST_REDIS_URL` or `.tmp/services.env`
 * (`bash scripts/services.sh`), as for the tests. Short lock, sweep and lease settings make
 * recovery quick: CONVEYOR_QUEUE_LOCK_MS=2000, CONVEYOR_SWEEP_MS=500,
 * CONVEYOR_LEASE_GRACE_MS=1000, CONVEYOR_QUEUE_LEASE_MS=10000, and a 3 s step timeout.
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import {
  cleanRedisPrefix, countCompleted, createTestDatabase, DIST_MODULES, DIST_PIPELINES, sleep, spawnConveyor, stopProc, uniquePrefix, verdict, waitHealthy,
  type ConveyorProc, type TestDatabase, type Verdict,
} from '../test/fixtures/dist/harness';
import { freePort } from '../test/support/ports';
import { requireMysql, requireRedis } from '../test/support/services';
import { QueueHub, MODULE_QUEUE_PREFIX, RESULTS_QUEUE } from '../src/transports/queue';

export const CHAOS_STEPS = ['c1', 'c2', 'c3', 'c4'];

export interface ChaosOptions {
  /** @default 2000 */
  requests?: number;
  /** Give up waiting for completion after this long (from the first submit). @default 180000 */
  timeoutMs?: number;
  /** Kill once this fraction of the requests has completed. @default 0.3 */
  killAt?: number;
  /** Pause between the kill and the restart. @default 1000 */
  restartAfterMs?: number;
  /** Submits in flight at once. @default 64 */
  concurrency?: number;
  /** Leave the database and Redis keys in place (printed) for a look. @default false */
  keep?: boolean;
  /** Where requests are submitted: an `api` process, or the two engines (`conveyor start`). @default 'api' */
  via?: 'api' | 'engines';
  /** Progress lines. @default nothing */
  log?: (line: string) => void;
}

export interface ChaosSummary {
  requests: number;
  /** Where the requests were submitted. */
  via: 'api' | 'engines';
  /** Submits sent again to the other engine after theirs died (`--via engines`). */
  resent: number;
  accepted: number;
  rejected: number;
  completed: number;
  /** (request, step) pairs committed more than once. */
  duplicates: number;
  /** Accepted requests not completed when the run ended (timed out, or ended badly). */
  stuck: number;
  /** Step runs still open at the end. */
  openRuns: number;
  elapsedMs: number;
  reqPerSec: number;
  kill: { completedAtKill: number; openRunsAtKill: number; openByTransport: Record<string, number>; engine: number; worker: number } | null;
  /** warn/error log messages of the children, by message. */
  warnings: Record<string, number>;
  /** The first `error` field logged with each of those messages. */
  errorSamples: Record<string, string>;
  verdict: Verdict | null;
  violations: string[];
  database: string;
  prefix: string;
}

const KEY = `chaos-${randomBytes(12).toString('hex')}`;

/** Runs the whole scenario and cleans up after itself; never throws for a violation (see `violations`). */
export async function runChaos(o: ChaosOptions = {}): Promise<ChaosSummary> {
  const N = o.requests ?? 2000;
  const timeoutMs = o.timeoutMs ?? 180_000;
  const log = o.log ?? (() => {});
  const [mysql, redisUrl] = await Promise.all([requireMysql(), requireRedis()]);
  const db: TestDatabase = await createTestDatabase(mysql, 'chaos');
  const prefix = uniquePrefix('chaos');
  const procs: ConveyorProc[] = [];
  const warnings: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  const hub = new QueueHub(redisUrl, { prefix });
  const summary: ChaosSummary = {
    requests: N, via: o.via ?? 'api', resent: 0, accepted: 0, rejected: 0, completed: 0, duplicates: 0, stuck: 0, openRuns: 0, elapsedMs: 0, reqPerSec: 0,
    kill: null, warnings, errorSamples, verdict: null, violations: [], database: db.name, prefix,
  };

  const common: Record<string, string> = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    CONVEYOR_QUEUE_PREFIX: prefix,
    CONVEYOR_PIPELINES_DIR: DIST_PIPELINES,
    CONVEYOR_MODULES_DIR: DIST_MODULES,
    CONVEYOR_QUEUE_MODULES: 'chaos-q',
    CONVEYOR_QUEUE_LOCK_MS: '2000',
    CONVEYOR_SWEEP_MS: '500',
    CONVEYOR_LEASE_GRACE_MS: '1000',
    CONVEYOR_QUEUE_LEASE_MS: '10000',
    CONVEYOR_API_KEYS: `${KEY}:admin`,
    LOG_LEVEL: 'warn',
  };
  const onLine = (line: string): void => {
    try {
      const j = JSON.parse(line) as { level?: string; message?: string; error?: unknown };
      if (j.level === 'warn' || j.level === 'error') {
        const m = j.message ?? '?';
        warnings[m] = (warnings[m] ?? 0) + 1;
        if (j.error !== undefined && !(m in errorSamples)) errorSamples[m] = String(typeof j.error === 'string' ? j.error : JSON.stringify(j.error)).slice(0, 300);
      }
    } catch {
      // not a log line
    }
  };
  const via = o.via ?? 'api';
  const start = (role: 'api' | 'engine' | 'start' | 'worker', n: number, extra: Record<string, string> = {}): ConveyorProc => {
    const args = role === 'worker' ? ['worker', '--modules', 'chaos-q'] : [role];
    const p = spawnConveyor(`${role}#${n}`, args, { ...common, ...extra }, { onLine });
    procs.push(p);
    return p;
  };
  /** How many processes take jobs from a queue (bull names their blocking connections). */
  const consumers = async (queue: string): Promise<number> => (await hub.queue(queue).getWorkers()).length;
  const waitConsumers = async (queue: string, n: number, what: string): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while ((await consumers(queue)) < n) {
      const dead = procs.find((p) => !p.alive() && p.child.signalCode !== 'SIGKILL');
      if (dead) throw new Error(`${dead.name} exited:\n${dead.output.slice(-40).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`${what} did not start within 60 s`);
      await sleep(100);
    }
  };

  let c: Connection | undefined;
  try {
    c = await db.sql();
    /** Where submits go; with `--via engines`, each engine's own API (`urls[k]` of `engines[k]`). */
    const urls: string[] = [];
    const startEngine = async (n: number): Promise<ConveyorProc> => {
      if (via === 'api') return start('engine', n);
      const port = await freePort();
      const p = start('start', n, { HOST: '127.0.0.1', PORT: String(port) });
      await waitHealthy(`http://127.0.0.1:${port}`, p, 60_000);
      urls[n === 2 ? 1 : 0] = `http://127.0.0.1:${port}`;
      return p;
    };
    if (via === 'api') {
      const port = await freePort();
      urls.push(`http://127.0.0.1:${port}`);
      const api = start('api', 1, { HOST: '127.0.0.1', PORT: String(port) });
      await waitHealthy(urls[0]!, api, 60_000);
    }
    const engines = [await startEngine(1), await startEngine(2)];
    const workers = [start('worker', 1), start('worker', 2)];
    await waitConsumers(RESULTS_QUEUE, 2, 'the engines');
    await waitConsumers(MODULE_QUEUE_PREFIX + 'chaos-q', 2, 'the workers');
    log(`chaos: ${via === 'api' ? '1 api + 2 engines' : '2 engines (conveyor start) taking the submits'} + 2 workers up (db ${db.name}, prefix ${prefix}); submitting ${N} requests`);

    // ---- submit, and kill midway ----------------------------------------------------------------
    const t0 = Date.now();
    const ids: string[] = [];
    const failures: string[] = [];
    /** Submits sent again after their engine died (`--via engines`). */
    let resent = 0;
    let next = 0;
    const submitter = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        // Through the engines, a submit whose engine died is sent to the other one (a few tries).
        for (let attempt = 0; ; attempt++) {
          const url = urls[(i + attempt) % urls.length]!;
          try {
            const res = await fetch(`${url}/api/pipelines/chaos/requests`, {
              method: 'POST',
              headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
              body: JSON.stringify({ i }),
              signal: AbortSignal.timeout(30_000),
            });
            const text = await res.text();
            const id = res.status === 202 ? (JSON.parse(text) as { id?: string }).id : undefined;
            if (id) ids.push(id);
            else failures.push(`${res.status} ${text.slice(0, 200)}`);
          } catch (err) {
            if (via === 'engines' && attempt < 5) {
              resent++;
              await sleep(50);
              continue;
            }
            failures.push((err as Error).message);
          }
          break;
        }
      }
    };
    const submitting = Promise.all(Array.from({ length: o.concurrency ?? 64 }, submitter));

    const killAt = Math.max(1, Math.floor(N * (o.killAt ?? 0.3)));
    while ((await countCompleted(c)) < killAt) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`only ${await countCompleted(c)} of ${N} completed before the kill point (${killAt})`);
      await sleep(20);
    }
    engines[0]!.child.kill('SIGKILL');
    workers[0]!.child.kill('SIGKILL');
    await Promise.all([engines[0]!.exited, workers[0]!.exited]);
    const completedAtKill = await countCompleted(c);
    const [openRows] = await c.query(
      "SELECT transport, COUNT(*) AS n FROM step_runs WHERE status IN ('pending', 'dispatched', 'waiting') GROUP BY transport",
    );
    // And the attempts open in requests' rows (migration 1763800000370): their transport is in the attempt's JSON.
    const [inRows] = await c.query("SELECT JSON_VALUE(open_run, '$.transport') AS transport, COUNT(*) AS n FROM requests WHERE open_status IS NOT NULL GROUP BY 1");
    const openByTransport: Record<string, number> = {};
    for (const r of [...(openRows as Array<{ transport: string; n: number }>), ...(inRows as Array<{ transport: string; n: number }>)]) {
      openByTransport[r.transport] = (openByTransport[r.transport] ?? 0) + Number(r.n);
    }
    summary.kill = {
      completedAtKill, openRunsAtKill: Object.values(openByTransport).reduce((a, b) => a + b, 0), openByTransport, engine: engines[0]!.pid, worker: workers[0]!.pid,
    };
    log(`chaos: SIGKILLed engine#1 (pid ${engines[0]!.pid}) and worker#1 (pid ${workers[0]!.pid}) at ${completedAtKill}/${N} completed, ${ids.length} accepted so far, open step runs ${JSON.stringify(openByTransport)}`);
    await sleep(o.restartAfterMs ?? 1000);
    engines[0] = await startEngine(3);
    workers[0] = start('worker', 3);
    log('chaos: engine#3 and worker#3 started in their place');

    await submitting;
    summary.accepted = ids.length;
    summary.rejected = failures.length;
    summary.resent = resent;
    if (failures.length > 0) log(`chaos: ${failures.length} submits failed, e.g. ${failures.slice(0, 3).join(' | ')}`);

    // ---- wait until every accepted request has ended, or the timeout ------------------------
    let done = 0;
    while (Date.now() - t0 < timeoutMs) {
      done = await countCompleted(c);
      if (done >= ids.length) break;
      const [bad] = await c.query("SELECT COUNT(*) AS n FROM requests WHERE status IN ('error_stop', 'stopped')");
      if (Number((bad as Array<{ n: number }>)[0]?.n ?? 0) > 0) break;
      await sleep(100);
    }
    summary.elapsedMs = Date.now() - t0;
    await sleep(500); // late duplicates, if any, land before the verdict

    // ---- the verdict ------------------------------------------------------------------------
    const v = await verdict(c, ids, CHAOS_STEPS);
    summary.verdict = v;
    summary.completed = v.requests.completed ?? 0;
    summary.duplicates = v.duplicates;
    summary.openRuns = v.open;
    summary.stuck = ids.length - (await completedAmong(c, ids));
    summary.reqPerSec = Math.round((summary.completed / (summary.elapsedMs / 1000)) * 10) / 10;

    const violations = summary.violations;
    if (summary.accepted !== N) violations.push(`${N - summary.accepted} of ${N} submits were not accepted`);
    if (v.missing > 0) violations.push(`${v.missing} accepted requests have no row`);
    if (summary.stuck > 0) violations.push(`${summary.stuck} accepted requests did not complete within ${timeoutMs} ms: ${JSON.stringify(v.notCompleted.slice(0, 5))}`);
    if (v.duplicates > 0) violations.push(`${v.duplicates} (request, step) pairs were committed more than once`);
    if (v.notOnce.length > 0) violations.push(`(request, step) pairs without exactly one committed result: ${JSON.stringify(v.notOnce.slice(0, 5))}`);
    if (v.wrongSteps.length > 0) violations.push(`requests whose committed steps are not c1..c4: ${JSON.stringify(v.wrongSteps.slice(0, 5))}`);
    if (v.open > 0) violations.push(`${v.open} step runs still open`);
    const live = Object.entries(v.requests).filter(([s]) => s !== 'completed');
    if (live.length > 0) violations.push(`requests not completed: ${JSON.stringify(Object.fromEntries(live))}`);
    if (!(summary.kill.completedAtKill < summary.accepted)) violations.push('the kill came after every request had completed: it proved nothing');
    if (violations.length > 0) {
      for (const p of procs) log(`--- ${p.name} (pid ${p.pid}) last lines:\n${p.output.slice(-15).join('\n')}`);
    }
    return summary;
  } catch (err) {
    summary.violations.push(`the run failed: ${(err as Error).message}`);
    for (const p of procs) log(`--- ${p.name} (pid ${p.pid}) last lines:\n${p.output.slice(-15).join('\n')}`);
    return summary;
  } finally {
    await Promise.allSettled(procs.map((p) => stopProc(p, 'SIGTERM', 5000)));
    await hub.close();
    if (o.keep) {
      log(`chaos: kept database ${db.url} and Redis keys ${prefix}:*`);
    } else {
      await db.drop().catch((e: unknown) => log(`chaos: could not drop ${db.name}: ${(e as Error).message}`));
      await cleanRedisPrefix(redisUrl, prefix).catch((e: unknown) => log(`chaos: could not clean ${prefix}:*: ${(e as Error).message}`));
    }
  }
}

async function completedAmong(c: Connection, ids: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const [rows] = await c.query(`SELECT COUNT(*) AS n FROM requests WHERE status = 'completed' AND id IN (${chunk.map(() => '?').join(',')})`, chunk);
    n += Number((rows as Array<{ n: number }>)[0]?.n ?? 0);
  }
  return n;
}

/** The summary as printed by the script. */
export function formatSummary(s: ChaosSummary): string {
  const lines = [
    `chaos-distributed: ${s.requests} requests, ${s.via === 'api' ? '1 api + 2 engines' : 'submitted to 2 engines (conveyor start, started at submit)'} + 2 workers; SIGKILL of 1 engine + 1 worker midway, then restart`,
    s.kill ? `  killed     engine pid ${s.kill.engine}, worker pid ${s.kill.worker} at ${s.kill.completedAtKill}/${s.requests} completed (open step runs ${JSON.stringify(s.kill.openByTransport)})` : '  killed     (no kill happened)',
    `  accepted   ${s.accepted}${s.rejected ? ` (${s.rejected} refused)` : ''}${s.resent ? ` (${s.resent} sent again after their engine died)` : ''}`,
    `  completed  ${s.completed}`,
    `  duplicates ${s.duplicates}`,
    `  stuck      ${s.stuck}`,
    `  open runs  ${s.openRuns}`,
    `  elapsed    ${(s.elapsedMs / 1000).toFixed(1)} s`,
    `  req/s      ${s.reqPerSec}`,
    `  step runs  ${JSON.stringify(s.verdict?.runs ?? {})}`,
    `  warnings   ${JSON.stringify(s.warnings)}`,
    ...Object.entries(s.errorSamples).map(([m, e]) => `             ${m}: ${e}`),
    s.violations.length === 0 ? '  verdict    OK: every request completed, each (request, step) committed exactly once, nothing left running' : `  verdict    FAILED:\n${s.violations.map((v) => `    - ${v}`).join('\n')}`,
  ];
  return lines.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
}

if (require.main === module) {
  const requests = Number(arg('requests') ?? 2000);
  const timeout = Number(arg('timeout') ?? 180);
  if (!Number.isInteger(requests) || requests < 10) {
    process.stderr.write('usage: chaos-distributed [--requests N (>= 10)] [--timeout seconds] [--keep]\n');
    process.exit(2);
  }
  const via = arg('via') ?? 'api';
  if (via !== 'api' && via !== 'engines') {
    process.stderr.write('chaos-distributed: --via must be api or engines\n');
    process.exit(2);
  }
  runChaos({ requests, timeoutMs: timeout * 1000, via, keep: process.argv.includes('--keep'), log: (l) => process.stdout.write(`${l}\n`) }).then(
    (s) => {
      process.stdout.write(`${formatSummary(s)}\n`);
      process.exit(s.violations.length === 0 ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`chaos-distributed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
