/**
 * 10,000 requests wait for events and cost only rows: the supervisor keeps none of them in
 * memory. Then events wake them: 1,000 each by its own key (one `POST /api/events/wake` per
 * request), the other 9,000 in three groups of 3,000 that share a key (one event each). Time
 * and memory are measured and printed.
 */
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { startTestEngine, type TestEngine } from '../support/engine';
import { pollUntil } from '../support/poll';

const FIXTURES = path.join(__dirname, 'fixtures', 'waiting');
const TOTAL = 10_000;
const OWN_KEYS = 1_000;
const GROUPS = 3;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

describe(`${TOTAL.toLocaleString('en')} waiting requests: rows only, then woken by events`, function () {
  this.timeout(300_000);
  let t: TestEngine;

  before(async () => {
    t = await startTestEngine({ pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules') });
  });
  after(() => t?.close());

  const count = async (status: string): Promise<number> => {
    const [row] = await t.engine.store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM requests WHERE status = ?', [status]);
    return Number(row?.n);
  };
  const untilCount = async (status: string, n: number, ms: number): Promise<void> => {
    await pollUntil(() => count(status), (c) => c >= n, { timeoutMs: ms, everyMs: 50, failure: async () => `only ${await count(status)} of ${n} requests are ${status}` });
  };

  it('holds no memory for waiting requests, and wakes every one exactly once', async () => {
    const heapBefore = heapMb();
    let started = Date.now();
    for (let i = 0; i < TOTAL; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, TOTAL - i) }, (_v, j) => {
        const n = i + j;
        return t.engine.intake.submit({ pipelineId: 'wake', payload: { n, key: n < OWN_KEYS ? `own-${n}` : `group-${n % GROUPS}` } });
      }));
    }
    await untilCount('waiting', TOTAL, 120_000);
    const insertMs = Date.now() - started;
    const heapWaiting = heapMb();
    expect(t.engine.supervisor.cachedCount, 'no waiting request is cached').to.equal(0);
    const open = await t.engine.store.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM step_runs WHERE status = 'waiting' AND wait_event = 'wake'");
    expect(Number(open[0]!.n)).to.equal(TOTAL);

    // Half: one event per request, by its own key, 50 calls at a time (over kept-alive connections).
    started = Date.now();
    let woken = 0;
    const wake = async (key: string, by: string): Promise<number> => {
      const res = await fetch(`${t.url}/api/events/wake`, {
        method: 'POST', headers: { authorization: `Bearer ${t.keys.submit}`, 'content-type': 'application/json' }, body: JSON.stringify({ key, data: { by } }),
      });
      expect(res.status).to.equal(200);
      return ((await res.json()) as { woken: number }).woken;
    };
    for (let i = 0; i < OWN_KEYS; i += 50) {
      const answers = await Promise.all(Array.from({ length: Math.min(50, OWN_KEYS - i) }, (_v, j) => wake(`own-${i + j}`, 'own')));
      woken += answers.reduce((a, b) => a + b, 0);
    }
    expect(woken).to.equal(OWN_KEYS);
    const ownMs = Date.now() - started;

    // The others: one event per group wakes the whole group.
    started = Date.now();
    for (let g = 0; g < GROUPS; g++) expect(await wake(`group-${g}`, 'group')).to.equal((TOTAL - OWN_KEYS) / GROUPS);
    const sharedMs = Date.now() - started;

    await untilCount('completed', TOTAL, 120_000);
    const allMs = Date.now() - started;
    // A second event finds nobody: each wait was woken once.
    expect(await wake('group-0', 'again')).to.equal(0);
    expect(await wake('own-0', 'again')).to.equal(0);
    const runs = await t.engine.store.query<{ step_id: string; status: string; n: unknown }>('SELECT step_id, status, COUNT(*) AS n FROM step_runs GROUP BY step_id, status ORDER BY step_id');
    expect(runs.map((r) => `${r.step_id}:${r.status}:${Number(r.n)}`)).to.deep.equal([`after:completed:${TOTAL}`, `wait:completed:${TOTAL}`]);
    const sample = await t.engine.getRequest((await t.engine.store.listRequestIds(['completed'], 1))[0]!);
    expect(sample!.context.after).to.have.property('by').that.is.oneOf(['own', 'group']);
    expect(t.engine.supervisor.cachedCount).to.equal(0);
    const heapAfter = heapMb();

    console.log(
      `      ${TOTAL} requests: submitted and waiting in ${insertMs} ms; heap ${heapBefore.toFixed(1)} MB before, ` +
        `${heapWaiting.toFixed(1)} MB with all waiting (+${(heapWaiting - heapBefore).toFixed(1)} MB, ` +
        `${(((heapWaiting - heapBefore) * 1024 * 1024) / TOTAL).toFixed(0)} B per request), ${heapAfter.toFixed(1)} MB after; ` +
        `supervisor cache ${t.engine.supervisor.cachedCount}`,
    );
    console.log(`      woken: ${OWN_KEYS} by their own keys in ${ownMs} ms (${Math.round(OWN_KEYS / (ownMs / 1000))}/s); ` +
      `${TOTAL - OWN_KEYS} by ${GROUPS} shared keys in ${sharedMs} ms (${Math.round((TOTAL - OWN_KEYS) / (sharedMs / 1000))}/s); ` +
      `all completed ${allMs} ms after the first group event`);
    // Waiting requests are rows, not objects: well under a kilobyte of heap each.
    expect((heapWaiting - heapBefore) * 1024 * 1024 / TOTAL).to.be.below(1024);
  });
});
