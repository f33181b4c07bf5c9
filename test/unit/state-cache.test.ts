/**
 * The supervisor's state cache (src/supervisor/state-cache.ts): a request whose every open run
 * can be answered to another engine (a queue step sent, a `202` callback) is parked, so it is
 * no longer counted in flight here; an event for it makes it active again; parked states are
 * bounded, oldest dropped first.
 */
import { expect } from 'chai';
import type { RequestRecord } from '../../src/model';
import type { CompiledPipeline } from '../../src/pipeline/types';
import type { OpenRun, RequestState } from '../../src/supervisor/decision';
import { remoteOnly, StateCache } from '../../src/supervisor/state-cache';

const pipeline = {
  id: 'p',
  steps: {},
  delivery: { q: { transport: 'queue' }, e: { transport: 'event' }, h: { transport: 'http' } },
} as unknown as CompiledPipeline;

function run(id: string, stepId: string, status: OpenRun['status']): OpenRun {
  return { id, stepId, attempt: 1, seq: 1, status, availableAt: null, causedBy: null, startedAt: 0 };
}

function state(id: string, runs: OpenRun[]): RequestState {
  return { request: { id, pipelineId: 'p', version: 1 } as RequestRecord, context: {}, open: new Map(runs.map((r) => [r.id, r])), lastSeq: 1 };
}

describe('state cache: parked states', () => {
  it('remoteOnly: every open run a queue step sent, or waiting for a callback', () => {
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched')]))).to.equal(true);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched'), run('2', 'h', 'waiting')]))).to.equal(true);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'dispatched'), run('2', 'e', 'dispatched')])), 'an in-process answer comes here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [run('1', 'q', 'pending')])), 'a retry timer is armed here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [run('1', 'h', 'dispatched')])), 'an HTTP answer comes here').to.equal(false);
    expect(remoteOnly(pipeline, state('a', [])), 'nothing open').to.equal(false);
  });

  it('parks such a state: not counted, still found, and active again once an event takes it', () => {
    const cache = new StateCache();
    const s = state('a', [run('1', 'q', 'dispatched')]);
    cache.set('a', s);
    cache.set('b', state('b', [run('2', 'e', 'dispatched')]));
    cache.parkIfRemote('a', pipeline);
    cache.parkIfRemote('b', pipeline);
    expect([cache.size, cache.parkedCount]).to.deep.equal([1, 1]);
    expect([...cache.entries()].map(([id]) => id)).to.deep.equal(['b']);
    expect(cache.has('a')).to.equal(true);
    expect(cache.get('a')).to.equal(s);
    expect([cache.size, cache.parkedCount], 'taken by an event: in flight here again').to.deep.equal([2, 0]);
    cache.parkIfRemote('a', pipeline);
    cache.delete('a');
    expect([cache.size, cache.parkedCount, cache.has('a')]).to.deep.equal([1, 0, false]);
    cache.parkIfRemote('b', undefined);
    expect(cache.size, 'without its pipeline a state stays as it is').to.equal(1);
  });

  it('keeps at most its bound of parked states, the oldest dropped first', () => {
    const cache = new StateCache(3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      cache.set(id, state(id, [run(`r-${id}`, 'q', 'dispatched')]));
      cache.parkIfRemote(id, pipeline);
    }
    expect([cache.size, cache.parkedCount]).to.deep.equal([0, 3]);
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => cache.has(id))).to.deep.equal([false, false, true, true, true]);
  });

  it('a run accepted for a callback is marked waiting, and the state parked when nothing else is answered here', () => {
    const cache = new StateCache();
    const a = state('a', [run('1', 'h', 'dispatched')]);
    const b = state('b', [run('2', 'h', 'dispatched'), run('3', 'e', 'dispatched')]);
    cache.set('a', a);
    cache.set('b', b);
    cache.runWaiting('a', '1', 42, () => pipeline);
    cache.runWaiting('b', '2', 43, () => pipeline);
    cache.runWaiting('b', 'no-such-run', 44, () => pipeline);
    expect(a.open.get('1')!.status).to.equal('waiting');
    expect(b.open.get('2')!.status).to.equal('waiting');
    expect([...cache.entries()].map(([id]) => id), 'b still has an in-process run').to.deep.equal(['b']);
    expect(cache.parkedCount).to.equal(1);
  });
});
