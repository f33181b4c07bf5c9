import { expect } from 'chai';
import {
  compileCondition, evaluateCondition, evaluateOperation, findRoute, getPath, parsePath,
} from '../../src/conditions';
import { formatIssue, type ValidationIssue } from '../../src/errors';
import type { BaseOperation, CompiledCondition, ConditionDef } from '../../src/pipeline/types';

/** Compiles entries at `steps.s.condition[i]`, failing the test on any issue. */
function compileAll(defs: ConditionDef[]): CompiledCondition[] {
  const issues: ValidationIssue[] = [];
  const compiled = defs.map((def, i) => compileCondition(def, `steps.s.condition[${i}]`, 'pipelines/t', issues));
  expect(issues.map(formatIssue)).to.deep.equal([]);
  return compiled;
}

/** The issues compileCondition reports for one entry, formatted. */
function issuesOf(def: unknown): string[] {
  const issues: ValidationIssue[] = [];
  compileCondition(def, 'steps.s.condition[1]', 'pipelines/t', issues);
  return issues.map(formatIssue);
}

describe('conditions', () => {
  describe('getPath', () => {
    const context = {
      payload: { email: 'a@b.c', items: [{ sku: 'x1' }, { sku: 'x2' }], nothing: null },
      'get-bitrix-deal': { value: 0 },
      own: JSON.parse('{"__proto__": {"polluted": true}, "constructor": "mine"}') as unknown,
    };
    const cases: [string, unknown][] = [
      ['payload.email', 'a@b.c'],
      ['payload.items.1.sku', 'x2'],
      ['payload.items.5.sku', undefined],
      ['payload.items.length', 2],
      ['payload.nothing', null],
      ['payload.nothing.deeper', undefined],
      ['payload.email.length', undefined],
      ['get-bitrix-deal.value', 0],
      ['missing.value', undefined],
      ['__proto__', undefined],
      ['payload.__proto__', undefined],
      ['payload.__proto__.polluted', undefined],
      ['payload.constructor', undefined],
      ['payload.constructor.name', undefined],
      ['payload.toString', undefined],
      ['payload.hasOwnProperty', undefined],
      ['payload.items.constructor', undefined],
      ['own.constructor', 'mine'],
      ['own.__proto__.polluted', true],
    ];
    for (const [field, expected] of cases) {
      it(`reads ${field} as ${JSON.stringify(expected) ?? 'undefined'}`, () => {
        expect(getPath(context, parsePath(field))).to.deep.equal(expected);
      });
    }

    it('reads nothing from a primitive or a missing context', () => {
      expect(getPath(undefined, ['a'])).to.equal(undefined);
      expect(getPath(42, ['toFixed'])).to.equal(undefined);
      expect(getPath('abc', ['length'])).to.equal(undefined);
    });

    it('returns the context itself for an empty path', () => {
      expect(getPath({ a: 1 }, [])).to.deep.equal({ a: 1 });
    });

    it('splits a field on dots', () => {
      expect(parsePath('get-bitrix-deal.value.0')).to.deep.equal(['get-bitrix-deal', 'value', '0']);
    });
  });

  describe('evaluateOperation', () => {
    // [operation, actual, expected, result]
    const table: [BaseOperation, unknown, unknown, boolean][] = [
      ['empty', undefined, undefined, true],
      ['empty', null, undefined, true],
      ['empty', '', undefined, true],
      ['empty', [], undefined, true],
      ['empty', {}, undefined, true],
      ['empty', 0, undefined, false],
      ['empty', false, undefined, false],
      ['empty', '0', undefined, false],
      ['empty', ' ', undefined, false],
      ['empty', [0], undefined, false],
      ['empty', { a: undefined }, undefined, false],
      ['exists', null, undefined, true],
      ['exists', 0, undefined, true],
      ['exists', undefined, undefined, false],
      ['eq', 1, 1, true],
      ['eq', { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }, true],
      ['eq', 1, '1', false],
      ['eq', null, undefined, false],
      ['eq', [1, 2], [2, 1], false],
      ['ne', 1, '1', true],
      ['ne', { a: 1 }, { a: 1 }, false],
      ['gt', 5, 3, true],
      ['gt', '10', 9, true],
      ['gt', '10', '9', true],
      ['gt', 3, 3, false],
      ['gt', 'b', 'a', true],
      ['gt', '2024-03-01T00:00:00Z', '2024-02-29T23:59:59Z', true],
      ['gt', 'abc', 1, false],
      ['gt', true, 0, false],
      ['gt', null, -1, false],
      ['gt', undefined, 0, false],
      ['gt', '', -1, false],
      ['gt', NaN, 0, false],
      ['gte', 3, 3, true],
      ['gte', '3.0', 3, true],
      ['gte', 2, 3, false],
      ['gte', [3], 3, false],
      ['lt', -1, 0, true],
      ['lt', '1e2', 101, true],
      ['lt', '2024-01-01', '2024-01-02', true],
      ['lt', 3, 3, false],
      ['lt', null, 1, false],
      ['lte', 3, 3, true],
      ['lte', 4, 3, false],
      ['lte', undefined, 3, false],
      ['in', 'b', ['a', 'b'], true],
      ['in', { id: 1 }, [{ id: 1 }], true],
      ['in', '1', [1, 2], false],
      ['in', 'a', 'abc', false],
      ['contains', 'hello world', 'o w', true],
      ['contains', [1, { a: 2 }], { a: 2 }, true],
      ['contains', 'hello', 'z', false],
      ['contains', ['1'], 1, false],
      ['contains', 42, 4, false],
      ['startsWith', 'https://x', 'https:', true],
      ['startsWith', 'http://x', 'https:', false],
      ['startsWith', ['a'], 'a', false],
      ['endsWith', 'file.pdf', '.pdf', true],
      ['endsWith', 'file.doc', '.pdf', false],
      ['endsWith', 123, '3', false],
      ['regex', 'ORDER-17', '^ORDER-\\d+$', true],
      ['regex', 'order-17', '^ORDER-\\d+$', false],
      ['regex', 17, '\\d+', false],
      ['between', 5, [1, 10], true],
      ['between', 1, [1, 10], true],
      ['between', 10, [1, 10], true],
      ['between', '7', [1, 10], true],
      ['between', '2024-06-15', ['2024-01-01', '2024-12-31'], true],
      ['between', 11, [1, 10], false],
      ['between', 'x', [1, 10], false],
      ['between', 5, [1], false],
      ['isString', '', undefined, true],
      ['isString', 1, undefined, false],
      ['isNumber', 0, undefined, true],
      ['isNumber', NaN, undefined, false],
      ['isNumber', Infinity, undefined, false],
      ['isNumber', '1', undefined, false],
      ['isBoolean', false, undefined, true],
      ['isBoolean', 0, undefined, false],
      ['isArray', [], undefined, true],
      ['isArray', {}, undefined, false],
      ['isObject', {}, undefined, true],
      ['isObject', { a: 1 }, undefined, true],
      ['isObject', [], undefined, false],
      ['isObject', null, undefined, false],
      ['isObject', new Date(0), undefined, false],
      ['isNull', null, undefined, true],
      ['isNull', undefined, undefined, false],
    ];
    for (const [op, actual, expected, result] of table) {
      const args = expected === undefined ? '' : ` against ${String(JSON.stringify(expected))}`;
      it(`says ${op} is ${result} for ${String(JSON.stringify(actual) ?? actual)}${args}`, () => {
        const pattern = op === 'regex' ? new RegExp(expected as string) : undefined;
        expect(evaluateOperation(op, actual, expected, pattern)).to.equal(result);
      });
    }

    it('compiles a regex from the expected string when no pattern is given', () => {
      expect(evaluateOperation('regex', 'abc', 'b')).to.equal(true);
      expect(evaluateOperation('regex', 'abc', '(')).to.equal(false);
    });
  });

  describe('evaluateCondition', () => {
    const context = {
      payload: { email: 'a@b.c', total: 120, limit: 100, tags: ['vip'] },
      'get-bitrix-deal': { value: null },
    };
    const table: [string, ConditionDef, boolean][] = [
      ['holds when the field is empty', { field: 'get-bitrix-deal.value', operation: 'empty', result: [] }, true],
      ['negates with the !| prefix', { field: 'get-bitrix-deal.value', operation: '!|empty', result: [] }, false],
      ['negates a comparison', { field: 'payload.total', operation: '!|lt', value: 100, result: [] }, true],
      ['compares with a literal value', { field: 'payload.email', operation: 'endsWith', value: '.c', result: [] }, true],
      ['compares two fields with valueField', { field: 'payload.total', operation: 'gt', valueField: 'payload.limit', result: [] }, true],
      ['compares with a missing valueField as undefined', { field: 'payload.total', operation: 'gt', valueField: 'payload.nope', result: [] }, false],
      ['tests a regex once compiled', { field: 'payload.email', operation: 'regex', value: '^[^@]+@b\\.c$', result: [] }, true],
      ['holds for a negated test on a missing field', { field: 'payload.nope', operation: '!|eq', value: 1, result: [] }, true],
      ['never reads the prototype through a path', { field: 'payload.constructor', operation: 'exists', result: [] }, false],
      ['treats __proto__ as missing', { field: 'payload.__proto__', operation: 'empty', result: [] }, true],
      ['reads array contents with contains', { field: 'payload.tags', operation: 'contains', value: 'vip', result: [] }, true],
    ];
    for (const [name, def, expected] of table) {
      it(name, () => {
        const [compiled] = compileAll([def]);
        expect(evaluateCondition(compiled, context)).to.equal(expected);
      });
    }

    it('compiles the regex pattern once, into the condition', () => {
      const [compiled] = compileAll([{ field: 'payload.email', operation: 'regex', value: '@', result: [] }]);
      expect(compiled.pattern).to.be.instanceOf(RegExp);
      expect(compiled.negate).to.equal(false);
      expect(compiled.field).to.deep.equal(['payload', 'email']);
    });
  });

  describe('compileCondition', () => {
    const at = 'pipelines/t: steps.s.condition[1]';
    const table: [string, unknown, string[]][] = [
      ['accepts a valid entry', { field: 'a.b', operation: '!|empty', result: ['x'] }, []],
      ['rejects a non-object entry', 'empty', [`${at}: must be a condition entry object (got "empty")`]],
      ['rejects an unknown operation', { field: 'a', operation: 'emtpy', result: [] }, [`${at}.operation: unknown operation "emtpy"`]],
      ['rejects an unknown negated operation', { field: 'a', operation: '!|nope', result: [] }, [`${at}.operation: unknown operation "!|nope"`]],
      ['requires an operation', { field: 'a', result: [] }, [`${at}.operation: is required`]],
      ['requires a field', { operation: 'empty', result: [] }, [`${at}.field: is required`]],
      ['rejects an empty path segment', { field: 'a..b', operation: 'empty', result: [] }, [`${at}.field: must be a dotted path (got "a..b")`]],
      ['rejects an unknown key', { field: 'a', operation: 'empty', reslt: [] }, [`${at}.reslt: unknown key "reslt"`, `${at}: needs a result or a success list`]],
      ['requires result or success', { field: 'a', operation: 'empty' }, [`${at}: needs a result or a success list`]],
      ['rejects both result and success', { field: 'a', operation: 'empty', result: [], success: [{ field: 'b', operation: 'exists', result: [] }] }, [`${at}: give either result or success, not both`]],
      ['rejects a result that is not a list', { field: 'a', operation: 'empty', result: 'x' }, [`${at}.result: must be a list of step ids (got "x")`]],
      ['rejects a result entry that is not a step id', { field: 'a', operation: 'empty', result: ['x', 3] }, [`${at}.result[1]: must be a step id (got 3)`]],
      ['rejects an empty success list', { field: 'a', operation: 'empty', success: [] }, [`${at}.success: must be a non-empty list of condition entries (got [])`]],
      ['reports nested entries at their own path', { field: 'a', operation: 'empty', success: [{ field: 'b', operation: 'bad', result: [] }] }, [`${at}.success[0].operation: unknown operation "bad"`]],
      ['rejects a value on a unary operation', { field: 'a', operation: 'empty', value: 1, result: [] }, [`${at}.value: "empty" takes no value`]],
      ['rejects a valueField on a type test', { field: 'a', operation: 'isString', valueField: 'b', result: [] }, [`${at}.valueField: "isString" takes no valueField`]],
      ['requires an operand for a comparison', { field: 'a', operation: 'eq', result: [] }, [`${at}: "eq" needs a value or a valueField`]],
      ['accepts null as a literal value', { field: 'a', operation: 'eq', value: null, result: [] }, []],
      ['rejects both value and valueField', { field: 'a', operation: 'eq', value: 1, valueField: 'b', result: [] }, [`${at}.valueField: give either value or valueField, not both`]],
      ['rejects a bad valueField', { field: 'a', operation: 'eq', valueField: '', result: [] }, [`${at}.valueField: must be a dotted path (got "")`]],
      ['requires an array for in', { field: 'a', operation: 'in', value: 'x', result: [] }, [`${at}.value: "in" needs an array (got "x")`]],
      ['requires a pair for between', { field: 'a', operation: 'between', value: [1, 2, 3], result: [] }, [`${at}.value: "between" needs [low, high] of numbers or strings (got [1,2,3])`]],
      ['requires a number or string for gt', { field: 'a', operation: 'gt', value: true, result: [] }, [`${at}.value: "gt" compares with a number or a string (got true)`]],
      ['requires a string for startsWith', { field: 'a', operation: 'startsWith', value: 1, result: [] }, [`${at}.value: "startsWith" needs a string (got 1)`]],
      ['requires a pattern string for regex', { field: 'a', operation: 'regex', value: 1, result: [] }, [`${at}.value: "regex" needs a pattern string (got 1)`]],
      ['rejects an invalid regex', { field: 'a', operation: 'regex', value: '(', result: [] }, [`${at}.value: invalid regular expression: Invalid regular expression: /(/: Unterminated group`]],
      ['rejects a valueField on regex', { field: 'a', operation: 'regex', value: 'x', valueField: 'b', result: [] }, [`${at}.valueField: "regex" takes a literal pattern in value, not a valueField`]],
    ];
    for (const [name, def, expected] of table) {
      it(name, () => {
        expect(issuesOf(def)).to.deep.equal(expected);
      });
    }
  });

  describe('findRoute', () => {
    // The seed's tree (002), verbatim.
    const seed = compileAll([
      {
        field: 'get-bitrix-deal.value', operation: 'empty',
        success: [{ field: 'bitrix-find-contact.ID', operation: 'empty', result: ['bitrix-lead-set-default-values'] }],
      },
      { field: 'get-bitrix-deal.value', operation: '!|empty', result: ['get-bitrix-deal-by-id'] },
    ]);
    const table: [string, unknown, string[] | undefined][] = [
      ['routes to set-default-values when the deal and the contact are empty',
        { 'get-bitrix-deal': { value: null }, 'bitrix-find-contact': { ID: '' } }, ['bitrix-lead-set-default-values']],
      ['finds no route when the deal is empty but the contact was found, so next applies',
        { 'get-bitrix-deal': { value: null }, 'bitrix-find-contact': { ID: 42 } }, undefined],
      ['routes to get-bitrix-deal-by-id when the deal is present',
        { 'get-bitrix-deal': { value: { ID: 7 } }, 'bitrix-find-contact': { ID: '' } }, ['get-bitrix-deal-by-id']],
      ['treats a missing step output as empty',
        {}, ['bitrix-lead-set-default-values']],
    ];
    for (const [name, context, expected] of table) {
      it(name, () => {
        expect(findRoute(seed, context)).to.deep.equal(expected);
      });
    }

    it('continues with the next sibling when a success list finds nothing', () => {
      const conditions = compileAll([
        { field: 'payload.a', operation: 'exists', success: [{ field: 'payload.b', operation: 'exists', result: ['inner'] }] },
        { field: 'payload.a', operation: 'exists', result: ['sibling'] },
      ]);
      expect(findRoute(conditions, { payload: { a: 1 } })).to.deep.equal(['sibling']);
      expect(findRoute(conditions, { payload: { a: 1, b: 2 } })).to.deep.equal(['inner']);
    });

    it('searches nested success lists depth first', () => {
      const conditions = compileAll([
        {
          field: 'payload.a', operation: 'exists',
          success: [
            { field: 'payload.b', operation: 'exists', success: [{ field: 'payload.c', operation: 'exists', result: ['deep'] }] },
            { field: 'payload.b', operation: 'exists', result: ['shallow'] },
          ],
        },
      ]);
      expect(findRoute(conditions, { payload: { a: 1, b: 1, c: 1 } })).to.deep.equal(['deep']);
      expect(findRoute(conditions, { payload: { a: 1, b: 1 } })).to.deep.equal(['shallow']);
    });

    it('returns the first entry that holds, in order', () => {
      const conditions = compileAll([
        { field: 'payload.n', operation: 'gt', value: 10, result: ['big'] },
        { field: 'payload.n', operation: 'gt', value: 0, result: ['positive'] },
      ]);
      expect(findRoute(conditions, { payload: { n: 50 } })).to.deep.equal(['big']);
      expect(findRoute(conditions, { payload: { n: 5 } })).to.deep.equal(['positive']);
      expect(findRoute(conditions, { payload: { n: -5 } })).to.equal(undefined);
    });

    it('returns every target of a multi-target result, to start parallel branches', () => {
      const conditions = compileAll([{ field: 'payload.ok', operation: 'eq', value: true, result: ['notify', 'archive'] }]);
      expect(findRoute(conditions, { payload: { ok: true } })).to.deep.equal(['notify', 'archive']);
    });

    it('returns an empty route, which ends the branch, distinct from no route', () => {
      const conditions = compileAll([{ field: 'payload.done', operation: 'eq', value: true, result: [] }]);
      expect(findRoute(conditions, { payload: { done: true } })).to.deep.equal([]);
      expect(findRoute(conditions, { payload: { done: false } })).to.equal(undefined);
    });

    it('finds no route in an empty condition list', () => {
      expect(findRoute([], {})).to.equal(undefined);
    });
  });
});
