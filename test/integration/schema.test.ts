/**
 * The schema is the migrations' alone (no TypeORM entities describe it a second time): the
 * migrations build the same tables and columns on SQLite and on MariaDB, and every column
 * the store's row mappers write names a real column on both. The comparison is shown to
 * fail on a planted drift.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import { createConnection } from 'mysql2/promise';
import { PARTICIPANT_COLUMNS } from '../../src/store/participants';
import { ALERT_COLUMNS, KEYED_COLUMNS, POLL_COLUMNS, REQUEST_COLUMNS, RUN_COLUMNS } from '../../src/store/rows';
import { SqlStore } from '../../src/store/store';
import { requireMysql } from '../support/services';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

/** table → column → what must agree between the dialects. */
type Schema = Record<string, Record<string, { nullable: boolean; primary: boolean }>>;

async function sqliteSchema(store: SqlStore): Promise<Schema> {
  const out: Schema = {};
  const tables = await store.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
  for (const { name } of tables) {
    const columns = await store.query<{ name: string; notnull: unknown; pk: unknown }>(`PRAGMA table_info(${name})`);
    out[name] = Object.fromEntries(columns.map((c) => [c.name, { nullable: Number(c.notnull) === 0 && Number(c.pk) === 0, primary: Number(c.pk) > 0 }]));
  }
  return out;
}

async function mysqlSchema(store: SqlStore): Promise<Schema> {
  const out: Schema = {};
  // Generated columns are MariaDB's stand-ins for SQLite's partial indexes (migration
  // 1763800000320 and 1763800000340): computed from the columns compared here, never written
  // by the store.
  const rows = await store.query<{ t: string; c: string; nullable: string; k: string }>(
    "SELECT table_name AS t, column_name AS c, is_nullable AS nullable, column_key AS k FROM information_schema.columns WHERE table_schema = DATABASE() AND extra NOT LIKE '%GENERATED%'",
  );
  for (const r of rows) (out[r.t] ??= {})[r.c] = { nullable: r.nullable === 'YES', primary: r.k === 'PRI' };
  return out;
}

/** Every difference between two schemas, one line each (none when they agree). */
function drift(a: Schema, b: Schema): string[] {
  const out: string[] = [];
  for (const t of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!a[t] || !b[t]) {
      out.push(`table ${t}: only on ${a[t] ? 'sqlite' : 'mysql'}`);
      continue;
    }
    for (const c of new Set([...Object.keys(a[t]), ...Object.keys(b[t])])) {
      const x = a[t][c];
      const y = b[t][c];
      if (!x || !y) out.push(`${t}.${c}: only on ${x ? 'sqlite' : 'mysql'}`);
      else if (x.nullable !== y.nullable || x.primary !== y.primary) out.push(`${t}.${c}: ${JSON.stringify(x)} on sqlite, ${JSON.stringify(y)} on mysql`);
    }
  }
  return out.sort();
}

const MAPPED: Record<string, string[]> = {
  requests: [REQUEST_COLUMNS, KEYED_COLUMNS],
  step_runs: [RUN_COLUMNS],
  step_polls: [POLL_COLUMNS],
  admin_alerts: [ALERT_COLUMNS],
  request_participants: [PARTICIPANT_COLUMNS],
};

/** Columns the row mappers write that the schema lacks. */
function unmapped(schema: Schema): string[] {
  return Object.entries(MAPPED).flatMap(([t, lists]) => lists.flatMap((l) => l.split(',').map((c) => c.trim())).filter((c) => !schema[t]?.[c]).map((c) => `${t}.${c}`));
}

describe('schema: the migrations alone, the same on SQLite and MariaDB', function () {
  this.timeout(60_000);
  let sqlite: Schema;
  let mysql: Schema;
  let admin: string;
  const db = `conveyor_test_${randomBytes(6).toString('hex')}`;

  before(async () => {
    admin = await requireMysql();
    const conn = await createConnection({ uri: admin });
    await conn.query(`CREATE DATABASE \`${db}\``).finally(() => conn.end());
    const url = new URL(admin);
    url.pathname = `/${db}`;
    const stores = [await SqlStore.open(`sqlite:${path.join(tmpDir('schema'), 'schema.db')}`), await SqlStore.open(url.toString())];
    try {
      sqlite = await sqliteSchema(stores[0]!);
      mysql = await mysqlSchema(stores[1]!);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  after(async () => {
    cleanupTmpDirs();
    if (!admin) return;
    const conn = await createConnection({ uri: admin });
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).finally(() => conn.end());
  });

  it('both dialects have the same tables and columns, with the same nullability and primary keys', () => {
    expect(Object.keys(sqlite)).to.include.members(['requests', 'step_runs', 'step_polls', 'intake_marks', 'intake_rejects', 'request_participants', 'admin_alerts']);
    expect(drift(sqlite, mysql)).to.deep.equal([]);
  });

  it('every column the row mappers write exists on both dialects', () => {
    expect(unmapped(sqlite)).to.deep.equal([]);
    expect(unmapped(mysql)).to.deep.equal([]);
  });

  it('a planted drift is found: a column missing on one side, a nullability changed, a mapped column unknown', () => {
    const tampered: Schema = JSON.parse(JSON.stringify(mysql)) as Schema;
    delete tampered.requests!.active_key;
    tampered.intake_marks!.at = { nullable: true, primary: false };
    expect(drift(sqlite, tampered)).to.deep.equal([
      'intake_marks.at: {"nullable":false,"primary":false} on sqlite, {"nullable":true,"primary":false} on mysql',
      'requests.active_key: only on sqlite',
    ]);
    expect(unmapped(tampered)).to.deep.equal(['requests.active_key']);
  });
});
