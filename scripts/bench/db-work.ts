/**
 * Database work per step, for the benchmark (issue "Performance": rows written, statements and
 * pages or handler writes per step). A meter is read before and after a phase; the difference,
 * divided by the steps of the phase, is printed beside the throughput.
 *
 * - SQLite: statements and rows changed are counted by wrapping better-sqlite3's `run` in this
 *   process (the engine runs here); bytes written are the process's `write()` bytes from
 *   `/proc/self/io` (`wchar`), which in WAL mode are the commit frames (a 4 KiB page and its
 *   24-byte header each) plus the checkpoints' copies into the database file. Pages = bytes ÷
 *   4,120: every page a commit changed, however small the change.
 * - MariaDB: the server's global counters (`SHOW GLOBAL STATUS`): `Handler_write`,
 *   `Handler_update`, `Handler_delete` (rows the storage engine wrote; an
 *   `INSERT … ON DUPLICATE KEY UPDATE` that updates a row counts a write for its insert
 *   attempt and an update, so the bulk path's request rows, upserts since 2026-12-07, count
 *   twice, and MariaDB has no counter of rows actually inserted to tell them apart), `Questions`
 *   (statements clients sent, prepared executions included) and `Innodb_os_log_written` (redo
 *   log bytes: InnoDB writes its pages later, in the background, so the redo log is what a
 *   commit costs). Global, so the machine should be otherwise idle while the bench runs.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { createConnection } from 'mysql2/promise';

export interface DbWork {
  /** Statements per step (SQLite: every `run`/`all`/`get`; MariaDB: DML, selects and commits). */
  statements: number;
  /** Rows inserted, updated or deleted per step. */
  rowsWritten: number;
  /** KiB written per step: SQLite's WAL frames and checkpoint copies; MariaDB's redo log. */
  kib: number;
  /** SQLite only: pages written per step (KiB ÷ a frame of 4,120 bytes). */
  pages?: number;
}

export interface DbMeter {
  read(): Promise<Record<string, number>>;
  perStep(before: Record<string, number>, after: Record<string, number>, steps: number): DbWork;
}

const counts = { statements: 0, rows: 0 };
let patched = false;

/** Counts better-sqlite3 statements in this process (once; cheap: one increment per call). */
function patchSqlite(): void {
  if (patched) return;
  patched = true;
  const req = createRequire(__filename);
  const Database = req('better-sqlite3') as new (file: string) => { prepare(sql: string): object; close(): void };
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  probe.close();
  const run = proto.run!;
  // `apply(this, arguments)` rather than rest parameters: V8 passes `arguments` through without
  // building an array, so the meter adds no garbage to the run it measures (rest parameters
  // allocated ~1 KB a step, 5% of what the engine allocates, and moved GC and peak RSS).
  proto.run = function (this: unknown) {
    counts.statements++;
    // eslint-disable-next-line prefer-rest-params
    const r = run.apply(this, arguments as unknown as unknown[]) as { changes: number };
    counts.rows += r.changes;
    return r;
  };
  for (const name of ['all', 'get', 'iterate']) {
    const f = proto[name]!;
    proto[name] = function (this: unknown) {
      counts.statements++;
      // eslint-disable-next-line prefer-rest-params
      return f.apply(this, arguments as unknown as unknown[]);
    };
  }
}

function writeBytes(): number {
  const m = /wchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function sqliteMeter(): DbMeter {
  patchSqlite();
  return {
    read: () => Promise.resolve({ statements: counts.statements, rows: counts.rows, bytes: writeBytes() }),
    perStep: (b, a, steps) => ({
      statements: (a.statements! - b.statements!) / steps,
      rowsWritten: (a.rows! - b.rows!) / steps,
      kib: (a.bytes! - b.bytes!) / 1024 / steps,
      pages: (a.bytes! - b.bytes!) / 4120 / steps,
    }),
  };
}

const MYSQL_COUNTERS = ['Handler_write', 'Handler_update', 'Handler_delete', 'Questions', 'Innodb_os_log_written'];

export function mysqlMeter(url: string): DbMeter {
  return {
    read: async () => {
      const c = await createConnection({ uri: url });
      try {
        const [rows] = await c.query(`SHOW GLOBAL STATUS WHERE Variable_name IN (${MYSQL_COUNTERS.map(() => '?').join(',')})`, MYSQL_COUNTERS);
        return Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
      } finally {
        await c.end();
      }
    },
    perStep: (b, a, steps) => {
      const d = (k: string): number => (a[k] ?? 0) - (b[k] ?? 0);
      return {
        // The meter's own SHOW STATUS is one question.
        statements: (d('Questions') - 1) / steps,
        rowsWritten: (d('Handler_write') + d('Handler_update') + d('Handler_delete')) / steps,
        kib: d('Innodb_os_log_written') / 1024 / steps,
      };
    },
  };
}
