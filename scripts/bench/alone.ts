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
import { performance } from 'node:perf_hooks';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import type { WriteBatch } from '../../src/store/write';
import { runTool, sqliteBench } from './sqlite-engine';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
};

const median = (a: number[]): number => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0;

async function main(): Promise<void> {
  const warm = Number(arg('--warm', '500'));
  const k = Number(arg('--requests', '300'));
  const drop = arg('--drop-index', '').split(',').filter(Boolean);
  const marks: Array<[string, number]> = [];
  let marking = false;
  const mark = (name: string): void => {
    if (marking) marks.push([name, performance.now()]);
  };
  const bench = await sqliteBench('alone', () => mark('finished'));
  const { engine, db } = bench;
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
  const one = (): Promise<void> => {
    mark('submit');
    return bench.runOne();
  };
  try {
    for (const name of drop) db.exec(`DROP INDEX "${name.replace(/"/g, '')}"`);
    engine.bus.on('StepCompleted', () => mark('answered'));
    await engine.start({ engine: true, worker: true });
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
    await bench.close();
  }
}

runTool(main);
