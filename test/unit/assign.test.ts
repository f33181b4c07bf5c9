/**
 * Process variables, the pure parts: `assign` validated at load (every problem at its exact
 * path), and `applyAssign` rendering over the context and enforcing the size limit.
 */
import { expect } from 'chai';
import { ErrorCodes, formatIssue } from '../../src/errors';
import { compilePipeline } from '../../src/pipeline/compile';
import type { CompiledPipeline } from '../../src/pipeline/types';
import { applyAssign, MAX_VARS_BYTES } from '../../src/supervisor/assign';

const MODULES: ReadonlySet<string> = new Set(['m']);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = Record<string, any>;

function withAssign(assign: unknown, kind: Def = { subsystem: 'm' }): Def {
  return {
    id: 'x', start: 'take',
    steps: {
      take: { kind: 'action', actions: { go: { allow: ['customer'] } }, assign, next: ['b'] },
      b: kind,
    },
  };
}

function issuesOf(def: unknown): string[] {
  return compilePipeline(def, { source: 'pipelines/x', modules: MODULES }).issues.map(formatIssue);
}

function compiled(def: Def): CompiledPipeline {
  const r = compilePipeline(def, { source: 'pipelines/x', modules: MODULES });
  expect(r.issues.map(formatIssue)).to.deep.equal([]);
  return r.pipeline!;
}

describe('assign: validation at load', () => {
  it('accepts names with constants, templates over the step itself, payload, request, vars and other steps', () => {
    const p = compiled(withAssign({
      executor: '{{ take.data.who }}', status: 'taken', count: 2, paid: false, cleared: null, none: '_NULL_',
      label: 'Заказ {{ payload.code }} ({{ request.id }}) {{ vars.status }}', list: ['{{ b.x }}', 1], nested: { deep: '{{ payload.a }}' },
    }));
    expect(p.steps.take!.assign).to.deep.include({ executor: '{{ take.data.who }}', count: 2 });
    expect(p.steps.b).to.not.have.property('assign');
  });

  it('is allowed on every step kind, stop and loop included', () => {
    const p = compiled({
      id: 'x', start: 'a',
      steps: {
        a: { subsystem: 'm', assign: { n: 1 }, next: ['s'] },
        s: { kind: 'setData', data: { v: 1 }, assign: { v: '{{ s.v }}' }, next: ['w'] },
        w: { kind: 'wait', event: { name: 'e', key: 'k' }, assign: { got: '{{ w.data }}' }, next: ['d'] },
        d: { kind: 'delay', duration: '1s', assign: { waited: true }, next: ['l'] },
        l: { kind: 'loop', target: 'a', max: 2, assign: { round: '{{ l.iteration }}' }, onExhausted: ['end'] },
        end: { kind: 'stop', status: 'completed', assign: { finished: true } },
      },
    });
    expect(Object.values(p.steps).map((s) => Object.keys(s.assign ?? {}))).to.deep.equal([['n'], ['v'], ['got'], ['waited'], ['round'], ['finished']]);
  });

  const cases: Array<{ name: string; assign: unknown; issues: string[] }> = [
    { name: 'not an object', assign: ['x'], issues: ['steps.take.assign: must be an object of { name: value-or-template } with at least one name (got ["x"])'] },
    { name: 'empty', assign: {}, issues: ['steps.take.assign: must be an object of { name: value-or-template } with at least one name (got {})'] },
    {
      name: 'bad names',
      assign: { '1st': 1, 'a.b': 2, 'with-dash': 3, constructor: 4 },
      issues: ['1st', 'a.b', 'with-dash', 'constructor'].map((n) => `steps.take.assign.${n}: a variable name must be letters, digits or "_", not starting with a digit (and not __proto__, constructor, prototype)`),
    },
    { name: 'a template that does not parse', assign: { a: '{% if payload.x %}open' }, issues: ['steps.take.assign.a: the template does not parse: tag {% if payload.x %} not closed, line:1, col:1'] },
    { name: 'an unknown filter', assign: { a: '{{ payload.x | shout }}' }, issues: ['steps.take.assign.a: the template does not parse: undefined filter: shout, line:1, col:1'] },
    { name: 'an unknown root (a typo of a step id)', assign: { a: '{{ tkae.data.who }}' }, issues: ['steps.take.assign.a: the template reads "tkae", which is not payload, request, vars or a step'] },
    { name: 'secrets', assign: { token: 'Bearer {{ secrets.API_KEY }}' }, issues: ['steps.take.assign.token: cannot read secrets: vars are stored and shown, so a secret must not go there'] },
    { name: 'deep paths', assign: { meta: { list: [1, '{{ nope.x }}'] } }, issues: ['steps.take.assign.meta.list[1]: the template reads "nope", which is not payload, request, vars or a step'] },
  ];
  for (const c of cases) {
    it(`reports ${c.name} at its exact path`, () => {
      expect(issuesOf(withAssign(c.assign))).to.deep.equal(c.issues.map((i) => `pipelines/x: ${i}`));
    });
  }

  it('reports values that are not JSON', () => {
    expect(issuesOf(withAssign({ n: Number.NaN, d: new Date(0), u: undefined }))).to.deep.equal([
      'pipelines/x: steps.take.assign.n: must be a finite number (got NaN)',
      'pipelines/x: steps.take.assign.d: must be a JSON value or a template string (got "1970-01-01T00:00:00.000Z")',
      'pipelines/x: steps.take.assign.u: must be a JSON value or a template string (got undefined)',
    ]);
  });

  it('"vars" is reserved: no step may be named so, and conditions may read vars.<name>', () => {
    expect(issuesOf({ id: 'x', start: 'vars', steps: { vars: { subsystem: 'm' } } })).to.deep.equal([
      'pipelines/x: steps.vars: "vars" is reserved in the request context and cannot be a step id',
    ]);
    compiled({ id: 'x', start: 'a', steps: { a: { subsystem: 'm', condition: [{ field: 'vars.status', operation: 'eq', value: 'paid', result: ['b'] }] }, b: { subsystem: 'm' } } });
  });
});

describe('applyAssign', () => {
  const context = { payload: { code: 'A-1' }, vars: { status: 'new' }, take: { by: 'u-7', data: { who: 'u-7', n: 3 } } };

  it('renders over the context with the step output in it; a whole {{ path }} keeps its type; _NULL_ is null', () => {
    const r = applyAssign('take', { executor: '{{ take.data.who }}', n: '{{ take.data.n }}', text: '#{{ payload.code }} was {{ vars.status }}', gone: '_NULL_', k: 5 }, { status: 'new', keep: 1 }, context);
    expect(r).to.deep.equal({
      assigned: { executor: 'u-7', n: 3, text: '#A-1 was new', gone: null, k: 5 },
      vars: { status: 'new', keep: 1, executor: 'u-7', n: 3, text: '#A-1 was new', gone: null, k: 5 },
    });
  });

  it('every name sees the vars as they were before the step', () => {
    const r = applyAssign('take', { status: 'taken', previous: '{{ vars.status }}' }, { status: 'new' }, context);
    expect(r).to.deep.equal({ assigned: { status: 'taken', previous: 'new' }, vars: { status: 'taken', previous: 'new' } });
  });

  it(`fails for good with ${ErrorCodes.VARS_TOO_LARGE} when vars would pass ${MAX_VARS_BYTES} bytes, leaving vars alone`, () => {
    const vars = { big: 'x'.repeat(MAX_VARS_BYTES - 100) };
    const ok = applyAssign('take', { small: 'y'.repeat(50) }, vars, context);
    expect(ok).to.have.property('vars');
    const r = applyAssign('take', { more: 'y'.repeat(200) }, vars, context);
    expect(r).to.have.property('error');
    const error = (r as { error: { code: string; retryable: boolean; message: string; details: { limit: number; names: string[]; bytes: number } } }).error;
    expect(error).to.include({ code: ErrorCodes.VARS_TOO_LARGE, retryable: false });
    expect(error.message).to.match(/^assign of step "take" would make vars \d+ bytes, over the limit of 262144$/);
    expect(error.details).to.include({ limit: MAX_VARS_BYTES });
    expect(error.details.bytes).to.be.greaterThan(MAX_VARS_BYTES);
    expect(error.details.names).to.deep.equal(['more']);
    expect(vars).to.deep.equal({ big: 'x'.repeat(MAX_VARS_BYTES - 100) });
  });

  it('counts bytes, not characters: multi-byte text reaches the limit sooner', () => {
    const r = applyAssign('take', { text: 'я'.repeat(MAX_VARS_BYTES / 2) }, {}, context);
    expect((r as { error: { code: string } }).error.code).to.equal(ErrorCodes.VARS_TOO_LARGE);
  });

  it('a template that fails at render time fails the step with CONVEYOR_ERR_TEMPLATE, not retryably', () => {
    const r = applyAssign('take', { bad: "{% include 'no-such-template-file' %}" }, {}, context);
    expect(r).to.have.property('error');
    expect((r as { error: { code: string; retryable: boolean; message: string } }).error).to.include({ code: ErrorCodes.TEMPLATE, retryable: false });
  });
});
