/**
 * `checkMigration` with tables: one request as stored (record + step runs), two compiled
 * versions of its pipeline and a plan in, the problems (path, message) out. And `buildMove`:
 * what one move rewrites.
 */
import { expect } from 'chai';
import { checkMigration, type MigrationSubject } from '../../src/migration/check';
import { buildMove } from '../../src/migration/move';
import { parsePlan, type MigrationPlan } from '../../src/migration/plan';
import type { RequestRecord, StepRunRecord } from '../../src/model';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledPipeline } from '../../src/pipeline/types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = Record<string, any>;

function compile(def: Def): CompiledPipeline {
  const res = compilePipeline(def, { source: `pipelines/${String(def.id)}`, modules: new Set(['m', 'n']) });
  expect(res.issues.map((i) => `${i.path}: ${i.message}`), 'fixture pipeline must be valid').to.deep.equal([]);
  return res.pipeline!;
}

const V1 = compile({
  id: 'p', start: 'fetch',
  steps: {
    fetch: { subsystem: 'm', next: ['wait'] },
    wait: { kind: 'wait', event: { name: 'sold', key: '{{ payload.key }}' }, next: ['post'], prev: ['fetch'] },
    post: { subsystem: 'm', params: { x: '{{ fetch.value }}' }, prev: ['wait'], next: ['a', 'b'] },
    a: { subsystem: 'm', prev: ['post'], next: ['j'] },
    b: { subsystem: 'm', prev: ['post'], next: ['j'] },
    j: { kind: 'setData', data: { ok: true }, prev: ['a', 'b'], join: 'all' },
  },
});

/** v2: `wait` renamed `await-sale`, `notify` added after it, `fetch` renamed `load`. */
const V2 = compile({
  id: 'p', start: 'load',
  steps: {
    load: { subsystem: 'm', next: ['await-sale'] },
    'await-sale': { kind: 'wait', event: { name: 'sold', key: '{{ payload.key }}' }, next: ['notify'], prev: ['load'] },
    notify: { subsystem: 'n', params: { y: '{{ load.value }}' }, prev: ['await-sale'], next: ['post'] },
    post: { subsystem: 'm', prev: ['notify'], next: ['a', 'b'] },
    a: { subsystem: 'm', prev: ['post'], next: ['j'] },
    b: { subsystem: 'm', prev: ['post'], next: ['j'] },
    j: { kind: 'setData', data: { ok: true }, prev: ['a', 'b'], join: 'all' },
  },
});

const V2_REKEYED = compile({ ...V2.definition, steps: { ...V2.definition.steps, 'await-sale': { kind: 'wait', event: { name: 'sale', key: 'k-{{ payload.key }}' }, next: ['notify'], prev: ['load'] } } });
const OTHER = compile({ id: 'q', start: 'x', steps: { x: { subsystem: 'm' } } });

function request(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: 'r1', pipelineId: 'p', version: 1, status: 'waiting', businessKey: null, idempotencyKey: null, mode: null, test: false,
    payload: { key: 'K1' }, error: null, joins: {}, stepCount: 2, rev: 3, releaseAt: null, createdAt: 1, updatedAt: 1, finishedAt: null, ...over,
  };
}

let seq = 0;
function run(stepId: string, status: StepRunRecord['status'], over: Partial<StepRunRecord> = {}): StepRunRecord {
  seq++;
  return {
    id: `run-${seq}`, requestId: 'r1', pipelineId: 'p', stepId, seq, attempt: 1, status, kind: 'module', module: 'm', transport: 'event',
    params: null, output: status === 'completed' ? { value: stepId } : null, error: null, causedBy: null, availableAt: null, startedAt: 1, finishedAt: null, durationMs: null, ...over,
  };
}

const waiting: MigrationSubject = { request: request(), runs: [run('fetch', 'completed'), run('wait', 'waiting', { kind: 'wait', waitEvent: 'sold', waitKey: 'K1' })] };
const atJoin: MigrationSubject = {
  request: request({ status: 'running', joins: { j: ['a'] } }),
  runs: [run('fetch', 'completed'), run('wait', 'completed'), run('post', 'completed'), run('a', 'completed'), run('b', 'dispatched')],
};
const plan = (mapping: Record<string, string>, more: Partial<MigrationPlan> = {}): MigrationPlan => ({ toVersion: 2, mapping, ...more });

const CASES: Array<{ name: string; s: MigrationSubject; to: CompiledPipeline | undefined; plan: MigrationPlan; problems: string[] }> = [
  { name: 'renamed wait step, mapped, outputs moved', s: waiting, to: V2, plan: plan({ wait: 'await-sale', fetch: 'load' }), problems: [] },
  {
    name: 'an open step with no mapping', s: waiting, to: V2, plan: plan({ fetch: 'load' }),
    problems: ['steps.wait: the request is at "wait", and version 2 has no step "wait": map it (wait=<step>)'],
  },
  {
    name: 'a new step reads an output nothing maps to', s: waiting, to: V2, plan: plan({ wait: 'await-sale' }),
    problems: ['outputs.load: step "notify" of version 2 reads "load.…", a step behind the request that it never ran: map the old step to "load"'],
  },
  {
    name: 'a wait mapped to a module step', s: waiting, to: V2, plan: plan({ wait: 'post', fetch: 'load' }),
    problems: ['steps.wait: "wait" is a wait step; "post" in version 2 is a module step'],
  },
  {
    name: 'event and key changed, plan silent', s: waiting, to: V2_REKEYED, plan: plan({ wait: 'await-sale', fetch: 'load' }),
    problems: ['steps.wait.event: "wait" waits for "sold" keyed "{{ payload.key }}"; "await-sale" waits for "sale" keyed "k-{{ payload.key }}": say "keep" or "rekey" for it in the plan\'s waits'],
  },
  { name: 'event changed, plan says rekey', s: waiting, to: V2_REKEYED, plan: plan({ wait: 'await-sale', fetch: 'load' }, { waits: { 'await-sale': 'rekey' } }), problems: [] },
  { name: 'a join keeps its arrived branch', s: atJoin, to: V2, plan: plan({ wait: 'await-sale', fetch: 'load' }), problems: [] },
  {
    name: 'an arrived branch the new join does not wait for', s: atJoin, to: V2, plan: plan({ wait: 'await-sale', fetch: 'load', a: 'post' }),
    problems: ['joins.j: branch "a" arrived, and the join "j" in version 2 does not wait for "post"'],
  },
  { name: 'target version missing', s: waiting, to: undefined, plan: plan({}), problems: ['toVersion: pipeline "p" has no version 2'] },
  { name: 'another pipeline', s: waiting, to: OTHER, plan: plan({}), problems: ['toVersion: version 2 is of pipeline "q", not "p"'] },
  {
    name: 'an ended request, a mapping to nowhere', s: { ...waiting, request: request({ status: 'completed' }) }, to: V2, plan: plan({ wait: 'nowhere' }),
    problems: ['status: the request has ended (completed): only a request that has not ended can move', 'mapping.wait: version 2 has no step "nowhere"'],
  },
];

describe('checkMigration', () => {
  for (const c of CASES) {
    it(c.name, () => {
      expect(checkMigration(c.s, V1, c.to, c.plan).map((p) => `${p.path}: ${p.message}`)).to.deep.equal(c.problems);
    });
  }
});

describe('buildMove', () => {
  it('renames open and completed runs, maps joins, keeps vars, audits the mapping', () => {
    const m = buildMove(atJoin, V2, plan({ wait: 'await-sale', fetch: 'load' }), { actor: 'ops', via: 'key:ops' }, 5);
    expect(m).to.include({ requestId: 'r1', expectRev: 3, fromVersion: 1, toVersion: 2 });
    expect(m.renames.map((r) => r.stepId)).to.deep.equal(['load', 'await-sale']);
    expect(m.joins).to.deep.equal({ j: ['a'] });
    expect(m.audit).to.include({ actor: 'ops', via: 'key:ops', action: 'migrate' });
    expect(m.audit.details).to.deep.equal({ fromVersion: 1, toVersion: 2, mapping: { wait: 'await-sale', fetch: 'load' } });
  });

  it('renders a rekeyed wait from the context', () => {
    const m = buildMove(waiting, V2_REKEYED, plan({ wait: 'await-sale', fetch: 'load' }, { waits: { 'await-sale': 'rekey' } }), { actor: 'ops' }, 5);
    expect(m.rewaits).to.deep.equal([{ runId: waiting.runs[1]!.id, event: 'sale', key: 'k-K1' }]);
  });
});

describe('parsePlan', () => {
  it('refuses malformed plans with 400', () => {
    for (const body of [null, {}, { toVersion: 0 }, { toVersion: 2, mapping: { a: 3 } }, { toVersion: 2, waits: { a: 'drop' } }]) {
      expect(() => parsePlan(body), JSON.stringify(body)).to.throw(/toVersion|mapping|waits|plan/);
    }
    expect(parsePlan({ toVersion: 2, mapping: { a: 'b' } })).to.deep.equal({ toVersion: 2, mapping: { a: 'b' } });
  });
});
