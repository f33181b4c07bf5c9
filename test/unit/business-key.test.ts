/**
 * Which business key a submit gets (`businessKeyOf`, docs/intake.md): the payload's value at
 * the pipeline's key path; a header that disagrees with it is refused, never used instead.
 */
import { expect } from 'chai';
import { ClientError } from '../../src/errors';
import { businessKeyOf } from '../../src/intake/keys';
import type { CompiledPipeline } from '../../src/pipeline/types';

const withPath = { intakeOptions: { businessKey: { path: ['payload', 'item', 'id'], onConflict: 'reject' } } } as unknown as CompiledPipeline;
const withoutPath = { intakeOptions: { businessKey: { onConflict: 'reject' } } } as unknown as CompiledPipeline;
const noKey = { intakeOptions: {} } as unknown as CompiledPipeline;

describe('businessKeyOf', () => {
  const table: Array<[string, CompiledPipeline, Record<string, unknown>, string | null, string | null]> = [
    ['the payload value, with no header', withPath, { item: { id: 'A-1' } }, null, 'A-1'],
    ['a header that agrees', withPath, { item: { id: 'A-1' } }, 'A-1', 'A-1'],
    ['a number, and a header of its digits', withPath, { item: { id: 42 } }, '42', '42'],
    ['the header when the payload has nothing at the path', withPath, { other: 1 }, 'H-1', 'H-1'],
    ['the header when the value at the path is null', withPath, { item: { id: null } }, 'H-1', 'H-1'],
    ['no key when neither gives one', withPath, {}, null, null],
    ['no key for a value that cannot be one, without a header', withPath, { item: { id: { x: 1 } } }, null, null],
    ['the header, for a pipeline that names no path', withoutPath, { item: { id: 'A-1' } }, 'H-1', 'H-1'],
    ['the header, for a pipeline without a business key policy', noKey, { item: { id: 'A-1' } }, 'H-1', 'H-1'],
  ];
  for (const [name, pipeline, payload, header, want] of table) {
    it(`takes ${name}`, () => expect(businessKeyOf(pipeline, payload, header)).to.equal(want));
  }

  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['a header that disagrees', { item: { id: 'A-1' } }, 'A-2'],
    ['a header beside a number it does not spell', { item: { id: 42 } }, '42.0'],
    ['a header beside a value that cannot be a key', { item: { id: { id: 'A-1' } } }, 'A-1'],
    ['a header beside an empty string', { item: { id: '' } }, 'A-1'],
  ];
  for (const [name, payload, header] of refused) {
    it(`refuses ${name} with 422 CONVEYOR_ERR_BUSINESS_KEY_MISMATCH`, () => {
      try {
        businessKeyOf(withPath, payload, header);
        expect.fail('accepted');
      } catch (err) {
        expect(err).to.be.instanceOf(ClientError);
        expect(err).to.include({ status: 422, code: 'CONVEYOR_ERR_BUSINESS_KEY_MISMATCH' });
        expect((err as ClientError).details).to.include({ header, path: 'payload.item.id' });
      }
    });
  }
});
