/**
 * Memory stays bounded under a flood (docs/performance.md#admission-control):
 * - intake stores at most MAX_PENDING_INSERTS submissions at once; further callers wait
 *   before their request is built;
 * - the group commit gives step results at least half of every batch, so a flood of new
 *   requests does not stall the ones already running.
 */
import { expect } from 'chai';
import * as path from 'node:path';
import { MAX_PENDING_INSERTS } from '../../src/intake/intake';
import type { RequestCommit, RequestRecord } from '../../src/model';
import { GroupCommitter } from '../../src/store/group-commit';
import type { Store } from '../../src/store/store';
import type { WriteBatch } from '../../src/store/write';
import { startTestEngine } from '../support/engine';

describe('backpressure: bounded intake, fair group commit', function () {
  this.timeout(60_000);

  it(`intake stores at most ${MAX_PENDING_INSERTS} submissions at once; the rest wait their turn, and every one is stored`, async () => {
    const t = await startTestEngine({ pipelinesDir: path.join(__dirname, '..', '..', 'scripts', 'bench', 'fixtures', 'pipelines'), modulesDir: path.join(__dirname, '..', '..', 'scripts', 'bench', 'fixtures', 'modules'), listen: false });
    try {
      const n = MAX_PENDING_INSERTS + 1000;
      const all = Array.from({ length: n }, (_, i) => t.engine.intake.submit({ pipelineId: 'bench-three', payload: { i } }));
      // The turn is decided when each call is made: the first MAX store, the rest wait.
      expect(t.engine.intake.pending).to.deep.equal({ storing: MAX_PENDING_INSERTS, waiting: 1000 });
      const stored = await Promise.all(all);
      expect(new Set(stored.map((r) => r.id)).size).to.equal(n);
      expect(t.engine.intake.pending).to.deep.equal({ storing: 0, waiting: 0 });
      const rows = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'bench-three'");
      expect(Number(rows[0]!.n)).to.equal(n);
    } finally {
      await t.close();
    }
  });

  it('a waiting submission that fails rejects alone, and its slot passes on', async () => {
    const t = await startTestEngine({ pipelinesDir: path.join(__dirname, '..', '..', 'scripts', 'bench', 'fixtures', 'pipelines'), modulesDir: path.join(__dirname, '..', '..', 'scripts', 'bench', 'fixtures', 'modules'), listen: false });
    try {
      const first = Array.from({ length: MAX_PENDING_INSERTS }, (_, i) => t.engine.intake.submit({ pipelineId: 'bench-three', payload: { i } }));
      const bad = t.engine.intake.submit({ pipelineId: 'no-such-pipeline', payload: {} });
      const after = Array.from({ length: 10 }, (_, i) => t.engine.intake.submit({ pipelineId: 'bench-three', payload: { after: i } }));
      expect(t.engine.intake.pending).to.deep.equal({ storing: MAX_PENDING_INSERTS, waiting: 11 });
      const err = await bad.then(() => undefined, (e: unknown) => e as { status?: number; code?: string });
      expect(err?.status, 'the unknown pipeline is refused when its turn comes').to.equal(404);
      const stored = await Promise.all([...first, ...after]);
      expect(stored).to.have.length(MAX_PENDING_INSERTS + 10);
      expect(t.engine.intake.pending).to.deep.equal({ storing: 0, waiting: 0 });
    } finally {
      await t.close();
    }
  });

  it('under a flood of new requests, step results take half of each batch', async () => {
    const batches: Array<{ requests: number; commits: number }> = [];
    const store = {
      write: (b: WriteBatch) => {
        batches.push({ requests: b.newRequests.length, commits: b.commits.length });
        return Promise.resolve(b.commits.map(() => true));
      },
    } as unknown as Store;
    const committer = new GroupCommitter(store, 100);
    const record = (i: number) => ({ id: `r${i}` }) as RequestRecord;
    const commit = (i: number) => ({ requestId: `c${i}` }) as RequestCommit;
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < 300; i++) pending.push(committer.insertRequest(record(i)));
    for (let i = 0; i < 80; i++) pending.push(committer.commit(commit(i)));
    await Promise.all(pending);
    // 380 items, 100 a batch: results take half of each batch until they are done, requests
    // the rest; then requests alone.
    expect(batches).to.deep.equal([{ requests: 50, commits: 50 }, { requests: 70, commits: 30 }, { requests: 100, commits: 0 }, { requests: 80, commits: 0 }]);
  });

  it('with few new requests, results fill the batch', async () => {
    const batches: Array<{ requests: number; commits: number }> = [];
    const store = { write: (b: WriteBatch) => (batches.push({ requests: b.newRequests.length, commits: b.commits.length }), Promise.resolve(b.commits.map(() => true))) } as unknown as Store;
    const committer = new GroupCommitter(store, 100);
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < 10; i++) pending.push(committer.insertRequest({ id: `r${i}` } as RequestRecord));
    for (let i = 0; i < 150; i++) pending.push(committer.commit({ requestId: `c${i}` } as RequestCommit));
    await Promise.all(pending);
    expect(batches).to.deep.equal([{ requests: 10, commits: 90 }, { requests: 0, commits: 60 }]);
  });
});

describe('group commit: the step commits waiting for the store (admission control reads it)', () => {
  it('counts commits handed in until each is answered, not new requests; tells its listener on the turn after each batch', async () => {
    const answers: Array<(ok: boolean[]) => void> = [];
    const store = { write: (b: WriteBatch) => new Promise<boolean[]>((resolve) => answers.push(() => resolve(b.commits.map(() => true)))) } as unknown as Store;
    const committer = new GroupCommitter(store, 100);
    let told = 0;
    committer.onAnswered(() => told++);
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < 3; i++) pending.push(committer.insertRequest({ id: `r${i}` } as RequestRecord));
    for (let i = 0; i < 4; i++) pending.push(committer.commit({ requestId: `c${i}` } as RequestCommit));
    expect(committer.pendingCommits, 'waiting for a batch').to.equal(4);
    await new Promise((r) => setImmediate(r));
    expect(answers, 'one batch being written').to.have.length(1);
    expect(committer.pendingCommits, 'being written').to.equal(4);
    answers[0]!([]);
    await Promise.all(pending);
    expect(committer.pendingCommits).to.equal(0);
    expect(told, 'not before the next turn').to.equal(0);
    await new Promise((r) => setImmediate(r));
    expect(told).to.equal(1);
  });

  it('a failed batch written again one item at a time: each commit stops counting as it is answered', async () => {
    let calls = 0;
    const seen: number[] = [];
    const ref: { committer?: GroupCommitter } = {};
    const store = {
      write: (b: WriteBatch) => {
        calls++;
        if (calls === 1) return Promise.reject(new Error('batch refused'));
        seen.push(ref.committer!.pendingCommits);
        return b.commits[0]?.requestId === 'c1' ? Promise.reject(new Error('c1 refused')) : Promise.resolve(b.commits.map(() => true));
      },
    } as unknown as Store;
    const committer = (ref.committer = new GroupCommitter(store, 100));
    const results = await Promise.allSettled([0, 1, 2].map((i) => committer.commit({ requestId: `c${i}` } as RequestCommit)));
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(seen, 'pending while each is written alone').to.deep.equal([3, 2, 1]);
    expect(committer.pendingCommits).to.equal(0);
  });
});
