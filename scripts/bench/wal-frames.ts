/**
 * `npx tsx scripts/bench/wal-frames.ts [--indexes 0,1,2,4,6] [--tx 20000]`: what a WAL page
 * costs a commit on this machine, without the engine (issue 18 "Performance"). For each count
 * of secondary indexes, a fresh SQLite file in WAL mode (`synchronous=NORMAL`, checkpoints
 * every 10,000 pages on the committing connection) gets `--tx` transactions of one INSERT
 * each into a table whose every index takes one entry per row; it prints the median time of
 * the `COMMIT` statement (which writes the transaction's WAL frames), the mean time of a whole
 * transaction, checkpoints included, and the WAL pages per commit, counted from the WAL's
 * growth over up to 2,000 more commits alike, with checkpoints off. The difference between two
 * lines is what each page a commit touches costs.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

interface Stmt { run(...a: unknown[]): unknown }
interface Db { pragma(s: string, o?: { simple: boolean }): unknown; exec(s: string): unknown; prepare(s: string): Stmt; close(): void }

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
};

const Database = createRequire(__filename)('better-sqlite3') as new (file: string) => Db;
const COLUMNS = ['a', 'b', 'c', 'd', 'e', 'f'];

function measure(indexes: number, tx: number, file: string): { pages: number; commitUs: number; txUs: number } {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 10000');
    db.exec(`CREATE TABLE t (id TEXT PRIMARY KEY, ${COLUMNS.map((c) => `${c} TEXT`).join(', ')})`);
    for (let i = 0; i < indexes; i++) db.exec(`CREATE INDEX i${i} ON t (${COLUMNS[i % COLUMNS.length]}, id)`);
    const insert = db.prepare(`INSERT INTO t VALUES (?, ${COLUMNS.map(() => '?').join(', ')})`);
    const begin = db.prepare('BEGIN IMMEDIATE');
    const commit = db.prepare('COMMIT');
    let n = 0;
    const one = (): number => {
      begin.run();
      const id = `r${String(n++).padStart(10, '0')}`;
      insert.run(id, `p${n % 3}`, `s${n % 7}`, id, String(Date.now()), 'x'.repeat(200), id);
      const t0 = process.hrtime.bigint();
      commit.run();
      return Number(process.hrtime.bigint() - t0) / 1000;
    };
    const commits: number[] = [];
    const started = process.hrtime.bigint();
    for (let i = 0; i < tx; i++) commits.push(one());
    const txUs = Number(process.hrtime.bigint() - started) / 1000 / tx;
    // The frames of the next commits, alike (ids appended at the right edge), counted with
    // checkpoints off from an empty WAL: its growth is their frames.
    const counted = Math.min(tx, 2000);
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (let i = 0; i < counted; i++) one();
    const frameBytes = Number(db.pragma('page_size', { simple: true })) + 24;
    const pages = (fs.statSync(`${file}-wal`).size - 32) / frameBytes / counted;
    commits.sort((x, y) => x - y);
    return { pages, commitUs: commits[Math.floor(commits.length / 2)]!, txUs };
  } finally {
    db.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  }
}

function main(): void {
  const counts = arg('--indexes', '0,1,2,4,6').split(',').map(Number);
  const tx = Number(arg('--tx', '20000'));
  const dir = path.resolve(__dirname, '..', '..', '.tmp', 'wal-frames');
  fs.mkdirSync(dir, { recursive: true });
  console.log(`${tx} one-row transactions per line, SQLite WAL, synchronous=NORMAL`);
  console.log(`  ${'indexes'.padStart(7)} ${'WAL pages/commit'.padStart(16)} ${'COMMIT p50 µs'.padStart(13)} ${'transaction µs'.padStart(14)}`);
  for (const n of counts) {
    const r = measure(n, tx, path.join(dir, `wf-${process.pid}.db`));
    console.log(`  ${String(n).padStart(7)} ${r.pages.toFixed(2).padStart(16)} ${r.commitUs.toFixed(1).padStart(13)} ${r.txUs.toFixed(1).padStart(14)}`);
  }
}

main();
