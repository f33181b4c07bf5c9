import { expect } from 'chai';
import { formatIssue } from '../../src/errors';
import { compilePipeline } from '../../src/pipeline/compile';
import { parseDuration } from '../../src/pipeline/duration';
import { canonicalJson, hashDefinition } from '../../src/pipeline/hash';

const MODULES: ReadonlySet<string> = new Set(['find-contact', 'find-deal', 'remember', 'm']);
const SOURCE = 'pipelines/x';

/** Definitions here are untrusted data that each case bends freely, as a broken JSON file would be. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = Record<string, any>;

/** The design's bitrix-lead pipeline, completed so that it is valid. */
function bitrixLead(): Def {
  return {
    id: 'bitrix-lead',
    start: 'bitrix-find-contact',
    intake: { rate: { max: 10, per: '1m' } },
    steps: {
      'bitrix-find-contact': { subsystem: 'find-contact', next: ['get-bitrix-deal'] },
      'get-bitrix-deal': {
        subsystem: 'find-deal',
        next: ['remember-deal'],
        prev: ['bitrix-find-contact'],
        timeout: '10s',
        retry: { attempts: 3, backoff: '500ms' },
        condition: [
          {
            field: 'get-bitrix-deal.value', operation: 'empty',
            success: [{ field: 'bitrix-find-contact.ID', operation: 'empty', result: ['bitrix-lead-set-default-values'] }],
          },
          { field: 'get-bitrix-deal.value', operation: '!|empty', result: ['get-bitrix-deal-by-id'] },
        ],
      },
      'bitrix-lead-set-default-values': { kind: 'setData', data: { source: 'bitrix' }, next: ['remember-deal'] },
      'get-bitrix-deal-by-id': {
        subsystem: 'find-deal', params: { id: '{{ get-bitrix-deal.value.ID }}' }, next: ['remember-deal'], onError: ['give-up'],
      },
      'remember-deal': { subsystem: 'remember', prev: ['get-bitrix-deal', 'bitrix-lead-set-default-values', 'get-bitrix-deal-by-id'] },
      'give-up': { kind: 'stop', reason: 'deal lookup failed' },
    },
  };
}

/** A two-step pipeline `a → b`, the base of most issue cases. */
function tiny(): Def {
  return { id: 'x', start: 'a', steps: { a: { subsystem: 'm', next: ['b'] }, b: { subsystem: 'm' } } };
}

function issuesOf(def: unknown): string[] {
  return compilePipeline(def, { source: SOURCE, modules: MODULES }).issues.map(formatIssue);
}

describe('compilePipeline', () => {
  describe('a valid pipeline', () => {
    const def = bitrixLead();
    const { pipeline, issues } = compilePipeline(def, { source: 'pipelines/bitrix-lead', modules: MODULES });

    it('compiles without issues', () => {
      expect(issues).to.deep.equal([]);
      expect(pipeline).to.not.equal(undefined);
    });

    it('applies the pipeline defaults', () => {
      expect(pipeline!.id).to.equal('bitrix-lead');
      expect(pipeline!.start).to.equal('bitrix-find-contact');
      expect(pipeline!.maxSteps).to.equal(1000);
      expect(pipeline!.defaults).to.deep.equal({});
      expect(pipeline!.intake).to.deep.equal({ kind: 'rate', max: 10, perMs: 60_000 });
      expect(pipeline!.source).to.equal('pipelines/bitrix-lead');
      expect(pipeline!.definition).to.equal(def);
      expect(pipeline!.hash).to.equal(hashDefinition(def)).and.match(/^[0-9a-f]{64}$/);
    });

    it('infers the module kind from subsystem and defaults the routes', () => {
      expect(pipeline!.steps['bitrix-find-contact']).to.deep.equal({
        id: 'bitrix-find-contact', kind: 'module', subsystem: 'find-contact', params: {},
        next: ['get-bitrix-deal'], prev: [], join: 'any', condition: [], onError: [],
      });
    });

    it('compiles timeouts to ms and fills the retry policy with defaults', () => {
      const step = pipeline!.steps['get-bitrix-deal'];
      expect(step.kind === 'module' && step.timeoutMs).to.equal(10_000);
      expect(step.kind === 'module' && step.retry).to.deep.equal({ attempts: 3, backoffMs: 500, factor: 2, maxDelayMs: 300_000, jitter: 0.2 });
      expect(step.condition[0].success![0].result).to.deep.equal(['bitrix-lead-set-default-values']);
      expect(step.condition[1].negate).to.equal(true);
    });

    it('leaves retry undefined when a step gives none, so module defaults apply', () => {
      const step = pipeline!.steps['get-bitrix-deal-by-id'];
      expect(step).to.not.have.property('retry');
      expect(step).to.not.have.property('timeoutMs');
      expect(step.kind === 'module' && step.onError).to.deep.equal(['give-up']);
    });

    it('compiles setData and stop steps', () => {
      expect(pipeline!.steps['bitrix-lead-set-default-values']).to.include({ kind: 'setData' });
      expect(pipeline!.steps['give-up']).to.deep.equal({
        id: 'give-up', kind: 'stop', status: 'stopped', reason: 'deal lookup failed',
        next: [], prev: [], join: 'any', condition: [],
      });
    });

    it('never finds an inherited property when looking up a step', () => {
      expect(pipeline!.steps['constructor']).to.equal(undefined);
      expect(pipeline!.steps['toString']).to.equal(undefined);
    });

    it('compiles the same definition parsed from JSON to the same hash', () => {
      const fromJson = compilePipeline(JSON.parse(JSON.stringify(def)), { source: 'pipelines/bitrix-lead', modules: MODULES });
      expect(fromJson.issues).to.deep.equal([]);
      expect(fromJson.pipeline!.hash).to.equal(pipeline!.hash);
    });

    it('allows a loop, since the default maxSteps bounds it', () => {
      const def = tiny();
      def.steps.b.next = ['a'];
      def.steps.a.condition = [{ field: 'payload.again', operation: 'eq', value: true, result: ['a'] }];
      expect(issuesOf(def)).to.deep.equal([]);
    });

    it('compiles pipeline defaults, explicit maxSteps and every intake form', () => {
      const cases: [unknown, unknown][] = [
        [undefined, { kind: 'immediate' }],
        [{}, { kind: 'immediate' }],
        [{ mode: 'immediate' }, { kind: 'immediate' }],
        [{ batch: { size: 10, every: 60000 } }, { kind: 'batch', size: 10, everyMs: 60_000 }],
        [{ schedule: '0 */5 * * * *' }, { kind: 'schedule', cron: '0 */5 * * * *' }],
      ];
      for (const [intake, expected] of cases) {
        const def = { ...tiny(), intake, maxSteps: 50, defaults: { timeout: '30s', retry: { attempts: 5, jitter: 0 } } };
        const { pipeline, issues } = compilePipeline(def, { source: SOURCE, modules: MODULES });
        expect(issues).to.deep.equal([]);
        expect(pipeline!.intake).to.deep.equal(expected);
        expect(pipeline!.maxSteps).to.equal(50);
        expect(pipeline!.defaults).to.deep.equal({
          timeoutMs: 30_000, retry: { attempts: 5, backoffMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0 },
        });
      }
    });
  });

  describe('issues', () => {
    type Case = [name: string, edit: (def: Def) => unknown, expected: string[]];
    const table: Case[] = [
      ['rejects a definition that is not an object', () => 'nope', ['pipelines/x: a pipeline definition must be an object (got "nope")']],
      ['rejects an id that is not a slug', (d) => { d.id = 'Bitrix Lead'; }, ['pipelines/x: id: must be a slug matching ^[a-z0-9][a-z0-9-_]*$ (got "Bitrix Lead")']],
      ['requires an id', (d) => { delete d.id; }, ['pipelines/x: id: is required']],
      ['requires a start', (d) => { delete d.start; }, ['pipelines/x: start: is required']],
      ['rejects an unknown start', (d) => { d.start = 'zz'; }, ['pipelines/x: start: unknown step "zz"']],
      ['requires steps to be a non-empty object', (d) => { d.steps = {}; }, ['pipelines/x: steps: must be a non-empty object of steps (got {})', 'pipelines/x: start: unknown step "a"']],
      ['rejects an unknown top-level key', (d) => { d.maxStep = 5; }, ['pipelines/x: maxStep: unknown key "maxStep"']],
      ['rejects an unknown step key', (d) => { d.steps.a.nxt = ['b']; }, ['pipelines/x: steps.a.nxt: unknown key "nxt"']],
      ['rejects a step id with a dot', (d) => { d.steps['b.c'] = { subsystem: 'm' }; d.steps.a.next.push('b.c'); },
        ['pipelines/x: steps.b.c: a step id must be letters, digits, "-" or "_", starting with a letter or digit (no dots)']],
      ['rejects a reserved step id', (d) => { d.steps.payload = { subsystem: 'm' }; d.steps.a.next.push('payload'); },
        ['pipelines/x: steps.payload: "payload" is reserved in the request context and cannot be a step id']],
      ['rejects a step that is not an object', (d) => { d.steps.b = 'm'; }, ['pipelines/x: steps.b: must be an object (got "m")']],
      ['requires a subsystem or a kind', (d) => { d.steps.b = {}; }, ['pipelines/x: steps.b: needs a "subsystem" (a module step) or a "kind"']],
      ['rejects an unknown step kind', (d) => { d.steps.b = { kind: 'email' }; }, ['pipelines/x: steps.b.kind: unknown step kind "email"']],
      ['requires a subsystem on a module step', (d) => { d.steps.b = { kind: 'module' }; }, ['pipelines/x: steps.b.subsystem: is required']],
      ['rejects an unknown module', (d) => { d.steps.b.subsystem = 'x'; }, ['pipelines/x: steps.b.subsystem: unknown module "x"']],
      ['rejects an unknown step in next', (d) => { d.steps.a.next = ['b', 'nope']; }, ['pipelines/x: steps.a.next[1]: unknown step "nope"']],
      ['rejects a next that is not a list', (d) => { d.steps.a.next = 'b'; },
        ['pipelines/x: steps.a.next: must be a list of step ids (got "b")', 'pipelines/x: steps.b: unreachable from start "a"']],
      ['rejects an unknown step in a condition result', (d) => {
        d.steps.a.condition = [
          { field: 'payload.x', operation: 'empty', result: ['b'] },
          { field: 'payload.x', operation: '!|empty', result: ['get-deal-by-id'] },
        ];
      }, ['pipelines/x: steps.a.condition[1].result[0]: unknown step "get-deal-by-id"']],
      ['rejects an unknown step in a nested result', (d) => {
        d.steps.a.condition = [{ field: 'payload.x', operation: 'empty', success: [{ field: 'payload.y', operation: 'empty', result: ['b', 'c'] }] }];
      }, ['pipelines/x: steps.a.condition[0].success[0].result[1]: unknown step "c"']],
      ['rejects an unknown operation in a step condition', (d) => {
        d.steps.a.condition = [{ field: 'payload.x', operation: 'emty', result: ['b'] }];
      }, ['pipelines/x: steps.a.condition[0].operation: unknown operation "emty"']],
      ['rejects a condition field that reads no step', (d) => {
        d.steps.a.condition = [{ field: 'get-dael.value', operation: 'gt', valueField: 'secrets.X', result: ['b'] }];
      }, [
        'pipelines/x: steps.a.condition[0].field: "get-dael.value" starts with "get-dael", which is not payload, request, vars or a step',
        'pipelines/x: steps.a.condition[0].valueField: "secrets.X" starts with "secrets", which is not payload, request, vars or a step',
      ]],
      ['rejects a condition that is not a list', (d) => { d.steps.a.condition = {}; }, ['pipelines/x: steps.a.condition: must be a list of condition entries (got {})']],
      ['rejects an unknown step in onError', (d) => { d.steps.a.onError = ['oops']; }, ['pipelines/x: steps.a.onError[0]: unknown step "oops"']],
      ['rejects an unknown step in prev', (d) => { d.steps.b.prev = ['a', 'ghost']; }, ['pipelines/x: steps.b.prev[1]: unknown step "ghost"']],
      ['rejects a prev that misses a step routing here', (d) => {
        d.steps.a.next = ['b', 'c']; d.steps.c = { subsystem: 'm', next: ['b'] }; d.steps.b.prev = ['a'];
      }, ['pipelines/x: steps.b.prev: "c" routes to "b" but is not listed in prev']],
      ['rejects a prev that lists a step not routing here', (d) => {
        d.steps.c = { subsystem: 'm' }; d.steps.a.next = ['b', 'c']; d.steps.b.prev = ['a', 'c'];
      }, ['pipelines/x: steps.b.prev[1]: "c" is listed in prev but never routes to "b"']],
      ['counts condition results and onError as routes for prev', (d) => {
        d.steps.a.next = []; d.steps.a.condition = [{ field: 'payload.x', operation: 'exists', success: [{ field: 'payload.y', operation: 'exists', result: ['b'] }] }];
        d.steps.c = { subsystem: 'm', onError: ['b'] }; d.steps.a.onError = ['c']; d.steps.b.prev = ['a', 'c'];
      }, []],
      ['rejects join all with fewer than 2 prev', (d) => { d.steps.b.prev = ['a']; d.steps.b.join = 'all'; },
        ['pipelines/x: steps.b.join: "all" waits for several steps and needs at least 2 in prev']],
      ['rejects an unknown join', (d) => { d.steps.b.join = 'some'; }, ['pipelines/x: steps.b.join: must be "any" or "all" (got "some")']],
      ['rejects an unreachable step', (d) => { d.steps.orphan = { subsystem: 'm', next: ['b'] }; }, ['pipelines/x: steps.orphan: unreachable from start "a"']],
      ['rejects a loop when maxSteps is 0', (d) => { d.steps.b.next = ['a']; d.maxSteps = 0; },
        ['pipelines/x: maxSteps: must be a positive integer (got 0)', 'pipelines/x: maxSteps: the loop "a" → "b" → "a" has no bound']],
      ['rejects an invalid maxSteps without a loop', (d) => { d.maxSteps = 2.5; }, ['pipelines/x: maxSteps: must be a positive integer (got 2.5)']],
      ['rejects a stop step with routes', (d) => { d.steps.b = { kind: 'stop', next: ['a'], condition: [], status: 'done' }; }, [
        'pipelines/x: steps.b.next: a stop step ends the request and has no "next"',
        'pipelines/x: steps.b.condition: a stop step ends the request and has no "condition"',
        'pipelines/x: steps.b.status: must be "completed" or "stopped" (got "done")',
      ]],
      ['rejects a bad timeout', (d) => { d.steps.a.timeout = '10 sec'; },
        ['pipelines/x: steps.a.timeout: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "10 sec")']],
      ['rejects a zero timeout', (d) => { d.steps.a.timeout = 0; },
        ['pipelines/x: steps.a.timeout: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got 0)']],
      ['rejects bad retry values', (d) => { d.steps.a.retry = { attempts: 0, backoff: 'soon', factor: 0.5, maxDelay: -1, jitter: 2, tries: 3 }; }, [
        'pipelines/x: steps.a.retry.tries: unknown key "tries"',
        'pipelines/x: steps.a.retry.attempts: must be an integer from 1 to 100 (got 0)',
        'pipelines/x: steps.a.retry.factor: must be a number >= 1 (got 0.5)',
        'pipelines/x: steps.a.retry.jitter: must be a number from 0 to 1 (got 2)',
        'pipelines/x: steps.a.retry.backoff: must be a duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "soon")',
        'pipelines/x: steps.a.retry.maxDelay: must be a duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got -1)',
      ]],
      ['rejects too many or fractional attempts', (d) => { d.steps.a.retry = { attempts: 101 }; d.defaults = { retry: { attempts: 1.5 } }; }, [
        'pipelines/x: steps.a.retry.attempts: must be an integer from 1 to 100 (got 101)',
        'pipelines/x: defaults.retry.attempts: must be an integer from 1 to 100 (got 1.5)',
      ]],
      ['rejects params that are not an object', (d) => { d.steps.a.params = ['x']; }, ['pipelines/x: steps.a.params: must be an object (got ["x"])']],
      ['requires data on a setData step', (d) => { d.steps.b = { kind: 'setData' }; }, ['pipelines/x: steps.b.data: is required']],
      ['rejects a bad defaults block', (d) => { d.defaults = { timeout: 'forever', retries: 1 }; }, [
        'pipelines/x: defaults.retries: unknown key "retries"',
        'pipelines/x: defaults.timeout: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "forever")',
      ]],
      ['rejects a bad rate intake', (d) => { d.intake = { rate: { max: 0, per: 'minute' } }; }, [
        'pipelines/x: intake.rate.max: must be a positive integer (got 0)',
        'pipelines/x: intake.rate.per: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "minute")',
      ]],
      ['rejects resumable names that are not params of the step', (d) => { d.steps.a.params = { price: 1, note: '' }; d.steps.a.resumable = ['price', 'limits', 'price', 7]; }, [
        'pipelines/x: steps.a.resumable[1]: "limits" is not a param of this step (params: price, note)',
        'pipelines/x: steps.a.resumable[2]: "price" is listed twice',
        'pipelines/x: steps.a.resumable[3]: must be a param name (got 7)',
      ]],
      ['rejects resumable that is not a list', (d) => { d.steps.a.resumable = 'price'; }, ['pipelines/x: steps.a.resumable: must be a list of param names (got "price")']],
      ['rejects resumable on a step that is not a module step', (d) => { d.steps.b = { kind: 'setData', data: {}, resumable: [] }; },
        ['pipelines/x: steps.b.resumable: unknown key "resumable"']],
      ['rejects an incomplete batch intake', (d) => { d.intake = { batch: { size: 10 } }; }, ['pipelines/x: intake.batch.every: is required']],
      ['rejects a cron schedule with the wrong number of fields', (d) => { d.intake = { schedule: '* * *' }; },
        ['pipelines/x: intake.schedule: must be a cron expression of 5 or 6 fields (got "* * *")']],
      ['rejects two intake forms at once', (d) => { d.intake = { rate: { max: 1, per: '1s' }, schedule: '* * * * *' }; },
        ['pipelines/x: intake: give only one of rate, schedule']],
      ['rejects an unknown intake mode and key', (d) => { d.intake = { mode: 'later', burst: 1 }; }, [
        'pipelines/x: intake.burst: unknown key "burst"',
        'pipelines/x: intake.mode: must be "immediate" (got "later")',
      ]],
    ];
    for (const [name, edit, expected] of table) {
      it(name, () => {
        const def = tiny();
        const replaced = edit(def);
        expect(issuesOf(replaced === undefined ? def : replaced)).to.deep.equal(expected);
      });
    }

    it('reports every problem at once, in order', () => {
      const def = bitrixLead();
      def.id = 'Bitrix';
      def.steps['get-bitrix-deal'].condition[1].result = ['get-deal-by-id'];
      def.steps['get-bitrix-deal'].subsytem = 'find-deal';
      def.steps['remember-deal'].subsystem = 'crm-remember';
      def.steps['get-bitrix-deal'].timeout = '10';
      expect(compilePipeline(def, { source: 'pipelines/bitrix-lead', modules: MODULES }).issues.map(formatIssue)).to.deep.equal([
        'pipelines/bitrix-lead: id: must be a slug matching ^[a-z0-9][a-z0-9-_]*$ (got "Bitrix")',
        'pipelines/bitrix-lead: steps.get-bitrix-deal.subsytem: unknown key "subsytem"',
        'pipelines/bitrix-lead: steps.get-bitrix-deal.condition[1].result[0]: unknown step "get-deal-by-id"',
        'pipelines/bitrix-lead: steps.get-bitrix-deal.timeout: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "10")',
        'pipelines/bitrix-lead: steps.remember-deal.subsystem: unknown module "crm-remember"',
        'pipelines/bitrix-lead: steps.get-bitrix-deal-by-id: unreachable from start "bitrix-find-contact"',
        'pipelines/bitrix-lead: steps.give-up: unreachable from start "bitrix-find-contact"',
      ]);
    });

    it('returns no pipeline when there is any issue', () => {
      const def = tiny();
      def.steps.a.next = ['nope'];
      const result = compilePipeline(def, { source: SOURCE, modules: MODULES });
      expect(result.pipeline).to.equal(undefined);
      expect(result.issues).to.deep.equal([
        { source: SOURCE, path: 'steps.a.next[0]', message: 'unknown step "nope"' },
        { source: SOURCE, path: 'steps.b', message: 'unreachable from start "a"' },
      ]);
    });
  });
});

describe('parseDuration', () => {
  const table: [unknown, number | undefined][] = [
    ['500ms', 500], ['10s', 10_000], ['5m', 300_000], ['1h', 3_600_000], ['1d', 86_400_000], ['1.5s', 1500],
    [0, 0], [250, 250], [12.4, 12],
    ['10', undefined], ['-1s', undefined], ['1w', undefined], ['10 s', undefined], ['', undefined],
    [-1, undefined], [Infinity, undefined], [NaN, undefined], [null, undefined], [{}, undefined],
  ];
  for (const [input, expected] of table) {
    it(`parses ${JSON.stringify(input) ?? String(input)} as ${expected ?? 'invalid'}`, () => {
      expect(parseDuration(input)).to.equal(expected);
    });
  }
});

describe('canonicalJson and hashDefinition', () => {
  it('sorts keys at every depth, integer-like keys included', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }], 10: 'x', 2: 'y' })).to.equal('{"10":"x","2":"y","a":[{"c":2,"d":1}],"b":1}');
  });

  it('follows JSON.stringify for undefined, non-finite numbers and toJSON', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, NaN], c: new Date(0) })).to.equal('{"b":[null,null],"c":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson(undefined)).to.equal('null');
  });

  it('refuses a circular structure', () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonicalJson(loop)).to.throw(TypeError, /circular/);
  });

  it('hashes the same definition the same whatever the key order', () => {
    expect(hashDefinition({ id: 'x', steps: { a: 1, b: 2 } })).to.equal(hashDefinition({ steps: { b: 2, a: 1 }, id: 'x' }));
  });

  it('hashes a changed definition differently', () => {
    expect(hashDefinition({ id: 'x', maxSteps: 1 })).to.not.equal(hashDefinition({ id: 'x', maxSteps: 2 }));
  });
});
