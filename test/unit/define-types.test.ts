/**
 * A type test: `npx tsc --noEmit` proves that `definePipeline` makes the compiler reject an
 * unknown step name. Each `@ts-expect-error` fails the typecheck if the line below it ever
 * stops being an error. At run time, mocha only checks that definePipeline is the identity.
 */
import { expect } from 'chai';
import { definePipeline } from '../../src/pipeline/define';

describe('definePipeline', () => {
  it('returns a correct definition unchanged, with routes to known steps', () => {
    const def = definePipeline({
      id: 'bitrix-lead',
      start: 'bitrix-find-contact',
      steps: {
        'bitrix-find-contact': { subsystem: 'find-contact', next: ['get-bitrix-deal'] },
        'get-bitrix-deal': {
          subsystem: 'find-deal',
          prev: ['bitrix-find-contact'],
          onError: ['give-up'],
          condition: [
            {
              field: 'get-bitrix-deal.value', operation: 'empty',
              success: [{ field: 'bitrix-find-contact.ID', operation: '!|empty', result: ['give-up'] }],
            },
            { field: 'get-bitrix-deal.value', operation: '!|empty', result: [] },
          ],
        },
        'give-up': { kind: 'stop', prev: ['get-bitrix-deal'] },
      },
    });
    expect(definePipeline(def)).to.equal(def);
    expect(def.start).to.equal('bitrix-find-contact');
  });

  it('rejects an unknown step in next at compile time', () => {
    const def = definePipeline({
      id: 'x',
      start: 'a',
      steps: {
        // @ts-expect-error 'nope' is not a step of this pipeline
        a: { subsystem: 'm', next: ['nope'] },
      },
    });
    expect(def.steps.a).to.deep.equal({ subsystem: 'm', next: ['nope'] });
  });

  it('rejects an unknown start at compile time', () => {
    const def = definePipeline({
      id: 'x',
      // @ts-expect-error 'nope' is not a step of this pipeline
      start: 'nope',
      steps: { a: { subsystem: 'm' } },
    });
    expect(def.start).to.equal('nope');
  });

  it('rejects an unknown step in a nested condition result at compile time', () => {
    const def = definePipeline({
      id: 'x',
      start: 'a',
      steps: {
        a: {
          subsystem: 'm',
          condition: [{
            field: 'a.value',
            operation: 'empty',
            // @ts-expect-error 'nope' is not a step of this pipeline
            success: [{ field: 'a.id', operation: 'exists', result: ['b', 'nope'] }],
          }],
        },
        b: { subsystem: 'm' },
      },
    });
    expect(def.steps.b).to.deep.equal({ subsystem: 'm' });
  });

  it('rejects an unknown step in onError and prev at compile time', () => {
    const def = definePipeline({
      id: 'x',
      start: 'a',
      steps: {
        // @ts-expect-error 'nope' is not a step of this pipeline
        a: { subsystem: 'm', onError: ['nope'] },
        // @ts-expect-error 'nope' is not a step of this pipeline
        b: { kind: 'stop', prev: ['nope'] },
      },
    });
    expect(Object.keys(def.steps)).to.deep.equal(['a', 'b']);
  });

  it('rejects an unknown operation at compile time', () => {
    const def = definePipeline({
      id: 'x',
      start: 'a',
      // @ts-expect-error 'emtpy' is not an operation
      steps: { a: { subsystem: 'm', condition: [{ field: 'a.v', operation: 'emtpy', result: [] }] } },
    });
    expect(def.id).to.equal('x');
  });
});
