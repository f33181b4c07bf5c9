// The requests' rows of a MySQL bulk batch, two ways, on the real schema (docs/performance.md,
// "MySQL: the requests' rows as one INSERT … ON DUPLICATE KEY UPDATE"): the `UPDATE … JOIN
// JSON_TABLE(…)` the bulk path used until 2026-12-07, and the guarded multi-row upsert it uses
// now. Each round updates `batch` random rows of 20,000 in one transaction; the two ways
// alternate. Prints the server's CPU (from /proc of the local mariadbd) and the wall time per row.
//
//   node scripts/bench/request-upsert.cjs [rounds=40] [batch=500]
//
// MariaDB from TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test); a scratch database
// `conveyor_upsert_<random>` is made, migrated with `conveyor migrate`, and dropped.
const mysql = require('mysql2/promise');
const fs = require('fs');
const { execFileSync, execSync } = require('node:child_process');
const path = require('node:path');
const { URL } = require('node:url');
const PID = Number(execSync('pgrep -o mariadbd || pgrep -o mysqld').toString().trim());
const ROUNDS = Number(process.argv[2] || 40), B = Number(process.argv[3] || 500), N = 20000;
const ADMIN = process.env.TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
const DB = `conveyor_upsert_${require('node:crypto').randomBytes(4).toString('hex')}`;
const dbUrl = () => { const u = new URL(ADMIN); u.pathname = `/${DB}`; return u.toString(); };
const cpu = () => { const f = fs.readFileSync(`/proc/${PID}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const jt = (cols, table) => `JSON_TABLE(?, '$[*]' COLUMNS (${cols.map(([n, t], i) => `${n} ${t === 'id' ? 'VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' : t} PATH '$[${i}]'`).join(', ')})) v STRAIGHT_JOIN ${table}`;
const COLS = [['id', 'id'], ['rev', 'INT'], ['status', 'VARCHAR(16)'], ['set_vars', 'INT'], ['vars', 'LONGTEXT'], ['error', 'LONGTEXT'], ['joins', 'LONGTEXT'], ['step_count', 'INT'], ['finished_at', 'BIGINT'], ['updated_at', 'BIGINT'], ['set_open', 'INT'], ['open_run', 'LONGTEXT'], ['open_status', 'VARCHAR(16)'], ['open_lease', 'BIGINT']];
const UPD = `UPDATE ${jt(COLS, 'requests r')} ON r.id = v.id AND r.rev = v.rev SET r.status = v.status, r.vars = IF(v.set_vars = 1, v.vars, r.vars), r.error = v.error, r.joins = v.joins, r.step_count = v.step_count, r.finished_at = v.finished_at, r.updated_at = v.updated_at, r.open_run = IF(v.set_open = 1, v.open_run, r.open_run), r.open_status = IF(v.set_open = 1, v.open_status, r.open_status), r.open_lease = IF(v.set_open = 1, v.open_lease, r.open_lease), r.rev = r.rev + 1`;
// The upsert exactly as src/store/mysql-bulk.ts writes it (`version` carries which optional fields a commit sets).
const HELD = 'rev = VALUES(rev)';
const ODKU = (n) => `INSERT INTO requests (id, pipeline_id, version, payload, created_at, rev, status, vars, error, joins, step_count, finished_at, updated_at, open_run, open_status, open_lease) VALUES ${new Array(n).fill("(?,'',?,'',0,?,?,?,?,?,?,?,?,?,?,?)").join(',')}` +
  ` ON DUPLICATE KEY UPDATE status = IF(${HELD}, VALUES(status), status), ` +
  `vars = IF(${HELD} AND VALUES(version) & 2, VALUES(vars), vars), error = IF(${HELD}, VALUES(error), error), joins = IF(${HELD}, VALUES(joins), joins), ` +
  `step_count = IF(${HELD}, VALUES(step_count), step_count), finished_at = IF(${HELD}, VALUES(finished_at), finished_at), updated_at = IF(${HELD}, VALUES(updated_at), updated_at), ` +
  `open_run = IF(${HELD} AND VALUES(version) & 1, VALUES(open_run), open_run), open_status = IF(${HELD} AND VALUES(version) & 1, VALUES(open_status), open_status), ` +
  `open_lease = IF(${HELD} AND VALUES(version) & 1, VALUES(open_lease), open_lease), rev = IF(${HELD}, rev + 1, rev)`;
(async () => {
  const admin = await mysql.createConnection({ uri: ADMIN });
  await admin.query(`CREATE DATABASE \`${DB}\``);
  try {
    execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'conveyor.js'), 'migrate'], { env: { ...process.env, DATABASE_URL: dbUrl(), LOG_LEVEL: 'warn' }, stdio: 'ignore' });
    await run();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
    await admin.end();
  }
})().catch((e) => { console.error(e); process.exit(1); });

async function run() {
  const c = await mysql.createConnection({ uri: dbUrl(), multipleStatements: true });
  const ids = Array.from({ length: N }, (_, i) => `0190a3b2-0000-7000-8000-${String(i).padStart(12, '0')}`);
  const rev = new Array(N).fill(0);
  for (let i = 0; i < N; i += 1000) {
    const part = ids.slice(i, i + 1000);
    await c.query(`INSERT INTO requests (id, pipeline_id, version, status, payload, created_at, updated_at, open_run, open_status, open_lease) VALUES ${part.map(() => "(?, 'bench-linear', 1, 'running', '{\"n\":1,\"name\":\"x\"}', 1, 1, '{\"id\":\"x\"}', 'dispatched', 5)").join(',')}`, part);
  }
  const tot = { A: { cpu: 0, ms: 0, rows: 0 }, B: { cpu: 0, ms: 0, rows: 0 } };
  let n = 0;
  for (let r = 0; r < ROUNDS * 2; r++) {
    const method = r % 2 === 0 ? 'A' : 'B';
    const pick = new Set(); while (pick.size < B) pick.add(Math.floor(Math.random() * N));
    const idx = [...pick].sort((a, b) => a - b);
    const now = Date.now();
    const rows = idx.map((i) => { n++; return [ids[i], rev[i], 'running', null, null, rev[i] + 1, null, now, `{"id":"0190a3b2-${String(n).padStart(4,'0').slice(-4)}-7000-8000-${String(n).padStart(12,'0')}","s":"s2","a":1,"st":${now},"p":{"n":1}}`, 'dispatched', now + 600000]; });
    let text;
    if (method === 'A') text = mysql.format(UPD, [JSON.stringify(rows.map((x) => [x[0], x[1], x[2], 0, null, x[3], x[4], x[5], x[6], x[7], 1, x[8], x[9], x[10]]))]);
    else text = mysql.format(ODKU(B), rows.flatMap((x) => [x[0], 1, x[1], x[2], null, x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10]]));
    const c0 = cpu(); const t0 = process.hrtime.bigint();
    const [res] = await c.query(`START TRANSACTION;\n${text};\nCOMMIT`);
    const t1 = process.hrtime.bigint(); const c1 = cpu();
    const affected = res[1].affectedRows;
    const want = method === 'A' ? B : 2 * B;
    if (affected !== want) throw new Error(`${method}: affected ${affected}, want ${want}`);
    for (const i of idx) rev[i]++;
    tot[method].cpu += c1 - c0; tot[method].ms += Number(t1 - t0) / 1e6; tot[method].rows += B;
  }
  // A stale row under ODKU changes nothing:
  const [res] = await c.query(mysql.format(ODKU(1), [ids[0], 1, rev[0] + 5, 'running', null, null, null, 1, null, 1, '{}', 'dispatched', 1]));
  console.log('a stale row, upserted: counted', res.affectedRows, '(an updated row counts 2)');
  for (const m of ['A', 'B']) console.log(m === 'A' ? 'UPDATE JSON_TABLE' : 'INSERT ODKU     ', 'server CPU µs/row', (tot[m].cpu * 1000 / tot[m].rows).toFixed(1), 'wall µs/row', (tot[m].ms * 1000 / tot[m].rows).toFixed(1));
  await c.end();
}
