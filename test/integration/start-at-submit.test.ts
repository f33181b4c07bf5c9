/**
 * Distributed start at submit (docs/performance.md, issue 18): on MariaDB + Redis, an engine
 * process that takes a submit it would start at once anyway stores the request already
 * `running`, with its first run, in the one transaction that stores it; no start job goes
 * through `conveyor:requests`. What is bounded across processes only in the store (`maxActive`)
 * and a start beyond this engine's admission cap still take the old way: stored `buffered`,
 * then a start job on the queue.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { installGate, openGate, removeGate, type Gate } from '../fixtures/admission/gate';
import { cleanRedisPrefix, createTestDatabase, uniquePrefix, waitFor, type TestDatabase } from '../fixtures/dist/harness';
import { createSilentLogger } from '../support/engine';
import { requireMysql, requireRedis } from '../support/services';
import { Engine } from '../../src/engine';
import type { RequestRecord } from '../../src/model';
import type { IntakeInsert } from '../../src/store/rows';
import { REQUESTS_QUEUE } from '../../src/transports/queue';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'start-at-submit');

describe('distributed: a submit is started in the transaction that stores it (MariaDB + Redis)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let redisUrl: string;
  let prefix: string;
  let engine: Engine;
  let gate: Gate;
  /** Request ids whose start job was added to `conveyor:requests`. */
  const startJobs: string[] = [];
  /** What intake offered to start at submit, and the answers. */
  const offered: Array<{ id: string; taken: boolean }> = [];
  /** How each request was inserted: `status` and `hold` as written. */
  const inserted = new Map<string, { status: string; hold: string | null; runs: number }>();
  /** The `callback` flag of each request's end event (false: no callback claim is tried). */
  const ends = new Map<string, boolean | undefined>();

  before(async function () {
    this.timeout(30_000);
    const [mysql, redis] = await Promise.all([requireMysql(), requireRedis()]);
    redisUrl = redis;
    db = await createTestDatabase(mysql, 'sas');
    prefix = uniquePrefix('sas');
    engine = await Engine.create({
      databaseUrl: db.url, redisUrl, queuePrefix: prefix, queueModules: ['sas-q'],
      pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), logger: createSilentLogger(),
      supervisor: { sweepIntervalMs: 200, maxInFlight: 1 }, intake: { pollMs: 100 },
    });
    const e = engine;
    const q = e.hub!.queue(REQUESTS_QUEUE);
    const add = q.add.bind(q) as (data: unknown, opts?: unknown) => Promise<unknown>;
    (q as unknown as { add: typeof add }).add = (data, opts) => {
      startJobs.push((data as { requestId: string }).requestId);
      return add(data, opts);
    };
    const startNew = e.inbox.startNew.bind(e.inbox);
    e.inbox.startNew = async (record: RequestRecord) => {
      const stored = await startNew(record);
      offered.push({ id: record.id, taken: stored !== undefined });
      return stored;
    };
    const insertRequest = e.committer.insertRequest.bind(e.committer);
    e.committer.insertRequest = (record, access, runs, openRow) => {
      inserted.set(record.id, { status: record.status, hold: null, runs: runs?.length ?? 0 });
      return insertRequest(record, access, runs, openRow);
    };
    const insertKeyed = e.committer.insertKeyed.bind(e.committer);
    e.committer.insertKeyed = (row: IntakeInsert) => {
      inserted.set(row.record.id, { status: row.record.status, hold: row.hold, runs: 0 });
      return insertKeyed(row);
    };
    e.bus.on('RequestFinished', ({ requestId, callback }) => void ends.set(requestId, callback));
    await e.start({ engine: true, worker: true });
  });

  after(async function () {
    this.timeout(30_000);
    if (gate) removeGate(gate);
    await engine?.stop().catch(() => undefined);
    await db?.drop();
    if (prefix) await cleanRedisPrefix(redisUrl, prefix);
  });

  const rowOf = async (id: string): Promise<{ status: string; rev: number }> => {
    const [r] = await engine.store.query<{ status: string; rev: unknown }>('SELECT status, rev FROM requests WHERE id = ?', [id]);
    return { status: r!.status, rev: Number(r!.rev) };
  };
  // The store's reader: an attempt open in the request's row is one of its runs (migration 1763800000370).
  const runsOf = async (id: string): Promise<Array<[string, string, string | null]>> =>
    (await engine.store.listStepRuns(id)).map((r) => [r.stepId, r.status, r.transport]);
  const completed = (id: string): Promise<true> => waitFor(`request ${id} to complete`, async () => (await rowOf(id)).status === 'completed' || undefined, 20_000, 20);

  it('stores a plain request running, with its first run, in one commit; no start job; it completes, each step once', async () => {
    gate = installGate();
    const batches = engine.committer.stats.batches;
    const answered = await engine.intake.submit({ pipelineId: 'sas-plain', payload: { i: 1 } });
    const id = answered.id;
    expect(engine.committer.stats.batches - batches, 'one transaction for the submit and the start').to.equal(1);
    expect({ status: answered.status, rev: answered.rev }, 'the answer says what is stored').to.deep.equal({ status: 'running', rev: 1 });
    expect(offered).to.deep.equal([{ id, taken: true }]);
    expect(inserted.get(id), 'inserted already started, with its first run').to.deep.equal({ status: 'running', hold: null, runs: 1 });
    expect(await rowOf(id)).to.deep.equal({ status: 'running', rev: 1 });
    expect(await runsOf(id)).to.deep.equal([['held', 'dispatched', 'event']]);
    await waitFor('its first step running', () => gate.running === 1 || undefined, 10_000, 10);
    openGate(gate);
    await completed(id);
    expect(await runsOf(id)).to.deep.equal([['held', 'completed', 'event'], ['remote', 'completed', 'queue']]);
    expect(startJobs, 'no start went through conveyor:requests').to.deep.equal([]);
    expect(gate.started).to.deep.equal([1]);
    await waitFor('its end event', () => ends.has(id) || undefined, 10_000, 10);
    expect(ends.get(id), 'known to have no callback: none is claimed').to.equal(false);
  });

  it('maxActive (bounded across processes in the store): stored buffered under the gate, started through conveyor:requests', async () => {
    gate = installGate();
    openGate(gate);
    offered.length = 0;
    const { id } = await engine.intake.submit({ pipelineId: 'sas-capped', payload: { i: 2 } });
    expect(offered, 'never offered to start at submit').to.deep.equal([]);
    expect(inserted.get(id)).to.deep.equal({ status: 'buffered', hold: 'gate', runs: 0 });
    await completed(id);
    expect(startJobs, 'released, then started through the queue').to.deep.equal([id]);
    expect(await runsOf(id)).to.deep.equal([['held', 'completed', 'event'], ['remote', 'completed', 'queue']]);
    expect(await rowOf(id)).to.deep.equal({ status: 'completed', rev: 3 });
  });

  it('beyond the engine\'s admission cap: stored buffered, its start queued, started once room frees', async () => {
    gate = installGate();
    offered.length = 0;
    startJobs.length = 0;
    const first = (await engine.intake.submit({ pipelineId: 'sas-plain', payload: { i: 3 } })).id;
    await waitFor('the first request held', () => gate.running === 1 || undefined, 10_000, 10);
    // maxInFlight 1: the first request fills this engine.
    const second = (await engine.intake.submit({ pipelineId: 'sas-plain', payload: { i: 4 } })).id;
    expect(offered).to.deep.equal([{ id: first, taken: true }, { id: second, taken: false }]);
    expect(inserted.get(second)).to.deep.equal({ status: 'buffered', hold: null, runs: 0 });
    expect(startJobs, 'the second start went through conveyor:requests').to.deep.equal([second]);
    openGate(gate);
    await completed(first);
    await completed(second);
    for (const id of [first, second]) expect(await runsOf(id)).to.deep.equal([['held', 'completed', 'event'], ['remote', 'completed', 'queue']]);
    expect(gate.started).to.deep.equal([3, 4]);
  });
});
