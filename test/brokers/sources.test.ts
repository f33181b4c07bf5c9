/**
 * Broker sources against the real RabbitMQ and NATS JetStream (README "Sources"): messages
 * become requests through the same intake as HTTP, duplicates (same message id) are stored
 * once, bad messages are dead-lettered and listed by `GET /api/sources`, nothing is left
 * unacknowledged, and a source pauses while its pipeline's backlog is over `maxBuffered`.
 */
import { expect } from 'chai';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requireAmqp, requireNats } from '../support/services';
import { cleanupTmpDirs } from '../support/tmp';
import { rowsOf, until } from '../intake/helpers';
import { FIXTURE_MODULES, openAmqp, openNats, unique, writePipelines, type Amqp, type Nats } from './helpers';

interface SourcesBody {
  sources: Array<{ pipeline: string; name: string; state: string; stored: number; duplicates: number; rejected: number; backlog: number | null }>;
  rejects: Array<{ pipeline: string; source: string; messageId: string | null; code: string; reason: string; at: string }>;
}

describe('broker sources (real RabbitMQ and NATS JetStream)', function () {
  this.timeout(90_000);
  let amqpUrl: string;
  let natsUrl: string;
  let amqp: Amqp;
  let nats: Nats;
  let t: TestEngine | undefined;
  const queues: string[] = [];
  const streams: string[] = [];

  before(async () => {
    amqpUrl = await requireAmqp();
    natsUrl = await requireNats();
    amqp = await openAmqp(amqpUrl);
    nats = await openNats(natsUrl);
  });

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  after(async () => {
    const ch = await amqp.conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    await amqp.close();
    for (const s of streams) await nats.jsm.streams.delete(s).catch(() => undefined);
    await nats.close();
    cleanupTmpDirs();
  });

  const start = async (defs: Array<Record<string, unknown>>): Promise<TestEngine> => {
    t = await startTestEngine({
      pipelinesDir: writePipelines(defs), modulesDir: FIXTURE_MODULES,
      env: { AMQP_URL: amqpUrl, NATS_URL: natsUrl },
      engine: { intake: { pollMs: 50, sweepMs: 200 }, sources: { checkMs: 100, retryMs: 200 } },
    });
    return t;
  };

  const bad = [
    { raw: Buffer.from('{not json'), id: 'bad-json' },
    { body: [1, 2, 3], id: 'bad-array' },
    { body: { sku: 'X', pad: 'x'.repeat(3000) }, id: 'bad-large' },
    { body: { sku: 'S-1', seq: 999 }, id: 'm-1' }, // same id as a good message, other body: refused by idempotency (422)
  ];

  it('AMQP: each message stored once, duplicates replayed, bad ones dead-lettered and listed, none left', async () => {
    const queue = unique('t.src');
    queues.push(queue, `${queue}.dead`);
    const id = unique('src-amqp');
    const engine = await start([{
      id, start: 'work', sources: [{ kind: 'amqp', name: 'catalog', queue, prefetch: 50, maxMessageBytes: 2000 }],
      intake: { businessKey: { path: 'payload.sku', onConflict: 'queue' } }, steps: { work: { subsystem: 'in-work' } },
    }]);
    await until('the source to consume', async () => (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((s) => s.pipeline === id)?.state === 'consuming');
    const good = Array.from({ length: 300 }, (_, i) => ({ body: { sku: `S-${i % 10}`, seq: Math.floor(i / 10) }, id: `m-${i}` }));
    // m-0 … m-9 again: a redelivered or re-sent message is stored once.
    await amqp.send(queue, [...good, ...good.slice(0, 10), ...bad]);
    await until('every message to be handled', async () => {
      const s = (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((x) => x.pipeline === id)!;
      return s.stored + s.duplicates + s.rejected === 314;
    }, 60_000, 100);
    const rows = await rowsOf(engine, id);
    expect(rows).to.have.length(300);
    // Per SKU, requests were stored in the order the broker delivered them.
    const payloads = await engine.engine.store.query<{ payload: string }>('SELECT payload FROM requests WHERE pipeline_id = ? ORDER BY id', [id]);
    const bySku = new Map<string, number[]>();
    for (const p of payloads.map((r) => JSON.parse(r.payload) as { sku: string; seq: number })) bySku.set(p.sku, [...(bySku.get(p.sku) ?? []), p.seq]);
    for (const seqs of bySku.values()) expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));

    const body = (await engine.api<SourcesBody>('GET', '/api/sources')).body;
    const src = body.sources.find((s) => s.pipeline === id)!;
    expect(src).to.include({ name: 'catalog', stored: 300, duplicates: 10, rejected: 4 });
    const rejects = body.rejects.filter((r) => r.pipeline === id);
    expect(rejects.map((r) => [r.messageId, r.code]).sort()).to.deep.equal([
      ['bad-array', 'CONVEYOR_ERR_BAD_BODY'], ['bad-json', 'CONVEYOR_ERR_BAD_JSON'], ['bad-large', 'CONVEYOR_ERR_BODY_TOO_LARGE'], ['m-1', 'CONVEYOR_ERR_IDEMPOTENCY_MISMATCH'],
    ]);
    await until('the dead-letter queue to hold the 4 bad messages', async () => (await amqp.depth(`${queue}.dead`)) === 4);
    await engine.close();
    t = undefined;
    // After the engine closed its channel, an unacknowledged message would be ready again.
    expect(await amqp.depth(queue), 'messages left in the queue').to.equal(0);
  });

  it('JetStream: Nats-Msg-Id or stream sequence is the idempotency key; bad messages are terminated and listed', async () => {
    const stream = unique('TSRC').replace(/-/g, '_');
    streams.push(stream);
    const subject = `${stream.toLowerCase()}.catalog.>`;
    const id = unique('src-nats');
    const engine = await start([{
      id, start: 'work', sources: [{ kind: 'nats', stream, subject, durable: 'conveyor', prefetch: 50, maxMessageBytes: 2000, ackWait: '2s' }],
      steps: { work: { subsystem: 'in-work' } },
    }]);
    await until('the source to consume', async () => (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((s) => s.pipeline === id)?.state === 'consuming');
    const s = `${stream.toLowerCase()}.catalog.price`;
    const good = Array.from({ length: 200 }, (_, i) => ({ body: { sku: `S-${i}`, seq: i }, id: `n-${i}` }));
    await nats.send(s, [...good, ...bad.slice(0, 3), { body: { sku: 'no-id' } }]);
    await until('every message to be handled', async () => {
      const x = (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((y) => y.pipeline === id)!;
      return x.stored + x.duplicates + x.rejected === 204;
    }, 60_000, 100);
    const keys = await engine.engine.store.query<{ idempotency_key: string }>('SELECT idempotency_key FROM requests WHERE pipeline_id = ?', [id]);
    expect(keys).to.have.length(201);
    expect(keys.map((k) => k.idempotency_key)).to.include(`${stream}:204`);
    const body = (await engine.api<SourcesBody>('GET', '/api/sources')).body;
    expect(body.rejects.filter((r) => r.pipeline === id).map((r) => r.messageId).sort()).to.deep.equal(['bad-array', 'bad-json', 'bad-large']);
    let info = await nats.jsm.consumers.info(stream, 'conveyor');
    await until('no message pending or unacknowledged', async () => {
      info = await nats.jsm.consumers.info(stream, 'conveyor');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 20_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify({ pending: info.num_pending, ackPending: info.num_ack_pending, delivered: info.delivered, ackFloor: info.ack_floor })}`);
    });
  });

  /** An AMQP source (prefetch 10, maxBuffered 40) whose requests all stay buffered, consuming. */
  const heldSource = async (label: string): Promise<{ queue: string; id: string; engine: TestEngine }> => {
    const queue = unique(`t.${label}`);
    queues.push(queue, `${queue}.dead`);
    const id = unique(`src-${label}`);
    // A schedule that never fires in the test: every request stays buffered.
    const engine = await start([{
      id, start: 'work', intake: { schedule: '0 0 1 1 *' }, sources: [{ kind: 'amqp', queue, prefetch: 10, maxBuffered: 40 }],
      steps: { work: { subsystem: 'in-work' } },
    }]);
    await until('the source to consume', async () => (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((s) => s.pipeline === id)?.state === 'consuming');
    return { queue, id, engine };
  };

  it('pauses while the backlog is over maxBuffered: the rest stays at the broker', async () => {
    const { queue, id, engine } = await heldSource('bp');
    await amqp.send(queue, Array.from({ length: 500 }, (_, i) => ({ body: { i }, id: `bp-${i}` })));
    const paused = await until('the source to pause', async () => {
      const x = (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((y) => y.pipeline === id)!;
      return x.state === 'paused' ? x : undefined;
    }, 30_000, 100);
    expect(paused.state).to.equal('paused');
    await new Promise((r) => setTimeout(r, 1000));
    // Stored: maxBuffered, plus at most what was already taken (prefetch) when it paused.
    const stored = (await rowsOf(engine, id)).length;
    expect(stored).to.be.within(40, 40 + 10 + 1);
    const later = (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((y) => y.pipeline === id)!;
    expect(later.state).to.equal('paused');
    expect(later.backlog, 'counted up to maxBuffered + 1').to.equal(41);
    expect(await amqp.depth(queue)).to.be.at.least(500 - stored - 10);
  });

  it('pauses by maxBuffered + prefetch even when the backlog count answers late: what is stored meanwhile counts', async () => {
    const { queue, id, engine } = await heldSource('bps');
    // Every count reads the store, then answers 300 ms later (a long count, as at 750,000
    // buffered): the messages stored in between are not in it.
    const sources = engine.engine.store.sources;
    const count = sources.backlog.bind(sources);
    sources.backlog = async (pipelineId, cap) => {
      const n = await count(pipelineId, cap);
      await new Promise((r) => setTimeout(r, 300));
      return n;
    };
    await amqp.send(queue, Array.from({ length: 500 }, (_, i) => ({ body: { i }, id: `bps-${i}` })));
    await until('the source to pause', async () => (await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((y) => y.pipeline === id)!.state === 'paused', 30_000, 50);
    // Two counts' time: whatever was taken before the pause is stored by then.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await rowsOf(engine, id)).length).to.be.within(40, 40 + 10 + 1);
    expect((await engine.api<SourcesBody>('GET', '/api/sources')).body.sources.find((y) => y.pipeline === id)!.state).to.equal('paused');
  });
});
