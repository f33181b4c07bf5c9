/**
 * The crash campaign (DESIGN "Guarantees", issue 7): requests of the `chaos-mix` pipeline
 * (event, HTTP with 202 callbacks, queue; fan-out and join; a wait woken by
 * `POST /api/events`) submitted through the HTTP API while random processes are SIGKILLed
 * and restarted, then an exactly-once verdict over the database.
 *
 * Two deployments:
 * - `sqlite`: one `conveyor start` process on a SQLite file. Every kill takes the API down
 *   too, so submits are retried with their Idempotency-Key until answered.
 * - `distributed`: 1 `api`, 2 `engine` and 2 `worker --modules mix-q` processes on a fresh
 *   MariaDB database and a Redis key prefix of their own.
 *
 * The campaign process itself plays the outside world: the submitter, the remote module
 * (`standin.ts`), and the system that posts the events the wait step waits for (it looks up
 * the waiting keys in the database and posts them, again after a kill if need be).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  cleanRedisPrefix, createTestDatabase, ROOT, sleep, spawnConveyor, stopProc, uniquePrefix, waitHealthy, type ConveyorProc, type TestDatabase,
} from '../../test/fixtures/dist/harness';
import { freePort } from '../../test/support/ports';
import { requireMysql, requireRedis } from '../../test/support/services';
import { MODULE_QUEUE_PREFIX, QueueHub, RESULTS_QUEUE } from '../../src/transports/queue';
import { campaignVerdict, countByStatus, countOpenRuns, mysqlDb, sqliteDb, waitingKeys, type CampaignDb, type CampaignVerdict } from './db';
import { startStandin, type StandinStats } from './standin';
import { Submitter, type SubmitStats } from './submitter';

export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'chaos');
export const PIPELINE = 'chaos-mix';
export const STEPS = ['m1', 'm2', 'm3', 'j', 'w', 'f'];
const EVENT = 'chaos-go';

export type CampaignMode = 'sqlite' | 'distributed';
type Role = 'start' | 'api' | 'engine' | 'worker';

export interface CampaignOptions {
  mode: CampaignMode;
  /** @default 10000 */
  requests?: number;
  /** SIGKILLs during the run. @default 20 */
  kills?: number;
  /** Target submits per second; the kills should land while requests are still coming. @default 60 */
  rate?: number;
  /** Submits in flight at once. @default 32 */
  concurrency?: number;
  /** A kill comes this long after the previous victim is back up: uniform in [min, max] ms. @default 1000..5000 */
  upMinMs?: number;
  upMaxMs?: number;
  /** A killed process is restarted after 0..this many ms. @default 500 */
  restartMaxMs?: number;
  /** After the last submit and the last kill, how long requests may take to finish. @default 180000 */
  drainTimeoutMs?: number;
  /** Keep the database / SQLite file and Redis keys for a look. @default false */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface KillRecord {
  n: number;
  victim: string;
  pid: number;
  /** Seconds since the first submit. */
  at: number;
  /** Accepted and not yet completed at the kill. */
  inFlight: number;
  openRuns: number;
  /** How long the replacement took to be ready, in ms. */
  downMs: number;
}

export interface CampaignSummary {
  mode: CampaignMode;
  requests: number;
  accepted: number;
  completed: number;
  duplicates: number;
  duplicateRequests: number;
  stuck: number;
  lost: number;
  openRuns: number;
  kills: KillRecord[];
  elapsedMs: number;
  reqPerSec: number;
  submit: SubmitStats | null;
  http: StandinStats | null;
  events: { posted: number; woken: number; failed: number };
  /** Step runs that failed (an attempt; a retry followed), with the remote module's view of them. */
  failedRuns: Array<{ request: string; step: string; attempt: number; code: string; message: string; module?: string[] }>;
  /** In-process and queue module invocations, and how many distinct runs they were for. */
  invocations: { calls: number; runs: number };
  verdict: CampaignVerdict | null;
  warnings: Record<string, number>;
  errorSamples: Record<string, string>;
  violations: string[];
  where: string;
}

interface Slot {
  name: string;
  role: Role;
  args: string[];
  env: Record<string, string>;
  proc: ConveyorProc;
  generation: number;
}

const rand = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** Runs one campaign and cleans up after itself; a violation is reported, not thrown. */
export async function runCampaign(o: CampaignOptions): Promise<CampaignSummary> {
  const N = o.requests ?? 10_000;
  const KILLS = o.kills ?? 20;
  const log = o.log ?? (() => {});
  const key = `chaos-${randomBytes(12).toString('hex')}`;
  const runTag = randomBytes(4).toString('hex');
  const tags = Array.from({ length: N }, (_, i) => `c${runTag}-${i}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-chaos-'));
  const invocationLog = path.join(dir, 'invocations.log');
  const warnings: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  const summary: CampaignSummary = {
    mode: o.mode, requests: N, accepted: 0, completed: 0, duplicates: 0, duplicateRequests: 0, stuck: 0, lost: 0, openRuns: 0, kills: [],
    elapsedMs: 0, reqPerSec: 0, submit: null, http: null, events: { posted: 0, woken: 0, failed: 0 }, failedRuns: [], invocations: { calls: 0, runs: 0 },
    verdict: null, warnings, errorSamples, violations: [], where: '',
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

  const standin = await startStandin();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const common: Record<string, string> = {
    HOST: '127.0.0.1',
    CONVEYOR_PUBLIC_URL: url,
    CONVEYOR_API_KEYS: `${key}:admin`,
    CONVEYOR_PIPELINES_DIR: path.join(FIXTURES, 'pipelines'),
    CONVEYOR_MODULES_DIR: path.join(FIXTURES, 'modules'),
    CHAOS_HTTP_URL: standin.url,
    CHAOS_LOG: invocationLog,
    CONVEYOR_SWEEP_MS: '500',
    CONVEYOR_LEASE_GRACE_MS: '1000',
    LOG_LEVEL: 'warn',
  };

  let db: CampaignDb;
  let testDb: TestDatabase | undefined;
  let hub: QueueHub | undefined;
  let redisUrl = '';
  let prefix = '';
  const slots: Slot[] = [];
  const spawnSlot = (s: Omit<Slot, 'proc' | 'generation'>, generation = 1): Slot => {
    const proc = spawnConveyor(`${s.name}#${generation}`, s.args, s.env, { onLine });
    return { ...s, proc, generation };
  };

  if (o.mode === 'sqlite') {
    const file = path.join(dir, 'chaos.db');
    summary.where = `sqlite:${file}`;
    db = sqliteDb(file);
    const env = { ...common, DATABASE_URL: `sqlite:${file}`, REDIS_URL: '', CONVEYOR_QUEUE_MODULES: '', PORT: String(port) };
    slots.push(spawnSlot({ name: 'start', role: 'start', args: ['start'], env }));
  } else {
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    testDb = await createTestDatabase(mysql, 'chaos');
    prefix = uniquePrefix('chaos');
    summary.where = `${testDb.url} + ${redis} prefix ${prefix}`;
    db = mysqlDb(await testDb.sql());
    hub = new QueueHub(redisUrl, { prefix });
    const env = {
      ...common, DATABASE_URL: testDb.url, REDIS_URL: redisUrl, CONVEYOR_QUEUE_PREFIX: prefix, CONVEYOR_QUEUE_MODULES: 'mix-q',
      CONVEYOR_QUEUE_LOCK_MS: '2000', CONVEYOR_QUEUE_LEASE_MS: '10000',
    };
    slots.push(spawnSlot({ name: 'api', role: 'api', args: ['api'], env: { ...env, PORT: String(port) } }));
    for (const n of [1, 2]) slots.push(spawnSlot({ name: `engine${n}`, role: 'engine', args: ['engine'], env }));
    for (const n of [1, 2]) slots.push(spawnSlot({ name: `worker${n}`, role: 'worker', args: ['worker', '--modules', 'mix-q'], env }));
  }

  const consumers = async (queue: string): Promise<number> => (await hub!.queue(queue).getWorkers()).length;
  /** Waits until the slot's process does its job: the API answers, or its bull consumers are connected. */
  const ready = async (slot: Slot, timeoutMs = 90_000): Promise<void> => {
    if (slot.role === 'start' || slot.role === 'api') return waitHealthy(url, slot.proc, timeoutMs);
    const queue = slot.role === 'engine' ? RESULTS_QUEUE : MODULE_QUEUE_PREFIX + 'mix-q';
    const deadline = Date.now() + timeoutMs;
    while ((await consumers(queue)) < 2) {
      if (!slot.proc.alive()) throw new Error(`${slot.proc.name} exited:\n${slot.proc.output.slice(-30).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`${slot.proc.name} was not ready within ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  const completedCount = async (): Promise<number> => (await countByStatus(db, 'requests')).completed ?? 0;
  let stopEvents = false;
  let t0 = 0;

  try {
    for (const s of slots) await ready(s);
    log(`chaos ${o.mode}: ${slots.map((s) => s.name).join(', ')} up (${summary.where}); submitting ${N} requests at ~${o.rate ?? 60}/s, ${KILLS} SIGKILLs`);

    // ---- the outside world: events for every waiting request ----------------------------------
    const postEvents = async (): Promise<void> => {
      while (!stopEvents) {
        let keys: string[] = [];
        try {
          keys = await waitingKeys(db, EVENT, 400);
        } catch {
          // the file is being recovered: look again
        }
        for (let i = 0; i < keys.length && !stopEvents; i += 16) {
          await Promise.all(keys.slice(i, i + 16).map(async (k) => {
            try {
              const res = await fetch(`${url}/api/events/${EVENT}`, {
                method: 'POST',
                headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
                body: JSON.stringify({ key: k, data: { from: 'chaos' } }),
                signal: AbortSignal.timeout(10_000),
              });
              const body = (await res.json()) as { woken?: number };
              summary.events.posted++;
              summary.events.woken += res.ok ? (body.woken ?? 0) : 0;
            } catch {
              summary.events.failed++;
            }
          }));
        }
        await sleep(keys.length >= 400 ? 20 : 250);
      }
    };
    const eventsDone = postEvents();

    // ---- submit, and kill at random moments ---------------------------------------------------
    t0 = Date.now();
    const submitter = new Submitter({ url, key, pipeline: PIPELINE, tags, concurrency: o.concurrency ?? 32, rate: o.rate ?? 60, deadline: t0 + 30 * 60_000 });
    let submitted = false;
    const submitting = submitter.run().then(() => void (submitted = true));
    const progress = setInterval(() => {
      void completedCount().then((c) => log(`chaos ${o.mode}: ${((Date.now() - t0) / 1000).toFixed(0)} s: ${submitter.ids.size} accepted, ${c} completed, ${summary.kills.length} kills`), () => undefined);
    }, 10_000);

    while (submitter.ids.size < Math.min(50, N) && !submitted) await sleep(50);
    for (let k = 1; k <= KILLS; k++) {
      await sleep(rand(o.upMinMs ?? 1000, o.upMaxMs ?? 5000));
      const slot = slots[rand(0, slots.length - 1)]!;
      const [done, open] = await Promise.all([completedCount(), countOpenRuns(db)]);
      const victim = slot.proc;
      victim.child.kill('SIGKILL');
      const death = await victim.exited;
      if (death.signal !== 'SIGKILL') summary.violations.push(`${victim.name} ended by ${death.signal ?? `exit ${death.code}`}, not by the SIGKILL`);
      const at = (Date.now() - t0) / 1000;
      await sleep(rand(0, o.restartMaxMs ?? 500));
      const down = Date.now();
      const next = spawnSlot(slot, slot.generation + 1);
      slots[slots.indexOf(slot)] = next;
      await ready(next);
      const record: KillRecord = { n: k, victim: slot.name, pid: victim.pid, at, inFlight: submitter.ids.size - done, openRuns: open, downMs: Date.now() - down };
      summary.kills.push(record);
      log(`chaos ${o.mode}: kill ${k}/${KILLS}: ${slot.name} (pid ${victim.pid}) at ${at.toFixed(1)} s, ${record.inFlight} requests in flight, ${open} open step runs; back in ${record.downMs} ms`);
    }
    await submitting;
    summary.submit = submitter.stats();
    summary.accepted = submitter.ids.size;
    log(`chaos ${o.mode}: all submits answered at ${((Date.now() - t0) / 1000).toFixed(1)} s (${summary.submit.retries} retried, ${summary.submit.replays} replayed)`);

    // ---- drain: every accepted request must end ------------------------------------------------
    const drainDeadline = Date.now() + (o.drainTimeoutMs ?? 180_000);
    for (;;) {
      const counts = await countByStatus(db, 'requests');
      if ((counts.completed ?? 0) >= summary.accepted && (await countOpenRuns(db)) === 0) break;
      if ((counts.error_stop ?? 0) + (counts.stopped ?? 0) > 0) break;
      if (Date.now() > drainDeadline) break;
      await sleep(200);
    }
    summary.elapsedMs = Date.now() - t0;
    clearInterval(progress);

    // ---- stop everything, then judge the database ----------------------------------------------
    stopEvents = true;
    await eventsDone;
    await Promise.allSettled(slots.map((s) => stopProc(s.proc, 'SIGTERM', 15_000)));
    summary.http = standin.stats();
    const v = await campaignVerdict(db, submitter.ids, STEPS, new Set(tags));
    summary.verdict = v;
    summary.completed = v.completed;
    summary.duplicates = v.duplicates;
    summary.duplicateRequests = v.duplicateRequests;
    summary.openRuns = v.open;
    summary.stuck = summary.accepted - v.completed - v.missing;
    summary.lost = v.missing + v.buffered;
    summary.reqPerSec = Math.round((v.completed / (summary.elapsedMs / 1000)) * 10) / 10;
    summary.invocations = countInvocations(invocationLog);
    const failed = await db.all<{ id: string; request_id: string; step_id: string; attempt: unknown; caused_by: string | null; error: string }>(
      "SELECT id, request_id, step_id, attempt, caused_by, error FROM step_runs WHERE status = 'failed' LIMIT 50",
    );
    summary.failedRuns = failed.map((r) => {
      const e = JSON.parse(String(r.error)) as { code?: string; message?: string };
      const key = Number(r.attempt) > 1 && r.caused_by ? String(r.caused_by) : String(r.id);
      return { request: String(r.request_id), step: String(r.step_id), attempt: Number(r.attempt), code: e.code ?? '?', message: (e.message ?? '').slice(0, 200), module: r.step_id === 'm2' ? standin.history(key) : undefined };
    });
    judge(summary, N, KILLS);
    if (summary.violations.length > 0) {
      for (const s of slots) log(`--- ${s.proc.name} (pid ${s.proc.pid}) last lines:\n${s.proc.output.slice(-15).join('\n')}`);
    }
    return summary;
  } catch (err) {
    summary.violations.push(`the run failed: ${(err as Error).message}`);
    for (const s of slots) log(`--- ${s.proc.name} (pid ${s.proc.pid}) last lines:\n${s.proc.output.slice(-15).join('\n')}`);
    return summary;
  } finally {
    stopEvents = true;
    await Promise.allSettled(slots.map((s) => stopProc(s.proc, 'SIGKILL', 1000)));
    await standin.close();
    await hub?.close();
    if (o.keep) {
      log(`chaos ${o.mode}: kept ${summary.where} and ${dir}`);
    } else {
      await testDb?.drop().catch((e: unknown) => log(`chaos: could not drop ${testDb?.name}: ${(e as Error).message}`));
      if (prefix) await cleanRedisPrefix(redisUrl, prefix).catch((e: unknown) => log(`chaos: could not clean ${prefix}:*: ${(e as Error).message}`));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

function countInvocations(file: string): { calls: number; runs: number } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { calls: 0, runs: 0 };
  }
  const lines = text.split('\n').filter(Boolean);
  return { calls: lines.length, runs: new Set(lines.map((l) => l.split(' ')[1])).size };
}

/** Turns the counts into violations of the guarantees. */
function judge(s: CampaignSummary, N: number, kills: number): void {
  const v = s.verdict!;
  const out = s.violations;
  const sub = s.submit!;
  if (s.accepted !== N) out.push(`${N - s.accepted} of ${N} submits never got a 2xx (${sub.refused} refused: ${sub.refusedSamples.join(' | ')})`);
  if (sub.conflictingIds > 0) out.push(`${sub.conflictingIds} tags were answered with two different ids`);
  if (v.missing > 0) out.push(`${v.missing} accepted ids have no row: a 2xx was not durable`);
  if (v.buffered > 0) out.push(`${v.buffered} requests were left buffered (never started)`);
  if (s.stuck > 0) out.push(`${s.stuck} accepted requests did not complete: ${JSON.stringify(v.notCompleted.slice(0, 5))}`);
  if (v.duplicates > 0) out.push(`${v.duplicates} (request, step) pairs were committed more than once`);
  if (v.notOnce.length > 0) out.push(`(request, step) pairs without exactly one committed result: ${JSON.stringify(v.notOnce.slice(0, 5))}`);
  if (v.wrongSteps.length > 0) out.push(`completed requests without exactly the steps ${STEPS.join(',')}: ${JSON.stringify(v.wrongSteps.slice(0, 5))}`);
  if (v.wrongOutputs.length > 0) out.push(`committed outputs that are not their step's: ${JSON.stringify(v.wrongOutputs.slice(0, 3))}`);
  if (v.open > 0) out.push(`${v.open} step runs still open`);
  if (v.duplicateRequests > 0) out.push(`${v.duplicateRequests} tags were stored as more than one request (a retried submit duplicated)`);
  if (v.unknownToClient > 0) out.push(`${v.unknownToClient} stored requests were never answered to the client`);
  if (v.foreign > 0) out.push(`${v.foreign} requests in the database are not the campaign's`);
  if (s.kills.length !== kills) out.push(`${s.kills.length} of ${kills} kills happened`);
  const idle = s.kills.filter((k) => k.inFlight === 0 && k.openRuns === 0).length;
  if (idle > kills / 2) out.push(`${idle} of ${s.kills.length} kills found nothing in flight: they proved little`);
}

/** The summary as printed. */
export function formatSummary(s: CampaignSummary): string {
  const roles: Record<string, number> = {};
  for (const k of s.kills) {
    const role = k.victim.replace(/\d+$/, '');
    roles[role] = (roles[role] ?? 0) + 1;
  }
  const inFlight = s.kills.map((k) => k.inFlight).sort((a, b) => a - b);
  const downs = s.kills.map((k) => k.downMs).sort((a, b) => a - b);
  const med = (xs: number[]): number => xs[Math.floor(xs.length / 2)] ?? 0;
  const procs = s.mode === 'sqlite' ? '1 `start` process on SQLite (no Redis)' : '1 api + 2 engines + 2 workers on MariaDB + Redis';
  const v = s.verdict;
  const sub = s.submit;
  const h = s.http;
  return [
    `chaos ${s.mode}: ${s.requests} requests of ${PIPELINE} (event, http 200/202+callback, queue; fan-out + join all; wait woken by POST /api/events), ${procs}`,
    `  accepted    ${s.accepted}`,
    `  completed   ${s.completed}`,
    `  duplicates  ${s.duplicates} (request, step) committed twice; ${s.duplicateRequests} requests stored twice`,
    `  stuck       ${s.stuck}`,
    `  lost        ${s.lost} (${v?.missing ?? '?'} accepted ids without a row, ${v?.buffered ?? '?'} left buffered)`,
    `  open runs   ${s.openRuns}`,
    `  kills       ${s.kills.length} SIGKILL ${JSON.stringify(roles)}; requests in flight at a kill: min ${inFlight[0] ?? 0}, median ${med(inFlight)}, max ${inFlight[inFlight.length - 1] ?? 0}; back up in median ${med(downs)} ms`,
    `  elapsed     ${(s.elapsedMs / 1000).toFixed(1)} s`,
    `  req/s       ${s.reqPerSec}`,
    sub ? `  submits     ${sub.calls} calls for ${s.requests} requests: ${sub.retries} retried after a lost answer ${JSON.stringify(sub.lost)}, ${sub.replays} idempotent replays` : '  submits     (none)',
    h ? `  http module ${h.calls} calls for ${h.runs} runs: ${h.sync} answered 200, ${h.accepted} answered 202; callbacks ${h.callbacksOk} ok, ${h.callbacksSettled} already settled (409/410), ${h.callbackRetries} retried, ${h.callbacksPending} pending${Object.keys(h.callbacksRefused).length ? `, refused ${JSON.stringify(h.callbacksRefused)}` : ''}` : '',
    `  events      ${s.events.posted} posted, ${s.events.woken} woke a request, ${s.events.failed} lost (API down)`,
    `  deliveries  ${s.invocations.calls} in-process/queue module calls for ${s.invocations.runs} runs (at least once: ${s.invocations.calls - s.invocations.runs} redelivered)`,
    `  step runs   ${JSON.stringify(v?.runs ?? {})}`,
    `  warnings    ${JSON.stringify(s.warnings)}`,
    ...s.failedRuns.slice(0, 10).map((f) => `  failed run  ${f.request} ${f.step}#${f.attempt} ${f.code}${f.module ? `; remote module saw: ${f.module.join(', ')}` : ''}`),
    ...Object.entries(s.errorSamples).map(([m, e]) => `              ${m}: ${e}`),
    s.violations.length === 0
      ? '  verdict     OK: every accepted request completed, each (request, step) committed exactly once, nothing stuck, nothing lost'
      : `  verdict     FAILED:\n${s.violations.map((x) => `    - ${x}`).join('\n')}`,
  ].filter(Boolean).join('\n');
}
