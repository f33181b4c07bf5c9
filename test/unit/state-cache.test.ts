/**
 * The supervisor's state cache (src/supervisor/state-cache.ts): the states idle a while whose
 * open runs may all be answered to another engine (a queue step sent, a `202` callback) are
 * checked against the store, and dropped when their request moved on elsewhere or ended, so
 * admission control stops counting them; a state still current, or used meanwhile, stays.
 */
import { expect } from 'chai';
import type { RequestRecord } from '../../src/model';
import type { CompiledPipeline } from '../../src/pipeline/types';
import type { OpenRun, RequestState } from '../../src/supervisor/decision';
import { MovedStates, remoteOnly, StateCache } from '../../src/supervisor/state-cache';

const pipeline = {
  id: 'p',
  steps: {},
  delivery: { q: { transport: 'queue' }, e: { transport: 'event' }, h: { transport: 'http' } },
} as unknown as CompiledPipeline;

function run(id: string, stepId: string, status: OpenRun['status']): OpenRun {
  return { id, stepId, attempt: 1, seq: 1, status, availableAt: null, causedBy: null, startedAt: 0 };
}

function state(id: string, runs: OpenRun[], rev = 3): RequestState {
  return { request: { id, pipelineId: 'p', version: 1, rev, status: 'running' } as RequestRecord, context: {}, open: new Map(runs.map((r) => [r.id, r])), lastSeq: 1 };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('state cache: states whose requests moved on elsewhere', () => {
  it('remoteOnly: every open run a queue step sent, or waiting for a callback', () => {
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched')]))).to.equal(true);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched'), run('2', 'h', 'waiting')]))).to.equal(true);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched'), run('2', 'e', 'dispatched')])), 'an in-process answer comes here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'pending')])), 'a retry timer is armed here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [run('1', 'h', 'dispatched')])), 'an HTTP answer comes here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [])), 'nothing open').to.equal(false);
  });

  it('names the idle remote-only states, least recently used first, up to a limit', async () => {
    const cache = new StateCache();
    for (const id of ['a', 'b', 'c', 'd']) cache.set(id, state(id, [run(`r-${id}`, id === 'c' ? 'e' : 'q', 'dispatched')]));
    await sleep(5);
    const before = Date.now();
    cache.get('a'); // used again: now the most recent
    cache.set('e', state('e', [run('r-e', 'q', 'dispatched')]));
    const ids = (limit: number): string[] => cache.idleRemote(before, limit, () => pipeline).map((s) => s.request.id);
    expect(ids(10), 'c answers here, a and e were used since').to.deep.equal(['b', 'd']);
    expect(ids(1)).to.deep.equal(['b']);
    expect(cache.idleRemote(before, 10, () => undefined), 'a pipeline not compiled here: left alone').to.deep.equal([]);
    cache.delete('b');
    expect([cache.size, cache.has('b')]).to.deep.equal([4, false]);
  });

  it('drops the states whose requests moved on, ended or are gone; keeps current ones and ones used meanwhile', async () => {
    const cache = new StateCache();
    const ids = ['moved', 'ended', 'gone', 'current', 'busy', 'local'];
    for (const id of ids) cache.set(id, state(id, [run(`r-${id}`, id === 'local' ? 'e' : 'q', 'dispatched')]));
    await sleep(30);
    let dropped = 0;
    const stored: Record<string, Partial<RequestRecord>> = { moved: { rev: 4, status: 'running' }, ended: { rev: 3, status: 'completed' }, current: { rev: 3, status: 'running' }, busy: { rev: 4, status: 'running' } };
    const asked: string[][] = [];
    const moved = new MovedStates({
      cache,
      pipelineOf: () => pipeline,
      read: async (want) => {
        asked.push(want);
        // While the rows are read, this process commits a step of `busy`: its state is current again.
        cache.peek('busy')!.request.rev = 4;
        return want.filter((id) => stored[id]).map((id) => ({ id, ...stored[id] }) as RequestRecord);
      },
      dropped: (n) => (dropped += n),
      logger: { warn: () => expect.fail('no read failed') },
    }, 20);
    expect(await moved.check()).to.equal(3);
    expect(asked, 'only the idle remote-only states are read').to.deep.equal([['moved', 'ended', 'gone', 'current', 'busy']]);
    expect(ids.filter((id) => cache.has(id))).to.deep.equal(['current', 'busy', 'local']);
    expect([dropped, cache.size]).to.deep.equal([3, 3]);
    expect(await moved.check(), 'the rest is current').to.equal(0);
  });

  it('a store that cannot answer drops nothing, says so once per check, and the next check tries again', async () => {
    const cache = new StateCache();
    cache.set('a', state('a', [run('r', 'q', 'dispatched')]));
    await sleep(15);
    let fail = true;
    const warned: Array<[string, unknown]> = [];
    const moved = new MovedStates({
      cache, pipelineOf: () => pipeline, dropped: () => undefined, logger: { warn: (m: string, f?: unknown) => void warned.push([m, f]) },
      read: async () => {
        if (fail) throw new Error('database down');
        return [];
      },
    }, 10);
    expect(await moved.check()).to.equal(0);
    expect(cache.has('a')).to.equal(true);
    expect(warned).to.deep.equal([['check of cached states failed', { error: 'database down' }]]);
    fail = false;
    expect(await moved.check()).to.equal(1);
    expect(warned).to.have.length(1);
  });
});
