'use strict';
/**
 * Preload (`node --require scripts/bench/sql-time.cjs`): times every better-sqlite3 statement
 * this process runs, by SQL text, and writes the totals to `$CONVEYOR_SQL_TIME_FILE` (JSON)
 * when the process exits. `npm run bench:broker -- --sql-time` loads it into the engine and
 * prints the statements that took the most time. A statement run inside a transaction is
 * timed alone; `COMMIT` (the WAL writes, and checkpoints) is a statement of its own. Each
 * call costs two `hrtime` reads: a few percent of the engine's CPU.
 */
const fs = require('node:fs');
const Module = require('node:module');

const file = process.env.CONVEYOR_SQL_TIME_FILE;
/**
 * `CONVEYOR_SQL_IO=1`: also counts, by statement, the read system calls and bytes written by
 * this thread (`/proc/thread-self/io`, read around each statement): which statement misses
 * the page cache (SQLite reads a missing page with one `pread`) and which writes. Reading the
 * counters costs two file reads a statement, so the times are then much inflated.
 */
const withIo = process.env.CONVEYOR_SQL_IO === '1';
function io() {
  const text = fs.readFileSync('/proc/thread-self/io', 'latin1');
  return { r: Number(/syscr: (\d+)/.exec(text)[1]), w: Number(/wchar: (\d+)/.exec(text)[1]) };
}
const stats = new Map();
let patched = false;

function patch(Database) {
  patched = true;
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  for (const name of ['run', 'all', 'get', 'iterate']) {
    const original = proto[name];
    proto[name] = function timed(...args) {
      const io0 = withIo ? io() : undefined;
      const t0 = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        const ns = Number(process.hrtime.bigint() - t0);
        const io1 = io0 ? io() : undefined;
        const sql = this.source.replace(/\s+/g, ' ').slice(0, 200);
        let s = stats.get(sql);
        if (!s) stats.set(sql, (s = { calls: 0, ns: 0, reads: 0, written: 0 }));
        s.calls++;
        s.ns += ns;
        if (io1) {
          // Reading the counters (open, read, read to the end) makes two read calls.
          s.reads += io1.r - io0.r - 2;
          s.written += io1.w - io0.w;
        }
      }
    };
  }
}

if (file) {
  const load = Module._load;
  Module._load = function (request, ...rest) {
    const m = load.call(this, request, ...rest);
    if (!patched && /(^|\/)better-sqlite3$/.test(request) && typeof m === 'function') patch(m);
    return m;
  };
  process.on('exit', () => {
    const rows = [...stats].map(([sql, s]) => ({ sql, calls: s.calls, ms: s.ns / 1e6, ...(withIo ? { reads: s.reads, written: s.written } : {}) })).sort((a, b) => b.ms - a.ms);
    fs.writeFileSync(file, JSON.stringify(rows));
  });
}
