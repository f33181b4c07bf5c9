// A prototype, not product code (issue 18, docs/performance.md "A writer thread for SQLite, measured
// as a prototype"): what moving SQLite's statements to a writer thread would save the engine's thread.
//
//   node scripts/bench/writer-thread.cjs inline|worker [steps=200000] [batch=2000]
//
// The real schema (a conveyor database migrated once into .tmp/writer-thread/schema.db), the real
// per-step statements (the request's kept-status guard, then the step's ended row), batches of
// `batch` steps per transaction on 4,000 requests. inline: the main thread runs each batch.
// worker: the main thread builds the parameters and posts them; a worker thread runs the
// transaction and answers each guard's change count; two batches in flight.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const Database = require('better-sqlite3');
const fs = require('node:fs');
const { setImmediate } = require('node:timers');
const INSERT = 'INSERT INTO step_runs (id, request_id, pipeline_id, step_id, seq, attempt, status, kind, module, transport, params, output, error, caused_by, available_at, lease_until, wait_event, wait_key, deadline_at, override, assigned, started_at, finished_at, duration_ms, polls, last_poll_at, ended_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)';
const GUARD = 'UPDATE requests SET open_run = ?, open_lease = ?, error = ?, joins = ?, step_count = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ? AND status = ? AND finished_at IS ? AND open_status IS ?';
function open(file) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL'); db.pragma('wal_autocheckpoint = 10000');
  return { db, ins: db.prepare(INSERT), guard: db.prepare(GUARD) };
}
function runBatch(h, batch) {
  const out = new Array(batch.length);
  h.db.transaction(() => { for (let i = 0; i < batch.length; i++) { const s = batch[i]; out[i] = h.guard.run(s[1]).changes; if (out[i] === 1) h.ins.run(s[0]); } }).immediate();
  return out;
}
if (!isMainThread) {
  const h = open(workerData.file);
  parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, held: runBatch(h, m.batch) }));
  return;
}
const mode = process.argv[2];
if (mode !== 'inline' && mode !== 'worker') { console.error('usage: node scripts/bench/writer-thread.cjs inline|worker [steps] [batch]'); process.exit(2); } const STEPS = Number(process.argv[3] || 200000); const BATCH = Number(process.argv[4] || 2000);
const path = require('node:path');
const DIR = path.join(__dirname, '..', '..', '.tmp', 'writer-thread');
const SCHEMA = path.join(DIR, 'schema.db');
if (!fs.existsSync(SCHEMA)) {
  fs.mkdirSync(DIR, { recursive: true });
  require('node:child_process').execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'conveyor.js'), 'migrate'], { env: { ...process.env, DATABASE_URL: `sqlite:${SCHEMA}` }, stdio: 'ignore' });
}
const file = path.join(DIR, `run-${mode}.db`);
for (const f of [file, file + '-wal', file + '-shm']) fs.rmSync(f, { force: true });
fs.copyFileSync(SCHEMA, file);
const h = open(file);
const REQ = 4000; const rev = new Array(REQ).fill(0); const seq = new Array(REQ).fill(0);
const ids = Array.from({ length: REQ }, (_, i) => `0190a3b2-0000-7000-8000-${String(i).padStart(12, '0')}`);
h.db.transaction(() => { const st = h.db.prepare("INSERT INTO requests (id, pipeline_id, version, status, payload, created_at, updated_at, open_run, open_status, open_lease) VALUES (?, 'bench-linear', 1, 'running', ?, ?, ?, ?, 'dispatched', ?)");
  for (const id of ids) st.run(id, JSON.stringify({ n: 1, name: 'x' }), Date.now(), Date.now(), '{"id":"x"}', Date.now() + 10000); })();
let n = 0;
function makeBatch() {
  const b = [];
  for (let k = 0; k < BATCH && n < STEPS; k++, n++) {
    const r = n % REQ; const now = Date.now(); const runId = `0190a3b2-${String(n).padStart(4, '0').slice(-4)}-7${String(n).padStart(3, '0').slice(-3)}-8000-${String(n).padStart(12, '0')}`;
    const ins = [runId, ids[r], 'bench-linear', 's' + (seq[r] % 5 + 1), ++seq[r], 1, 'completed', 'module', 'bench-step', 'event', '{"n":1}', '{"value":' + n + '}', null, null, null, null, null, null, null, null, null, now - 1, now, 1, null, null, null];
    const guard = [`{"id":"${runId}x","s":"s2","a":1}`, now + 10000, null, null, seq[r], now, ids[r], rev[r]++, 'running', null, 'dispatched'];
    b.push([ins, guard]);
  }
  return b;
}
let busy = 0n; const cpu0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
if (mode === 'inline') {
  let held = 0; let sql = 0n;
  while (n < STEPS) { const b = makeBatch(); const a = process.hrtime.bigint(); held += runBatch(h, b).reduce((a, x) => a + x, 0); sql += process.hrtime.bigint() - a; }
  busy = process.hrtime.bigint() - t0;
  report(held, sql);
} else {
  h.db.close();
  const w = new Worker(__filename, { workerData: { file } }); let inflight = 0; let held = 0; let id = 0;
  const pump = () => { const a = process.hrtime.bigint(); while (inflight < 2 && n < STEPS) { inflight++; w.postMessage({ id: id++, batch: makeBatch() }); } busy += process.hrtime.bigint() - a; if (inflight === 0) { report(held); w.terminate(); } };
  w.on('message', (m) => { const a = process.hrtime.bigint(); inflight--; held += m.held.reduce((a, x) => a + x, 0); busy += process.hrtime.bigint() - a; setImmediate(pump); });
  w.once('online', pump);
}
function report(held, sql) {
  const s = Number(process.hrtime.bigint() - t0) / 1e9; const c = process.cpuUsage(cpu0);
  // Main thread busy: inline, the whole run; worker, the time in building, posting and taking answers (process.cpuUsage counts every thread).
  console.log(`${mode}: ${STEPS} steps, ${held} held, ${(STEPS / s).toFixed(0)} steps/s, main thread busy ${(Number(busy) / 1000 / STEPS).toFixed(2)} µs/step${sql ? ` (of it SQLite ${(Number(sql) / 1000 / STEPS).toFixed(2)})` : ''}, process CPU ${((c.user + c.system) / STEPS).toFixed(2)} µs/step`);
}
