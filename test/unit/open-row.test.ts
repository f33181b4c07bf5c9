/**
 * The attempt kept in a request's row (src/store/rows.ts, migration 1763800000370): its JSON
 * is written by hand, so it is checked here to be valid JSON that starts with the attempt's
 * id, and to read back as the step log would read the same attempt.
 */
import { expect } from 'chai';
import type { StepRunRecord } from '../../src/model';
import { isInRow, openRowParams, openRunIs, openRunJson, toOpenRow } from '../../src/store/rows';

const full: StepRunRecord = {
  id: 'run-"1"', requestId: 'req-1', pipelineId: 'p', stepId: 'step "ü" \\ 🙂', seq: 3, attempt: 2, status: 'dispatched', kind: 'module',
  module: 'm', transport: 'http', params: { text: 'a "quoted" \\ line\nnext', n: [1, null, true], nested: { 'k"': 'v' } }, output: null, error: null,
  causedBy: 'run-0', availableAt: 1_700_000_000_100, leaseUntil: 1_700_000_060_000, waitEvent: 'paid', waitKey: 'k-1', deadlineAt: 1_700_000_090_000,
  override: { a: 1 }, assigned: null, startedAt: 1_700_000_000_000, finishedAt: null, durationMs: null, polls: 0, lastPollAt: null, endedBy: null,
};
const bare: StepRunRecord = {
  ...full, id: 'run-2', module: null, transport: null, params: null, causedBy: null, availableAt: null, waitEvent: null, waitKey: null, deadlineAt: null, override: null,
};

/** The request row's columns as a read gives them. */
const row = (r: StepRunRecord): Record<string, unknown> => {
  const [open_run, open_status, open_lease] = openRowParams(r);
  return { id: r.requestId, pipeline_id: r.pipelineId, open_run, open_status, open_lease };
};

describe('the attempt in a request row', () => {
  for (const [name, r] of [['every field set, with quotes, escapes and 4-byte characters', full], ['only what every attempt has', bare]] as const) {
    it(`${name}: valid JSON, its id first, read back as the step log reads it`, () => {
      const text = openRunJson(r);
      expect(() => JSON.parse(text)).to.not.throw();
      const is = openRunIs(r.id);
      expect(text.slice(0, is.params[0] as number)).to.equal(is.params[1]);
      const back = toOpenRow(row(r))!;
      expect(back).to.deep.equal(r);
      expect(isInRow(back)).to.equal(true);
    });
  }

  it('a row without an attempt reads as none', () => {
    expect(toOpenRow({ id: 'req-1', pipeline_id: 'p', open_run: null, open_status: null, open_lease: null })).to.equal(undefined);
    expect(openRowParams(null)).to.deep.equal([null, null, null]);
  });
});
