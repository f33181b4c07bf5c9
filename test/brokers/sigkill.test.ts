/**
 * Broker intake survives SIGKILL (README "Sources"): 10,000 messages on a RabbitMQ queue and
 * 10,000 on a JetStream stream are consumed by an engine process that is killed with SIGKILL
 * twice on the way. A message is acknowledged only after its request is stored, so: every
 * message is stored exactly once (its message id is the idempotency key), none is lost, none
 * is left unacknowledged, bad messages are dead-lettered and listed, and the requests of
 * each SKU are stored in the order the queue held them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { sleep, until } from '../intake/helpers';
import { freePort } from '../support/ports';
import { requireAmqp, requireNats } from '../support/services';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { FIXTURE_MODULES, openAmqp, openNats, unique, writePipelines, type Amqp, type Nats } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const N = 10_000;
const SKUS = 100;

describe('broker sources: 10,000 messages each from RabbitMQ and JetStream, engine SIGKILLed twice', function () {
  this.timeout(600_000);
  const children: ChildProcess[] = [];
  let amqp: Amqp;
  let nats: Nats;
  let amqpUrl: string;
  let natsUrl: string;
  const queue = unique('t.kill');
  const stream = unique('TKILL').replace(/-/g, '_');
  const subject = `${stream.toLowerCase()}.catalog`;
  const amqpPipeline = unique('kill-amqp');
  const natsPipeline = unique('kill-nats');
  let dbFile: string;
  let pipelinesDir: string;

  before(async () => {
    amqpUrl = await requireAmqp();
    natsUrl = await requireNats();
    amqp = await openAmqp(amqpUrl);
    nats = await openNats(natsUrl);
    dbFile = path.join(tmpDir('brokers-kill'), 'c.db');
    // The requests stay buffered (a schedule that does not fire in the test): this is about intake.
    const common = { start: 'work', intake: { schedule: '0 0 1 1 *', businessKey: { path: 'payload.sku', onConflict: 'queue' } }, steps: { work: { subsystem: 'in-work' } } };
    pipelinesDir = writePipelines([
      { id: amqpPipeline, ...common, sources: [{ kind: 'amqp', queue, prefetch: 200, maxBuffered: 1_000_000 }] },
      { id: natsPipeline, ...common, sources: [{ kind: 'nats', stream, subject, durable: 'conveyor', prefetch: 200, ackWait: '3s', maxBuffered: 1_000_000 }] },
    ]);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const ch = await amqp.conn.createChannel();
    for (const q of [queue, `${queue}.dead`]) await ch.deleteQueue(q).catch(() => undefined);
    await amqp.close();
    await nats.jsm.streams.delete(stream).catch(() => undefined);
    await nats.close();
    cleanupTmpDirs();
  });

  async function startEngine(): Promise<ChildProcess> {
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(process.execPath, ['bin/conveyor.js', 'start'], {
      cwd: ROOT,
      env: {
        ...process.env, DATABASE_URL: `sqlite:${dbFile}`, HOST: '127.0.0.1', PORT: String(port), CONVEYOR_API_KEYS: 'kill-key-0000001:admin',
        CONVEYOR_PIPELINES_DIR: pipelinesDir, CONVEYOR_MODULES_DIR: FIXTURE_MODULES, LOG_LEVEL: 'error', REDIS_URL: '',
        AMQP_URL: amqpUrl, NATS_URL: natsUrl,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    await until('the engine to listen', async () => {
      if (child.exitCode !== null) throw new Error(`the engine exited:\n${output.join('')}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 60_000, 100);
    return child;
  }

  const read = <T>(sql: string, ...params: unknown[]): T[] => {
    let db: Database.Database | undefined;
    try {
      db = new Database(dbFile, { readonly: true, fileMustExist: true });
      return db.prepare(sql).all(...params) as T[];
    } catch {
      return [];
    } finally {
      db?.close();
    }
  };
  const stored = (): number => read<{ n: number }>('SELECT COUNT(*) AS n FROM requests')[0]?.n ?? 0;

  async function kill(child: ChildProcess): Promise<void> {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  }

  it('stores every message once, loses none, leaves none unacknowledged, dead-letters the bad ones, keeps per-SKU order', async () => {
    const messages = Array.from({ length: N }, (_, i) => ({ body: { sku: `SKU-${i % SKUS}`, seq: Math.floor(i / SKUS), price: 1000 + i }, id: `evt-${i}` }));
    const bad = [{ raw: Buffer.from('{oops'), id: 'bad-1' }, { body: 'a string', id: 'bad-2' }, { body: null, id: 'bad-3' }];
    // The first engine creates the queue (with its dead-letter queue) and the stream.
    let child = await startEngine();
    await until('queue and stream to exist', async () => (await amqp.depth(queue).then(() => true, () => false)) && (await nats.jsm.streams.info(stream).then(() => true, () => false)), 30_000, 200);
    await kill(child);
    await Promise.all([
      amqp.send(queue, [...messages.slice(0, N / 2), ...bad, ...messages.slice(N / 2)]),
      nats.send(subject, [...messages.slice(0, N / 2), ...bad, ...messages.slice(N / 2)]),
    ]);

    child = await startEngine();
    await until('a quarter to be stored', async () => stored() >= (2 * N) / 4, 300_000, 50);
    await kill(child);
    child = await startEngine();
    await until('more than half to be stored', async () => stored() >= (2 * N) / 2 + 500, 300_000, 50);
    await kill(child);
    child = await startEngine();
    await until('all to be stored', async () => stored() >= 2 * N, 300_000, 200);
    await until('JetStream: nothing pending or unacknowledged', async () => {
      const info = await nats.jsm.consumers.info(stream, 'conveyor');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 60_000, 200);
    await sleep(500);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    for (const pipeline of [amqpPipeline, natsPipeline]) {
      const rows = read<{ idempotency_key: string; payload: string }>('SELECT idempotency_key, payload FROM requests WHERE pipeline_id = ? ORDER BY id', pipeline);
      expect(rows, `${pipeline}: requests`).to.have.length(N);
      expect(new Set(rows.map((r) => r.idempotency_key)), `${pipeline}: each message once`).to.deep.equal(new Set(messages.map((m) => m.id)));
      const rejects = read<{ message_id: string }>('SELECT DISTINCT message_id FROM intake_rejects WHERE pipeline_id = ? ORDER BY message_id', pipeline);
      expect(rejects.map((r) => r.message_id), `${pipeline}: rejects listed`).to.deep.equal(['bad-1', 'bad-2', 'bad-3']);
      if (pipeline !== amqpPipeline) continue;
      // Per SKU, stored in queue order (RabbitMQ requeues unacknowledged messages in place).
      const seqs = new Map<string, number[]>();
      for (const r of rows) {
        const p = JSON.parse(r.payload) as { sku: string; seq: number };
        seqs.set(p.sku, [...(seqs.get(p.sku) ?? []), p.seq]);
      }
      for (const [sku, list] of seqs) expect(list, `order of ${sku}`).to.deep.equal(Array.from({ length: N / SKUS }, (_, i) => i));
    }
    expect(await amqp.depth(queue), 'AMQP: messages left ready (an unacknowledged one is ready again once its channel closed)').to.equal(0);
    expect(await amqp.depth(`${queue}.dead`), 'AMQP: dead-lettered').to.equal(3);
  });
});
