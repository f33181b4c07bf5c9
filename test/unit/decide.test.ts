/**
 * The supervisor's pure core, driven with tables. Pipelines are compiled from realistic
 * definitions with `compilePipeline`; request state is rebuilt from stored-looking records
 * with `buildState`, and every decision is applied both to the shell's cache
 * (`applyDecision`) and to a tiny in-memory "store" whose rebuilt state must agree.
 */
import { expect } from 'chai';
import { ErrorCodes, type StepError } from '../../src/errors';
import type { RequestRecord, StepRunRecord } from '../../src/model';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from '../../src/pipeline/types';
import {
  applyDecision, computeBackoff, decide, idempotencyKeyOf, type Decision, type DecisionEnv, type Outcome, type RequestState,
} from '../../src/supervisor/decide';
import { unresumableParams } from '../../src/supervisor/resumable';
import { buildState } from '../../src/supervisor/state';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = Record<string, any>;

const MODULES: ReadonlySet<string> = new Set(['m', 'check', 'flaky', 'status']);
const NOW = 1000;
/** The policy for module steps that set no `retry`: one attempt. */
const NO_RETRY: RetryPolicy = { attempts: 1, backoffMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0.2 };

function compile(def: Def): CompiledPipeline {
  const res = compilePipeline(def, { source: `pipelines/${String(def.id)}`, modules: MODULES });
  expect(res.issues.map((i) => `${i.path}: ${i.message}`), 'fixture pipeline must be valid').to.deep.equal([]);
  return res.pipeline!;
}

/** The deterministic env the brief asks for: fixed clock, counter ids, random 0.5. */
function makeEnv(now = NOW): DecisionEnv & { ids: string[] } {
  let counter = 0;
  const ids: string[] = [];
  return {
    now,
    ids,
    newId: () => {
      const id = `run-${String(++counter).padStart(3, '0')}`;
      ids.push(id);
      return id;
    },
    random: () => 0.5,
    retryPolicy: (step: CompiledStep) => (step.kind === 'module' ? step.retry ?? NO_RETRY : { ...NO_RETRY, attempts: 1 }),
    transportOf: () => 'event',
  };
}

function newRequest(pipeline: CompiledPipeline, payload: Record<string, unknown> = {}): RequestRecord {
  return {
    id: 'req-1', pipelineId: pipeline.id, version: 1, status: 'buffered', businessKey: null, idempotencyKey: null,
    mode: null, test: false, payload, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: NOW,
    createdAt: NOW, updatedAt: NOW, finishedAt: null,
  };
}

const retryable = (message = 'boom'): StepError => ({ code: ErrorCodes.MODULE_FAILED, message, retryable: true });
const fatal = (message = 'bad input'): StepError => ({ code: ErrorCodes.NON_RETRYABLE, message, retryable: false });

/**
 * One request as the store would hold it: the request row and its step runs. Decisions are
 * "committed" into it, and the state is rebuilt from it with `buildState` after each one,
 * and compared with the state that `applyDecision` keeps incrementally.
 */
class Sim {
  request: RequestRecord;
  runs: StepRunRecord[] = [];
  cache: RequestState;
  readonly decisions: Decision[] = [];

  constructor(
    readonly pipeline: CompiledPipeline,
    payload: Record<string, unknown> = {},
    readonly env: DecisionEnv & { ids: string[] } = makeEnv(),
  ) {
    this.request = newRequest(pipeline, payload);
    this.cache = buildState(this.request, this.runs);
  }

  state(): RequestState {
    return buildState(structuredClone(this.request), structuredClone(this.runs));
  }

  /** Decides on the rebuilt state; commits and applies when there is a decision. */
  step(outcome: Outcome): Decision | null {
    const d = decide(this.pipeline, this.state(), outcome, this.env);
    const cached = decide(this.pipeline, this.cache, outcome, { ...this.env, newId: () => 'unused' });
    expect(cached === null, 'the cache and the rebuilt state decide alike').to.equal(d === null);
    if (!d) return null;
    this.commit(d);
    applyDecision(this.cache, d);
    const rebuilt = this.state();
    expect([...this.cache.open.keys()].sort()).to.deep.equal([...rebuilt.open.keys()].sort());
    expect(this.cache.context).to.deep.equal(rebuilt.context);
    expect(this.cache.lastSeq).to.equal(rebuilt.lastSeq);
    expect(this.cache.request).to.deep.equal(rebuilt.request);
    this.decisions.push(d);
    return d;
  }

  start(): Decision {
    return this.must(this.step({ type: 'start' }));
  }

  complete(stepId: string, output: unknown = {}): Decision {
    return this.must(this.step({ type: 'completed', runId: this.openRunOf(stepId).id, output, finishedAt: NOW, durationMs: 5 }));
  }

  fail(stepId: string, error: StepError): Decision {
    return this.must(this.step({ type: 'failed', runId: this.openRunOf(stepId).id, error, finishedAt: NOW, durationMs: 5 }));
  }

  openRunOf(stepId: string): StepRunRecord {
    const open = this.runs.filter((r) => r.stepId === stepId && ['pending', 'dispatched', 'waiting'].includes(r.status));
    expect(open, `exactly one open run of "${stepId}"`).to.have.length(1);
    return open[0]!;
  }

  /** A pending run comes due and is claimed (pending → dispatched), as the shell's timer does. */
  claim(stepId: string): void {
    const run = this.openRunOf(stepId);
    run.status = 'dispatched';
    this.cache.open.get(run.id)!.status = 'dispatched';
  }

  runsOf(stepId: string): StepRunRecord[] {
    return this.runs.filter((r) => r.stepId === stepId);
  }

  private must(d: Decision | null): Decision {
    expect(d, 'a decision').to.not.equal(null);
    return d!;
  }

  /** What the store does with a commit (minus the SQL). */
  private commit(d: Decision): void {
    const c = d.commit;
    expect(c.requestId).to.equal(this.request.id);
    expect(c.expectRev, 'decided on the current rev').to.equal(this.request.rev);
    this.request = { ...this.request, ...c.request, rev: this.request.rev + 1 };
    if (c.finishRun) {
      const f = c.finishRun;
      const run = this.runs.find((r) => r.id === f.id);
      expect(run?.status, `finishRun targets an open run`).to.be.oneOf(['pending', 'dispatched', 'waiting']);
      Object.assign(run!, { status: f.status, output: f.output ?? null, error: f.error ?? null, assigned: f.assigned ?? null, finishedAt: f.finishedAt, durationMs: f.durationMs });
    }
    if (c.repollRun) {
      const p = c.repollRun;
      const run = this.runs.find((r) => r.id === p.id);
      expect(run?.status, 'a repoll targets the poll in flight').to.equal('dispatched');
      Object.assign(run!, { status: 'pending', availableAt: p.availableAt, polls: p.polls, output: p.output, lastPollAt: p.lastPollAt });
    }
    for (const id of c.cancelRuns) {
      const run = this.runs.find((r) => r.id === id)!;
      expect(run.status).to.be.oneOf(['pending', 'dispatched', 'waiting']);
      run.status = 'cancelled';
    }
    this.runs.push(...structuredClone(c.insertRuns));
  }
}

const stepsOf = (runs: readonly StepRunRecord[]): string[] => runs.map((r) => r.stepId);

describe('supervisor decide()', () => {
  describe('start', () => {
    const pipeline = compile({ id: 'lin', start: 'a', steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm' } } });

    it('dispatches the first run and marks the request running', () => {
      const sim = new Sim(pipeline);
      const d = sim.start();
      expect(d.commit.request.status).to.equal('running');
      expect(d.commit.expectRev).to.equal(0);
      expect(d.commit.finishRun).to.equal(undefined);
      expect(d.commit.cancelRuns).to.deep.equal([]);
      expect(d.commit.request.stepCount).to.equal(1);
      expect(d.commit.request.finishedAt).to.equal(null);
      expect(d.finished).to.equal(undefined);
      expect(d.schedule).to.deep.equal([]);
      expect(d.dispatch).to.deep.equal(d.commit.insertRuns);
      expect(d.dispatch).to.have.length(1);
      const run = d.dispatch[0]!;
      expect(run).to.include({
        id: 'run-001', requestId: 'req-1', pipelineId: 'lin', stepId: 'a', seq: 1, attempt: 1, status: 'dispatched',
        kind: 'module', module: 'm', transport: 'event', causedBy: null, availableAt: null, startedAt: NOW, finishedAt: null,
      });
    });

    it('a second start of a request that already started is not news (null)', () => {
      const sim = new Sim(pipeline);
      sim.start();
      expect(sim.step({ type: 'start' })).to.equal(null);
    });

    it('a completed step routes through `next`, and the last step completes the request', () => {
      const sim = new Sim(pipeline);
      sim.start();
      const d1 = sim.complete('a', { v: 1 });
      expect(d1.commit.finishRun).to.include({ id: 'run-001', status: 'completed' });
      expect(d1.commit.finishRun!.output).to.deep.equal({ v: 1 });
      expect(d1.outputs).to.deep.equal([{ stepId: 'a', value: { v: 1 } }]);
      expect(stepsOf(d1.dispatch)).to.deep.equal(['b']);
      expect(d1.dispatch[0]).to.include({ seq: 2, attempt: 1, causedBy: 'run-001' });
      expect(d1.commit.request.status).to.equal('running');
      expect(d1.commit.expectRev).to.equal(1);
      const d2 = sim.complete('b', { v: 2 });
      expect(d2.dispatch).to.deep.equal([]);
      expect(d2.commit.request.status).to.equal('completed');
      expect(d2.commit.request.finishedAt).to.equal(NOW);
      expect(d2.finished).to.equal('completed');
      expect(sim.request.rev).to.equal(3);
      expect(sim.state().context).to.deep.include({ a: { v: 1 }, b: { v: 2 } });
    });
  });

  describe('routing (seed 002 rules)', () => {
    const pipeline = compile({
      id: 'route',
      start: 'check',
      steps: {
        check: {
          subsystem: 'check',
          next: ['dflt'],
          condition: [
            { field: 'check.kind', operation: 'eq', value: 'direct', result: ['viaResult'] },
            {
              field: 'check.kind', operation: 'eq', value: 'nested',
              success: [
                { field: 'check.sub', operation: 'eq', value: 'x', result: ['nestedX'] },
                { field: 'check.sub', operation: 'exists', result: ['nestedAny'] },
              ],
            },
            { field: 'check.kind', operation: 'eq', value: 'nested', result: ['afterNested'] },
            { field: 'check.kind', operation: 'eq', value: 'deep', success: [{ field: 'check.sub', operation: 'eq', value: 'z', result: ['nestedX'] }] },
            { field: 'check.kind', operation: 'eq', value: 'end', result: [] },
            { field: 'check.kind', operation: 'eq', value: 'fork', result: ['left', 'right'] },
            { field: 'payload.vip', operation: 'eq', value: true, result: ['viaResult'] },
          ],
        },
        dflt: { subsystem: 'm' },
        viaResult: { subsystem: 'm' },
        nestedX: { subsystem: 'm' },
        nestedAny: { subsystem: 'm' },
        afterNested: { subsystem: 'm' },
        left: { subsystem: 'm' },
        right: { subsystem: 'm' },
      },
    });

    const table: Array<{ name: string; output: unknown; payload?: Record<string, unknown>; routed: string[]; status: string }> = [
      { name: 'no entry holds → `next`', output: { kind: 'other' }, routed: ['dflt'], status: 'running' },
      { name: 'a condition result wins over `next`', output: { kind: 'direct' }, routed: ['viaResult'], status: 'running' },
      { name: 'nested success: first nested entry that holds wins (depth first)', output: { kind: 'nested', sub: 'x' }, routed: ['nestedX'], status: 'running' },
      { name: 'nested success: a later nested entry', output: { kind: 'nested', sub: 'y' }, routed: ['nestedAny'], status: 'running' },
      { name: 'success that finds nothing falls through to the next entry', output: { kind: 'nested' }, routed: ['afterNested'], status: 'running' },
      { name: 'success that finds nothing and no later entry → `next`', output: { kind: 'deep', sub: 'q' }, routed: ['dflt'], status: 'running' },
      { name: 'an empty result ends the branch (and here the request)', output: { kind: 'end' }, routed: [], status: 'completed' },
      { name: 'two targets start two parallel runs', output: { kind: 'fork' }, routed: ['left', 'right'], status: 'running' },
      { name: 'a condition may read the payload', output: { kind: 'other' }, payload: { vip: true }, routed: ['viaResult'], status: 'running' },
    ];

    for (const row of table) {
      it(row.name, () => {
        const sim = new Sim(pipeline, row.payload);
        sim.start();
        const d = sim.complete('check', row.output);
        expect(stepsOf(d.dispatch)).to.deep.equal(row.routed);
        expect(stepsOf(d.commit.insertRuns)).to.deep.equal(row.routed);
        expect(d.commit.request.status).to.equal(row.status);
        expect(d.finished).to.equal(row.status === 'completed' ? 'completed' : undefined);
        for (const run of d.dispatch) expect(run).to.include({ attempt: 1, status: 'dispatched', causedBy: 'run-001' });
        expect(d.dispatch.map((r) => r.seq)).to.deep.equal(row.routed.map((_, i) => i + 2));
        expect(d.commit.request.stepCount).to.equal(1 + row.routed.length);
      });
    }

    it('parallel branches: the request completes only when the last open run finishes', () => {
      const sim = new Sim(pipeline);
      sim.start();
      sim.complete('check', { kind: 'fork' });
      const dRight = sim.complete('right', { r: 1 });
      expect(dRight.dispatch).to.deep.equal([]);
      expect(dRight.commit.request.status).to.equal('running');
      expect(dRight.finished).to.equal(undefined);
      expect(dRight.commit.cancelRuns).to.deep.equal([]);
      const dLeft = sim.complete('left', { l: 1 });
      expect(dLeft.commit.request.status).to.equal('completed');
      expect(dLeft.finished).to.equal('completed');
      expect(sim.runs.every((r) => r.status === 'completed')).to.equal(true);
    });
  });

  describe('joins', () => {
    const joinDef = (): Def => ({
      id: 'join',
      start: 'a',
      steps: {
        a: { subsystem: 'm', next: ['b', 'c'], condition: [{ field: 'payload.only', operation: 'eq', value: 'b', result: ['b'] }] },
        b: { subsystem: 'm', next: ['j'] },
        c: { subsystem: 'm', next: ['j'] },
        j: { subsystem: 'm', prev: ['b', 'c'], join: 'all' },
      },
    });
    const pipeline = compile(joinDef());

    it('`join: all` waits for every prev and starts once', () => {
      const sim = new Sim(pipeline);
      sim.start();
      expect(stepsOf(sim.complete('a').dispatch)).to.deep.equal(['b', 'c']);
      const dB = sim.complete('b');
      expect(dB.dispatch).to.deep.equal([]);
      expect(dB.commit.request.joins).to.deep.equal({ j: ['b'] });
      expect(dB.commit.request.status).to.equal('running');
      expect(dB.notes.map((n) => n.message)).to.include('join waiting');
      const dC = sim.complete('c');
      expect(stepsOf(dC.dispatch)).to.deep.equal(['j']);
      expect(dC.dispatch[0]!.causedBy).to.equal(sim.runsOf('c')[0]!.id);
      expect(dC.commit.request.joins).to.deep.equal({});
      expect(sim.runsOf('j')).to.have.length(1);
      const dJ = sim.complete('j');
      expect(dJ.finished).to.equal('completed');
      expect(sim.runsOf('j')).to.have.length(1);
    });

    it('the join arrival order does not matter', () => {
      const sim = new Sim(pipeline);
      sim.start();
      sim.complete('a');
      expect(sim.complete('c').commit.request.joins).to.deep.equal({ j: ['c'] });
      expect(stepsOf(sim.complete('b').dispatch)).to.deep.equal(['j']);
    });

    it('a join that can never complete → error_stop CONVEYOR_ERR_JOIN_INCOMPLETE', () => {
      const sim = new Sim(pipeline, { only: 'b' });
      sim.start();
      expect(stepsOf(sim.complete('a').dispatch)).to.deep.equal(['b']);
      const bRun = sim.openRunOf('b');
      const d = sim.complete('b');
      expect(d.dispatch).to.deep.equal([]);
      expect(d.commit.request.status).to.equal('error_stop');
      expect(d.finished).to.equal('error_stop');
      expect(d.commit.request.error).to.include({ code: ErrorCodes.JOIN_INCOMPLETE, stepId: 'j', runId: bRun.id, attempt: 1 });
      expect(d.commit.request.finishedAt).to.equal(NOW);
    });
  });

  describe('failures and retries', () => {
    const pipeline = compile({
      id: 'fail',
      start: 'a',
      steps: {
        a: { subsystem: 'm', next: ['left', 'right'] },
        left: { subsystem: 'flaky', retry: { attempts: 3, backoff: '100ms', factor: 2, jitter: 0.2 }, next: ['done'] },
        right: { subsystem: 'm' },
        guarded: { subsystem: 'flaky', retry: { attempts: 2, backoff: 50, jitter: 0 }, onError: ['fallback'] },
        fallback: { subsystem: 'm' },
        done: { subsystem: 'm', condition: [{ field: 'payload.guard', operation: 'eq', value: true, result: ['guarded'] }] },
      },
    });

    function toLeft(payload: Record<string, unknown> = {}): Sim {
      const sim = new Sim(pipeline, payload);
      sim.start();
      sim.complete('a');
      return sim;
    }

    it('a retryable failure with attempts left schedules a pending retry with backoff', () => {
      const sim = toLeft();
      const first = sim.openRunOf('left');
      const d = sim.fail('left', retryable());
      expect(d.commit.finishRun).to.include({ id: first.id, status: 'failed' });
      expect(d.commit.finishRun!.error).to.deep.equal(retryable());
      expect(d.dispatch).to.deep.equal([]);
      expect(d.schedule).to.have.length(1);
      const retry = d.schedule[0]!;
      // random 0.5 → no spread: exactly the base delay of attempt 2 (100 ms)
      expect(retry).to.include({ stepId: 'left', attempt: 2, status: 'pending', availableAt: NOW + 100, causedBy: first.id, startedAt: NOW + 100 });
      expect(d.commit.request.status).to.equal('running');
      expect(d.commit.cancelRuns).to.deep.equal([]);
      expect(d.notes).to.deep.include({ message: 'retry scheduled', fields: { stepId: 'left', attempt: 2, delayMs: 100 } });
      expect(idempotencyKeyOf(retry)).to.equal(idempotencyKeyOf(first)).and.to.equal(first.id);
    });

    it('every later attempt keeps causedBy = the first attempt (stable idempotency key), backoff grows', () => {
      const sim = toLeft();
      const first = sim.openRunOf('left');
      sim.fail('left', retryable());
      const d3 = sim.fail('left', retryable());
      const third = d3.schedule[0]!;
      expect(third).to.include({ attempt: 3, causedBy: first.id, availableAt: NOW + 200 });
      expect(idempotencyKeyOf(third)).to.equal(first.id);
      expect(new Set(sim.runsOf('left').map((r) => idempotencyKeyOf(r)))).to.deep.equal(new Set([first.id]));
      // attempts spent, no onError → error_stop
      const d4 = sim.fail('left', retryable('third time'));
      expect(d4.commit.request.status).to.equal('error_stop');
      expect(d4.commit.request.error).to.include({ stepId: 'left', attempt: 3, code: ErrorCodes.MODULE_FAILED, message: 'third time' });
    });

    it('a retry that then succeeds routes on as usual', () => {
      const sim = toLeft();
      sim.fail('left', retryable());
      const d = sim.complete('left', { ok: true });
      expect(stepsOf(d.dispatch)).to.deep.equal(['done']);
      expect(sim.state().context.left).to.deep.equal({ ok: true });
    });

    it('a non-retryable failure → error_stop with {stepId, code, attempt}; other open runs are cancelled', () => {
      const sim = toLeft();
      const left = sim.openRunOf('left');
      const right = sim.openRunOf('right');
      const d = sim.fail('left', fatal('no such customer'));
      expect(d.commit.request.status).to.equal('error_stop');
      expect(d.finished).to.equal('error_stop');
      expect(d.commit.request.error).to.deep.equal({
        stepId: 'left', runId: left.id, attempt: 1, code: ErrorCodes.NON_RETRYABLE, message: 'no such customer', details: undefined,
      });
      expect(d.commit.finishRun).to.include({ id: left.id, status: 'failed' });
      expect(d.commit.cancelRuns).to.deep.equal([right.id]);
      expect(d.commit.insertRuns).to.deep.equal([]);
      expect(d.dispatch).to.deep.equal([]);
      expect(d.schedule).to.deep.equal([]);
      expect(sim.runsOf('right')[0]!.status).to.equal('cancelled');
      // The cancelled branch's late result is not news once the request stopped.
      expect(sim.step({ type: 'completed', runId: right.id, output: {}, finishedAt: NOW, durationMs: 1 })).to.equal(null);
    });

    it('retries spent + onError → the error route is taken', () => {
      const sim = toLeft({ guard: true });
      sim.complete('left');
      sim.complete('right');
      expect(stepsOf(sim.complete('done').dispatch)).to.deep.equal(['guarded']);
      const first = sim.openRunOf('guarded');
      const d1 = sim.fail('guarded', retryable());
      expect(d1.schedule[0]).to.include({ attempt: 2, availableAt: NOW + 50, causedBy: first.id });
      const second = sim.openRunOf('guarded');
      const d2 = sim.fail('guarded', retryable());
      expect(d2.commit.finishRun).to.include({ id: second.id, status: 'failed' });
      expect(stepsOf(d2.dispatch)).to.deep.equal(['fallback']);
      expect(d2.dispatch[0]!.causedBy).to.equal(second.id);
      expect(d2.commit.request.status).to.equal('running');
      expect(d2.commit.request.error).to.equal(null);
      expect(d2.notes.map((n) => n.message)).to.include('error route taken');
      expect(sim.complete('fallback').finished).to.equal('completed');
    });

    it('a non-retryable failure with onError takes the route at once', () => {
      const sim = toLeft({ guard: true });
      sim.complete('left');
      sim.complete('right');
      sim.complete('done');
      const d = sim.fail('guarded', fatal());
      expect(d.schedule).to.deep.equal([]);
      expect(stepsOf(d.dispatch)).to.deep.equal(['fallback']);
    });
  });

  describe('limits, duplicates and stop', () => {
    it('maxSteps exceeded → error_stop CONVEYOR_ERR_MAX_STEPS, nothing new started', () => {
      const pipeline = compile({ id: 'loop', start: 'a', maxSteps: 3, steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm', next: ['a'] } } });
      const sim = new Sim(pipeline);
      sim.start();
      sim.complete('a');
      sim.complete('b');
      expect(sim.request.stepCount).to.equal(3);
      const last = sim.openRunOf('a');
      const d = sim.complete('a');
      expect(d.commit.insertRuns).to.deep.equal([]);
      expect(d.dispatch).to.deep.equal([]);
      expect(d.commit.request.status).to.equal('error_stop');
      expect(d.commit.request.stepCount).to.equal(3);
      expect(d.commit.request.error).to.include({ code: ErrorCodes.MAX_STEPS, stepId: 'a', runId: last.id, attempt: 1 });
      expect(d.commit.finishRun).to.include({ id: last.id, status: 'completed' });
    });

    it('a request halted by maxSteps resumes only with a larger budget, and routes on from the run it stopped at', () => {
      const pipeline = compile({ id: 'loop', start: 'a', maxSteps: 3, steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm', next: ['a'] } } });
      const sim = new Sim(pipeline);
      sim.start();
      sim.complete('a');
      sim.complete('b');
      sim.complete('a');
      expect(sim.request.status).to.equal('error_stop');
      expect(sim.request.error).to.deep.include({ code: ErrorCodes.MAX_STEPS, details: { maxSteps: 3, closed: 'completed' } });
      expect(sim.step({ type: 'resume' }), 'no larger budget: nothing to do').to.equal(null);
      expect(sim.step({ type: 'resume', maxSteps: 3 }), 'the same budget').to.equal(null);
      const d = sim.step({ type: 'resume', maxSteps: 5 })!;
      expect(d.commit.request).to.include({ status: 'running', maxSteps: 5, stepCount: 4 });
      expect(d.commit.request.error).to.equal(null);
      // The halted run of "a" had completed: its route is taken now ("b"), "a" is not run again.
      expect(stepsOf(d.commit.insertRuns)).to.deep.equal(['b']);
      expect(sim.runsOf('a')).to.have.length(2);
      sim.complete('b');
      const again = sim.complete('a');
      expect(again.commit.request).to.include({ status: 'error_stop', stepCount: 5 });
      expect(again.commit.request.error).to.include({ code: ErrorCodes.MAX_STEPS });
    });

    it('a polling wait is one run: polls do not count toward maxSteps, back off, and end at maxPolls as a timeout', () => {
      const pipeline = compile({
        id: 'poller', start: 'w', maxSteps: 2,
        steps: { w: { kind: 'wait', poll: { subsystem: 'status', every: '1s', backoff: 2, maxEvery: '3s', maxPolls: 4 }, timeout: '1h', next: ['after'] }, after: { subsystem: 'm', prev: ['w'] } },
      });
      const sim = new Sim(pipeline);
      sim.start();
      const run = sim.openRunOf('w');
      const due: number[] = [];
      for (let i = 1; i <= 3; i++) {
        const d = sim.complete('w', { done: false, i });
        expect(d.commit.insertRuns, 'no new run for a poll').to.deep.equal([]);
        expect(d.commit.poll).to.include({ runId: run.id, n: i });
        due.push(d.commit.repollRun!.availableAt - NOW);
        expect(sim.step({ type: 'completed', runId: run.id, output: { done: true }, finishedAt: NOW, durationMs: 1 }), 'a result for a poll not in flight').to.equal(null);
        sim.claim('w'); // the timer claims it
      }
      expect(due).to.deep.equal([1000, 2000, 3000]);
      expect(sim.request.stepCount).to.equal(1);
      const last = sim.complete('w', { done: false });
      expect(last.commit.finishRun).to.include({ id: run.id, status: 'failed', endedBy: 'timeout', polls: 4 });
      expect(last.commit.request.error).to.include({ code: 'CONVEYOR_ERR_WAIT_TIMEOUT', stepId: 'w' });
    });

    it('a poll that is done, or an event, closes the one run with how it ended', () => {
      const pipeline = compile({
        id: 'poller2', start: 'w',
        steps: { w: { kind: 'wait', event: { name: 'e', key: '{{ payload.k }}' }, poll: { subsystem: 'status', every: '1s' }, next: ['after'] }, after: { subsystem: 'm', prev: ['w'] } },
      });
      const polled = new Sim(pipeline);
      polled.start();
      polled.complete('w', { done: false });
      polled.claim('w');
      expect(polled.complete('w', { done: true }).commit.finishRun).to.include({ status: 'completed', endedBy: 'poll', polls: 2 });
      const woken = new Sim(pipeline);
      woken.start();
      woken.complete('w', { done: false });
      const wake = woken.step({ type: 'completed', runId: woken.openRunOf('w').id, output: { event: 'e' }, finishedAt: NOW + 5000, durationMs: 0, via: 'event' })!;
      expect(wake.commit.finishRun).to.include({ status: 'completed', endedBy: 'event', finishedAt: NOW + 5000, durationMs: 5000 });
      expect(wake.commit.poll, 'an event is not a poll').to.equal(undefined);
    });

    it('a duplicate result for a run that is no longer open → null', () => {
      const pipeline = compile({ id: 'dup', start: 'a', steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm' } } });
      const sim = new Sim(pipeline);
      sim.start();
      const a = sim.openRunOf('a');
      sim.complete('a');
      expect(sim.step({ type: 'completed', runId: a.id, output: { again: true }, finishedAt: NOW, durationMs: 1 })).to.equal(null);
      expect(sim.step({ type: 'failed', runId: a.id, error: retryable(), finishedAt: NOW, durationMs: 1 })).to.equal(null);
      expect(sim.step({ type: 'completed', runId: 'never-existed', output: {}, finishedAt: NOW, durationMs: 1 })).to.equal(null);
      expect(sim.runsOf('b')).to.have.length(1);
    });

    const stopPipeline = (status?: 'completed' | 'stopped'): CompiledPipeline => compile({
      id: 'stop',
      start: 'a',
      steps: {
        a: { subsystem: 'm', next: ['work', 'halt'] },
        work: { subsystem: 'm' },
        halt: status ? { kind: 'stop', status, reason: 'enough' } : { kind: 'stop', reason: 'enough' },
      },
    });

    it('a stop step → request `stopped`, other open runs cancelled', () => {
      const sim = new Sim(stopPipeline());
      sim.start();
      expect(stepsOf(sim.complete('a').dispatch)).to.deep.equal(['work', 'halt']);
      const work = sim.openRunOf('work');
      const d = sim.complete('halt', { status: 'stopped', reason: 'enough' });
      expect(d.commit.request.status).to.equal('stopped');
      expect(d.finished).to.equal('stopped');
      expect(d.commit.request.error).to.equal(null);
      expect(d.commit.cancelRuns).to.deep.equal([work.id]);
      expect(d.commit.insertRuns).to.deep.equal([]);
      expect(d.commit.request.finishedAt).to.equal(NOW);
      expect(sim.step({ type: 'completed', runId: work.id, output: {}, finishedAt: NOW, durationMs: 1 })).to.equal(null);
    });

    it('a stop step with status `completed` completes the request', () => {
      const sim = new Sim(stopPipeline('completed'));
      sim.start();
      sim.complete('a');
      const d = sim.complete('halt');
      expect(d.finished).to.equal('completed');
      expect(d.commit.cancelRuns).to.have.length(1);
    });
  });

  describe('process variables (assign)', () => {
    /** An order: `take` (an action) sets the executor, `drop` clears it, `route` reads vars. */
    const order = compile({
      id: 'vars', start: 'take',
      steps: {
        take: {
          kind: 'action', actions: { take: { allow: ['executor'], fields: { who: { required: true } } } },
          assign: { executor: '{{ take.data.who }}', status: 'taken', takenBy: '{{ take.by }}' },
          condition: [{ field: 'vars.status', operation: 'eq', value: 'taken', result: ['work'] }],
          next: ['never'],
        },
        work: { subsystem: 'm', assign: { price: '{{ work.price }}', label: 'now {{ vars.status }}' }, next: ['drop'] },
        drop: { kind: 'setData', data: { why: 'ill' }, assign: { executor: null, status: 'searching' }, next: ['ask'] },
        ask: {
          kind: 'action', actions: { ok: { allow: ['moderator'] } },
          when: [{ field: 'vars.executor', operation: 'empty', result: [] }],
          assign: { asked: true }, next: ['end'],
        },
        never: { kind: 'stop', reason: 'vars.status was not taken' },
        end: { kind: 'stop', status: 'completed', assign: { done: true } },
      },
    });
    const takeOutput = { action: 'take', by: 'u-1', data: { who: 'u-7' } };

    it("an action step's assign reads its own output, is committed with its result, and routes at once", () => {
      const sim = new Sim(order);
      sim.start();
      expect(sim.state().context.vars).to.deep.equal({});
      const d = sim.complete('take', takeOutput);
      expect(d.commit.finishRun).to.include({ status: 'completed' });
      expect(d.commit.finishRun!.assigned).to.deep.equal({ executor: 'u-7', status: 'taken', takenBy: 'u-1' });
      expect(d.commit.request.vars).to.deep.equal({ executor: 'u-7', status: 'taken', takenBy: 'u-1' });
      expect(stepsOf(d.dispatch), 'the condition read the new vars').to.deep.equal(['work']);
      expect(sim.request.vars).to.deep.equal({ executor: 'u-7', status: 'taken', takenBy: 'u-1' });
      expect(sim.state().context.vars).to.deep.equal(sim.request.vars);
      expect(sim.runsOf('take')[0]!.assigned).to.deep.equal({ executor: 'u-7', status: 'taken', takenBy: 'u-1' });
    });

    it('a commit whose step assigns nothing carries no vars; later assigns merge, null clears, templates see the vars before', () => {
      const sim = new Sim(order);
      expect(sim.start().commit.request).to.not.have.property('vars');
      sim.complete('take', takeOutput);
      const work = sim.complete('work', { price: 1500 });
      expect(work.commit.finishRun!.assigned).to.deep.equal({ price: 1500, label: 'now taken' });
      const drop = sim.complete('drop', { why: 'ill' });
      expect(drop.commit.request.vars).to.deep.equal({ executor: null, status: 'searching', takenBy: 'u-1', price: 1500, label: 'now taken' });
      // `ask` is asked only when no executor is set: the `when` read the cleared var.
      expect(stepsOf(drop.dispatch)).to.deep.equal([]);
      expect(sim.openRunOf('ask').status).to.equal('waiting');
      const ask = sim.complete('ask', { action: 'ok' });
      expect(ask.commit.request.vars).to.include({ asked: true });
      const end = sim.complete('end', { status: 'completed' });
      expect(end.finished).to.equal('completed');
      expect(end.commit.request.vars).to.include({ done: true, asked: true, price: 1500 });
    });

    it('an action skipped by its "when" assigns nothing', () => {
      const skip = compile({
        id: 'skip', start: 'a',
        steps: {
          a: { subsystem: 'm', assign: { executor: 'u-9' }, next: ['ask'] },
          ask: { kind: 'action', actions: { ok: { allow: ['x'] } }, when: [{ field: 'vars.executor', operation: 'empty', result: [] }], assign: { asked: true } },
        },
      });
      const s2 = new Sim(skip);
      s2.start();
      const d = s2.complete('a', {});
      expect(d.commit.request.status).to.equal('completed');
      expect(d.commit.request.vars).to.deep.equal({ executor: 'u-9' });
      const ask = s2.runsOf('ask')[0]!;
      expect(ask.status).to.equal('completed');
      expect(ask.assigned ?? null).to.equal(null);
      expect(s2.request.vars).to.not.have.property('asked');
    });

    const big = compile({
      id: 'big', start: 'a',
      steps: {
        a: { subsystem: 'm', assign: { blob: '{{ a.text }}' }, retry: { attempts: 3 }, next: ['b'] },
        b: { subsystem: 'm', assign: { more: '{{ b.text }}' }, onError: ['fallback'] },
        fallback: { subsystem: 'm' },
      },
    });

    it('an assign that would pass the size limit fails the step for good: no retry, error_stop, vars unchanged, output kept', () => {
      const sim = new Sim(big);
      sim.start();
      const text = 'x'.repeat(300 * 1024);
      const d = sim.complete('a', { text });
      expect(d.commit.finishRun).to.include({ status: 'failed' });
      expect(d.commit.finishRun!.error).to.include({ code: ErrorCodes.VARS_TOO_LARGE, retryable: false });
      expect(d.commit.finishRun!.output).to.deep.equal({ text });
      expect(d.commit.finishRun).to.not.have.property('assigned');
      expect(d.commit.request).to.not.have.property('vars');
      expect(d.commit.request.status).to.equal('error_stop');
      expect(d.commit.request.error).to.include({ code: ErrorCodes.VARS_TOO_LARGE, stepId: 'a' });
      expect(d.dispatch).to.deep.equal([]);
      expect(sim.state().context, 'a failed run adds no output to the context').to.not.have.property('a');
    });

    it('an assign failure on a step with onError takes the error route', () => {
      const sim = new Sim(big);
      sim.start();
      sim.complete('a', { text: 'small' });
      const d = sim.complete('b', { text: 'y'.repeat(300 * 1024) });
      expect(d.commit.finishRun!.error).to.include({ code: ErrorCodes.VARS_TOO_LARGE });
      expect(stepsOf(d.dispatch)).to.deep.equal(['fallback']);
      expect(sim.request.vars).to.deep.equal({ blob: 'small' });
    });

    it('a failed step assigns nothing', () => {
      const sim = new Sim(big);
      sim.start();
      const d = sim.fail('a', fatal());
      expect(d.commit.request).to.not.have.property('vars');
      expect(d.commit.finishRun).to.not.have.property('assigned');
    });
  });

  describe('resume with params (resumable)', () => {
    const pipeline = compile({
      id: 'fix', start: 'price',
      steps: { price: { subsystem: 'm', params: { manualPrice: '{{ payload.p }}', limits: { max: 10 } }, resumable: ['manualPrice'], next: ['after'] }, after: { subsystem: 'm' } },
    });
    const stopped = (): Sim => {
      const sim = new Sim(pipeline, { p: 50 });
      sim.start();
      expect(sim.fail('price', fatal('price refused')).commit.request.status).to.equal('error_stop');
      return sim;
    };

    it('lists every name the failed step does not mark resumable', () => {
      const step = pipeline.steps.price;
      expect(unresumableParams(step, { manualPrice: 9 })).to.deep.equal([]);
      expect(unresumableParams(step, { manualPrice: 9, limits: {}, other: 1 })).to.deep.equal(['limits', 'other']);
      expect(unresumableParams(pipeline.steps.after, { x: 1 })).to.deep.equal(['x']);
      expect(unresumableParams(step, undefined)).to.deep.equal([]);
    });

    it('a resume that replaces only resumable params retries the step with them', () => {
      const sim = stopped();
      const d = sim.step({ type: 'resume', params: { manualPrice: 9 } })!;
      expect(d.commit.request.status).to.equal('running');
      expect(d.commit.insertRuns[0]).to.include({ stepId: 'price' });
      expect(d.commit.insertRuns[0]!.override).to.deep.equal({ manualPrice: 9 });
    });

    it('a resume that names any other param is refused: no decision, the request stays in error_stop', () => {
      const sim = stopped();
      expect(sim.step({ type: 'resume', params: { manualPrice: 9, limits: { max: 1000 } } })).to.equal(null);
      expect(sim.request.status).to.equal('error_stop');
      expect(sim.runsOf('price')).to.have.length(1);
    });
  });

  describe('computeBackoff', () => {
    const policy = (jitter: number): RetryPolicy => ({ attempts: 10, backoffMs: 100, factor: 2, maxDelayMs: 1000, jitter });
    const table: Array<[nextAttempt: number, delay: number]> = [[2, 100], [3, 200], [4, 400], [5, 800], [6, 1000], [9, 1000]];

    for (const [attempt, delay] of table) {
      it(`jitter 0: attempt ${attempt} waits ${delay} ms whatever the random`, () => {
        for (const r of [0, 0.25, 0.5, 0.999]) expect(computeBackoff(policy(0), attempt, r)).to.equal(delay);
      });
    }

    it('jitter 0.2 stays within ±20% of the base and under maxDelay', () => {
      expect(computeBackoff(policy(0.2), 4, 0.5)).to.equal(400);
      expect(computeBackoff(policy(0.2), 4, 0)).to.equal(320);
      expect(computeBackoff(policy(0.2), 4, 0.999999)).to.be.within(479, 480);
      for (let i = 0; i < 200; i++) {
        const r = i / 200;
        expect(computeBackoff(policy(0.2), 3, r)).to.be.within(160, 240);
        const capped = computeBackoff(policy(0.2), 8, r);
        expect(capped).to.be.within(800, 1000);
      }
    });

    it('jitter 1 never goes negative', () => {
      expect(computeBackoff(policy(1), 2, 0)).to.equal(0);
      expect(computeBackoff(policy(1), 2, 0.999)).to.be.within(199, 200);
    });
  });
});
