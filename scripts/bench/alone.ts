/**
 * `npx tsx scripts/bench/alone.ts [--warm N] [--requests K] [--drop-index a,b]`: where the
 * time of one embedded request alone goes (issue 18 "Performance", the 1-in-flight target).
 * Runs the engine on a fresh SQLite file with `bench-linear` (5 in-process steps), warms it up
 * with N requests at once and N one at a time, then runs K requests one at a time and marks,
 * for each, the moments a group commit starts and ends its transaction (`store.write`, which
 * is synchronous on SQLite), a step is sent (`Dispatcher.dispatch`) and a module answers
 * (`StepCompleted`). It prints the median request and, per phase, the median and the total
 * per request. Load `scripts/bench/sql-time.cjs` too to split the transactions by statement
 * (`COMMIT` is where SQLite writes its WAL frames).
 *
 * `--drop-index a,b`: an experiment, not a setting: drops those indexes after the migrations,
 * to see what a commit costs without them (the searches they serve are then slow).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';
import type { WriteBatch } from '../../src/store/write';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
};

interface Db { exec(sql: string): unknown }

const median = (a: number[]): number => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0;

async function main(): Promise<void> {
  const warm = Number(arg('--warm', '500'));
  const k = Number(arg('--requests', '300'));
  const drop = arg('--drop-index', '').split(',').filter(Boolean);
  const dir = path.resolve(__dirname, '..', '..', '.tmp', 'alone');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `alone-${process.pid}.db`);
  const fixtures = path.join(__dirname, 'fixtures');
  const engine = await Engine.create({
    databaseUrl: `sqlite:${file}`, pipelinesDir: path.join(fixtures, 'pipelines'), modulesDir: path.join(fixtures, 'modules'),
    sqliteSynchronous: 'NORMAL', logger: createLogger('warn'),
  });
  const marks: Array<[string, number]> = [];
  let marking = false;
  const mark = (name: string): void => {
    if (marking) marks.push([name, performance.now()]);
  };
  const store = engine.store as unknown as { write(b: WriteBatch): Promise<boolean[]> };
  const write = store.write.bind(store);
  store.write = (b) => {
    mark('commit start');
    const p = write(b);
    mark('commit end');
    return p;
  };
  const dispatch = Dispatcher.prototype.dispatch;
  Dispatcher.prototype.dispatch = function (job) {
    mark('dispatched');
    dispatch.call(this, job);
  };
  try {
    const db = (engine.store as unknown as { ds: { driver: { databaseConnection: Db } } }).ds.driver.databaseConnection;
    for (const name of drop) db.exec(`DROP INDEX "${name.replace(/"/g, '')}"`);
    engine.bus.on('StepCompleted', () => mark('answered'));
    await engine.start({ engine: true, worker: true });
    const waiters = new Map<string, () => void>();
    const ended = new Set<string>();
    engine.bus.on('RequestFinished', ({ requestId }) => {
      mark('finished');
      const w = waiters.get(requestId);
      if (w) w();
      else ended.add(requestId);
    });
    const payload = { kind: 'bench', customer: { id: 42, email: 'someone@example.com' }, items: [1, 2, 3] };
    const one = async (): Promise<void> => {
      mark('submit');
      const { id } = await engine.intake.submit({ pipelineId: 'bench-linear', payload });
      if (!ended.delete(id)) await new Promise<void>((resolve) => waiters.set(id, resolve));
      waiters.delete(id);
    };
    await Promise.all(Array.from({ length: warm }, one));
    for (let i = 0; i < warm; i++) await one();
    const totals: number[] = [];
    const phases = new Map<string, number[]>();
    for (let r = 0; r < k; r++) {
      marks.length = 0;
      marking = true;
      const t0 = performance.now();
      await one();
      totals.push(performance.now() - t0);
      marking = false;
      for (let i = 1; i < marks.length; i++) {
        const key = `${marks[i - 1]![0]} → ${marks[i]![0]}`;
        const list = phases.get(key) ?? [];
        list.push(marks[i]![1] - marks[i - 1]![1]);
        phases.set(key, list);
      }
    }
    console.log(`${k} requests one at a time after ${warm} at once and ${warm} alone${drop.length ? `, without ${drop.join(', ')}` : ''}`);
    console.log(`  request, submit → finished: p50 ${median(totals).toFixed(3)} ms`);
    console.log(`  ${'phase'.padEnd(30)} ${'per request'.padStart(11)} ${'p50 µs'.padStart(8)} ${'µs per request'.padStart(15)}`);
    for (const [key, list] of phases) {
      const sum = list.reduce((a, b) => a + b, 0);
      console.log(`  ${key.padEnd(30)} ${(list.length / k).toFixed(1).padStart(11)} ${(median(list) * 1000).toFixed(0).padStart(8)} ${((sum / k) * 1000).toFixed(0).padStart(15)}`);
    }
  } finally {
    await engine.stop();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
