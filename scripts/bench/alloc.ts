/**
 * `npx tsx scripts/bench/alloc.ts [--requests N] [--warm W] [--window K] [--heap] [--top T]`:
 * the JavaScript and garbage of the embedded hot path, counted rather than timed (issue 18
 * "Performance"). Runs the engine in this process on a fresh SQLite file with `bench-linear`
 * (5 in-process steps), W requests to warm up, then N with at most K in flight, and prints
 * the scavenges and full collections per 1,000 requests and the CPU time per request (that
 * one only indicative on a shared machine). `--heap`: also a sampled heap profile of the N
 * requests, with objects collected by either GC kept in it, so its total is the bytes
 * allocated (per request), and its T largest allocation sites. The sampling makes the run
 * about twice as slow; the counts stay the same.
 */
import * as fs from 'node:fs';
import { Session } from 'node:inspector';
import * as path from 'node:path';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : Number(process.argv[i + 1]);
};
const N = arg('--requests', 20_000);
const WARM = arg('--warm', 3_000);
const WINDOW = arg('--window', 2_000);
const TOP = arg('--top', 25);
const HEAP = process.argv.includes('--heap');
const FIXTURES = path.join(__dirname, 'fixtures');

interface ProfileNode { callFrame: { functionName: string; url: string }; selfSize: number; children: ProfileNode[] }

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Bytes per allocation site (function and file: tsx's line numbers are not the source's) and in all, from a sampled heap profile. */
function sites(head: ProfileNode): { total: number; top: Array<[string, number]> } {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode): void => {
    if (n.selfSize > 0) {
      const f = n.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${path.relative(process.cwd(), f.url.replace(/^file:\/\//, '')) || '(native)'}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  return { total, top: [...bySite].sort((a, b) => b[1] - a[1]).slice(0, TOP) };
}

async function main(): Promise<void> {
  const dir = path.join(process.cwd(), '.tmp', 'bench');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `alloc-${process.pid}.db`);
  const engine = await Engine.create({
    databaseUrl: `sqlite:${file}`, queueModules: [],
    pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'),
    sqliteSynchronous: 'NORMAL', logger: createLogger('warn'),
  });
  try {
    await engine.start({ engine: true, worker: true });
    const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };
    let ended = 0;
    let onEnd: (() => void) | undefined;
    engine.bus.on('RequestFinished', ({ requestId, status }) => {
      if (status !== 'completed') throw new Error(`request ${requestId} ended ${status}`);
      ended++;
      onEnd?.();
    });
    /** Submits n requests, at most WINDOW in flight; resolves when all n have ended. */
    const run = (n: number): Promise<void> => new Promise((resolve) => {
      const base = ended;
      let sent = 0;
      onEnd = () => {
        while (sent < n && sent - (ended - base) < WINDOW) {
          sent++;
          void engine.intake.submit({ pipelineId: 'bench-linear', payload });
        }
        if (ended - base >= n) {
          onEnd = undefined;
          resolve();
        }
      };
      onEnd();
    });
    await run(WARM);

    const gcs = { minor: 0, major: 0 };
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++;
        else gcs.major++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    const session = HEAP ? new Session() : undefined;
    if (session) {
      session.connect();
      await post(session, 'HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run(N);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    observer.disconnect();
    console.log(`${N} requests × 5 steps after ${WARM} to warm up, at most ${WINDOW} in flight`);
    console.log(`  scavenges per 1,000 requests: ${((gcs.minor / N) * 1000).toFixed(2)}, full GCs: ${((gcs.major / N) * 1000).toFixed(2)}`);
    console.log(`  CPU per request: ${Math.round((cpu.user + cpu.system) / N)} µs, ${Math.round(N / seconds)} req/s (indicative)`);
    if (session) {
      const { profile } = await post<{ profile: { head: ProfileNode } }>(session, 'HeapProfiler.stopSampling');
      const { total, top } = sites(profile.head);
      console.log(`  allocated per request (sampled heap profile): ${Math.round(total / N).toLocaleString('en-US')} bytes; largest sites:`);
      for (const [site, bytes] of top) console.log(`    ${Math.round(bytes / N).toString().padStart(6)}  ${site}`);
      session.disconnect();
    }
  } finally {
    await engine.stop();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
});
