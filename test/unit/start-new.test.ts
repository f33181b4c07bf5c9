/**
 * `decideNewStart` (src/supervisor/start-new.ts): which new requests may be stored already
 * started. A plain pipeline may; one whose bound is kept in the store across processes
 * (`rate`, `maxActive`) may not, whatever intake hands over.
 */
import { expect } from 'chai';
import type { RequestRecord } from '../../src/model';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledPipeline } from '../../src/pipeline/types';
import type { DecisionEnv } from '../../src/supervisor/decide';
import { decideNewStart } from '../../src/supervisor/start-new';

const NOW = 1000;
const OPTIONS = { leaseGraceMs: 10_000, queueLeaseMs: 600_000, deferDispatch: false, alertChannels: [] };

function compile(intake: Record<string, unknown> | undefined): CompiledPipeline {
  const def = { id: 'p', start: 'a', ...(intake ? { intake } : {}), steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm', prev: ['a'] } } };
  const res = compilePipeline(def, { source: 'pipelines/p', modules: new Set(['m']) });
  expect(res.issues.map((i) => `${i.path}: ${i.message}`)).to.deep.equal([]);
  return res.pipeline!;
}

const env = (): DecisionEnv => {
  let n = 0;
  return {
    now: NOW, newId: () => `run-${++n}`, random: () => 0.5,
    retryPolicy: () => ({ attempts: 1, backoffMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0 }),
    transportOf: () => 'event',
  };
};

const record = (): RequestRecord => ({
  id: 'req-1', pipelineId: 'p', version: 1, status: 'buffered', businessKey: null, idempotencyKey: null, mode: null, test: false,
  payload: {}, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: NOW, createdAt: NOW, updatedAt: NOW, finishedAt: null,
});

describe('decideNewStart: which new requests are stored already started', () => {
  it('a plain pipeline: running at rev 1, with its first run dispatched', () => {
    const start = decideNewStart(compile(undefined), record(), env(), OPTIONS);
    expect(start).to.not.equal(undefined);
    expect([start!.started.status, start!.started.rev]).to.deep.equal(['running', 1]);
    expect(start!.decision.commit.insertRuns.map((r) => [r.stepId, r.status])).to.deep.equal([['a', 'dispatched']]);
  });

  it('maxActive (a bound across processes, counted in the store): never', () => {
    expect(decideNewStart(compile({ maxActive: 3 }), record(), env(), OPTIONS)).to.equal(undefined);
  });

  it('a rate policy (its first dispatch claims a slot in the store): never', () => {
    expect(decideNewStart(compile({ rate: { max: 5, per: '1s' } }), record(), env(), OPTIONS)).to.equal(undefined);
  });
});
