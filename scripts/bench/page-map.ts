/**
 * `npx tsx scripts/bench/page-map.ts [--warm N] [--requests K] [--sql] [--all]`: where the WAL pages of one
 * request go (issue "Performance"). Runs the embedded engine on a fresh SQLite file with the
 * `bench-linear` pipeline, warms it up with N requests, then for each of K requests run one
 * at a time: checkpoints the WAL (TRUNCATE), runs the request, and reads the WAL's frame
 * headers. Each transaction is listed with its statements and, for every page it wrote, the
 * B-tree the page belongs to (`dbstat`), `page1` (the header, rewritten when the file grows
 * or the freelist changes) or `free` (on the freelist now). `--sql`: each commit's writes;
 * `--all`: every statement the request ran, reads included.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { runTool, sqliteBench, type RawDb } from './sqlite-engine';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : Number(process.argv[i + 1]);
};


/** Logs every statement better-sqlite3 runs in this process (BEGIN and COMMIT included). */
function statementLog(): string[] {
  const log: string[] = [];
  const req = createRequire(__filename);
  const Database = req('better-sqlite3') as new (file: string) => RawDb & { close(): void };
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  probe.close();
  for (const name of ['run', 'all', 'get', 'iterate']) {
    const f = proto[name]!;
    proto[name] = function (this: { source: string }, ...a: unknown[]) {
      log.push(this.source);
      return f.apply(this, a);
    };
  }
  return log;
}

/** The WAL's commits: for each, the page numbers of its frames, in order. */
function walCommits(file: string): number[][] {
  const buf = fs.readFileSync(file);
  if (buf.length < 32) return [];
  const pageSize = buf.readUInt32BE(8);
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const commits: number[][] = [];
  let cur: number[] = [];
  for (let off = 32; off + 24 + pageSize <= buf.length; off += 24 + pageSize) {
    if (buf.readUInt32BE(off + 8) !== salt1 || buf.readUInt32BE(off + 12) !== salt2) break;
    cur.push(buf.readUInt32BE(off));
    if (buf.readUInt32BE(off + 4) !== 0) {
      commits.push(cur);
      cur = [];
    }
  }
  return commits;
}

async function main(): Promise<void> {
  const warm = arg('--warm', 500);
  const k = arg('--requests', 3);
  const log = statementLog();
  const bench = await sqliteBench('page-map');
  const { engine, db, file } = bench;
  const one = bench.runOne;
  try {
    await engine.start({ engine: true, worker: true });
    await Promise.all(Array.from({ length: warm }, one));
    const totals = new Map<string, number>();
    for (let r = 0; r < k; r++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      db.pragma('wal_checkpoint(TRUNCATE)');
      log.length = 0;
      await one();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const stmts = log.slice();
      const owner = new Map<number, string>();
      for (const row of db.prepare('SELECT name, pageno, pagetype FROM dbstat').all() as Array<{ name: string; pageno: number; pagetype: string }>) {
        owner.set(row.pageno, row.pagetype === 'overflow' ? `${row.name}(overflow)` : row.name);
      }
      const commits = walCommits(`${file}-wal`);
      // Transactions in the log: from a BEGIN to its COMMIT.
      const txs: string[][] = [];
      let cur: string[] | undefined;
      for (const s of stmts) {
        if (/^BEGIN/i.test(s)) cur = [];
        else if (/^COMMIT/i.test(s)) {
          if (cur) txs.push(cur);
          cur = undefined;
        } else if (cur) cur.push(s);
        else txs.push([`(autocommit) ${s}`]);
      }
      // Only transactions write WAL frames here (the sweeps' autocommit updates match no row).
      const writing = txs.filter((t) => !t[0]?.startsWith('(autocommit)') && t.some((s) => !/^\s*SELECT/i.test(s)));
      console.log(`\n=== request ${r + 1}: ${stmts.length} statements, ${commits.length} commits, ${commits.reduce((a, c) => a + c.length, 0)} WAL pages`);
      commits.forEach((pages, i) => {
        const names = pages.map((p) => (p === 1 ? 'page1' : (owner.get(p) ?? 'free')));
        const count = new Map<string, number>();
        for (const n of names) {
          count.set(n, (count.get(n) ?? 0) + 1);
          totals.set(n, (totals.get(n) ?? 0) + 1);
        }
        console.log(`-- commit ${i + 1}: ${pages.length} pages: ${[...count].map(([n, c]) => `${n}×${c}`).join(', ')}`);
        if (process.argv.includes('--sql')) for (const s of writing[i] ?? []) console.log(`     ${s.replace(/\s+/g, ' ').slice(0, 150)}`);
      });
      if (process.argv.includes('--all')) for (const s of stmts) console.log(`   | ${s.replace(/\s+/g, ' ').slice(0, 200)}`);
      if (writing.length !== commits.length) console.log(`   (${writing.length} writing transactions in the log, ${commits.length} commits in the WAL)`);
    }
    console.log(`\n=== per request, averaged over ${k}:`);
    for (const [n, c] of [...totals].sort((a, b) => b[1] - a[1])) console.log(`  ${n.padEnd(40)} ${(c / k).toFixed(1)}`);
  } finally {
    await bench.close();
  }
}

runTool(main);
