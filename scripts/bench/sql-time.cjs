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
      const t0 = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        const ns = Number(process.hrtime.bigint() - t0);
        const sql = this.source.replace(/\s+/g, ' ').slice(0, 200);
        const s = stats.get(sql);
        if (s) {
          s.calls++;
          s.ns += ns;
        } else stats.set(sql, { calls: 1, ns });
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
    const rows = [...stats].map(([sql, s]) => ({ sql, calls: s.calls, ms: s.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
    fs.writeFileSync(file, JSON.stringify(rows));
  });
}
