/**
 * `POST /api/pipelines/:id/requests/bulk` (docs/intake.md): NDJSON in, one NDJSON result per
 * non-blank input line out, in order; bad lines are reported with their reason and change
 * nothing, good lines around them are stored.
 */
import { expect } from 'chai';
import type { ErrorBody, TestEngine } from '../support/engine';
import { rowsOf, startIntakeEngine } from './helpers';

type LineResult = { line: number; id?: string; status?: string; outcome?: string; error?: { code: string; message: string } };

describe('intake: bulk NDJSON', function () {
  this.timeout(30_000);
  let t: TestEngine;
  before(async () => {
    t = await startIntakeEngine();
  });
  after(() => t.close());

  const bulk = async (pipeline: string, text: string, query = '', headers: Record<string, string> = {}) => {
    const r = await t.api('POST', `/api/pipelines/${pipeline}/requests/bulk${query}`, { raw: text, headers: { 'content-type': 'application/x-ndjson', ...headers } });
    return { ...r, lines: r.text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LineResult) };
  };

  it('answers one line per input line, telling stored lines from bad ones with the reason', async () => {
    const before = (await rowsOf(t, 'in-plain')).length;
    const input = [
      '{"n":1}',
      'not json',
      '',
      '[1,2]',
      '{"n":2,"__proto__":{"x":1}}',
      `{"deep":${'['.repeat(70)}${']'.repeat(70)}}`,
      '{"n":3}',
    ].join('\n');
    const r = await bulk('in-plain', `${input}\n`);
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/application\/x-ndjson/);
    expect(r.lines.map((l) => l.line)).to.deep.equal([1, 2, 4, 5, 6, 7]);
    // A plain request is stored already started (start at submit), and its line says so.
    expect(r.lines[0]).to.include({ line: 1, status: 'running', outcome: 'created' });
    expect(r.lines[1]!.error!.code).to.equal('CONVEYOR_ERR_BAD_JSON');
    expect(r.lines[2]!.error!.code).to.equal('CONVEYOR_ERR_BAD_BODY');
    expect(r.lines[3]!.error!.code).to.equal('CONVEYOR_ERR_FORBIDDEN_KEY');
    expect(r.lines[4]!.error!.code).to.equal('CONVEYOR_ERR_TOO_DEEP');
    expect(r.lines[5]).to.include({ line: 7, outcome: 'created' });
    expect((await rowsOf(t, 'in-plain')).length).to.equal(before + 2);
  });

  it('keeps the order of 2,000 lines and stores each once', async () => {
    const before = (await rowsOf(t, 'in-plain')).length;
    const input = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i })).join('\n');
    const r = await bulk('in-plain', input);
    expect(r.lines).to.have.length(2000);
    expect(r.lines.map((l) => l.line)).to.deep.equal(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(new Set(r.lines.map((l) => l.id)).size).to.equal(2000);
    expect((await rowsOf(t, 'in-plain')).length).to.equal(before + 2000);
  });

  it('gives line n the key "<Idempotency-Key>:n", so sending the same file again stores nothing new', async () => {
    const input = ['{"a":1}', '{"a":2}', '{"a":3}'].join('\n');
    const first = await bulk('in-plain', input, '', { 'idempotency-key': 'file-7' });
    const before = (await rowsOf(t, 'in-plain')).length;
    const again = await bulk('in-plain', input, '', { 'idempotency-key': 'file-7' });
    expect(again.lines.map((l) => l.outcome)).to.deep.equal(['replayed', 'replayed', 'replayed']);
    expect(again.lines.map((l) => l.id)).to.deep.equal(first.lines.map((l) => l.id));
    expect((await rowsOf(t, 'in-plain')).length).to.equal(before);
    const changed = await bulk('in-plain', ['{"a":1}', '{"a":99}'].join('\n'), '', { 'idempotency-key': 'file-7' });
    expect(changed.lines[1]!.error!.code).to.equal('CONVEYOR_ERR_IDEMPOTENCY_MISMATCH');
  });

  it('takes envelopes with ?envelope=1: per-line keys, business keys and refusals', async () => {
    const input = [
      { payload: { sku: 'B-1', ms: 2000 }, idempotencyKey: 'env-1' },
      { payload: { sku: 'B-1' }, idempotencyKey: 'env-2' },
      { payload: { note: 'no sku' }, businessKey: 'B-2-explicit' },
      { payload: 'no' },
      { payload: {}, extra: 1 },
      { payload: { sku: 'B-3' }, businessKey: 'B-3-other' },
      { payload: { sku: 'B-4' }, businessKey: 'B-4' },
    ].map((l) => JSON.stringify(l)).join('\n');
    const r = await bulk('in-key-reject', input, '?envelope=1');
    expect(r.lines[0]).to.include({ outcome: 'created' });
    expect(r.lines[1]!.error!.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_ACTIVE');
    expect(r.lines[2]).to.include({ outcome: 'created' });
    expect(r.lines[3]!.error!.code).to.equal('CONVEYOR_ERR_BAD_BODY');
    expect(r.lines[4]!.error!.message).to.match(/unknown envelope key "extra"/);
    // The pipeline's key is payload.sku: a businessKey that disagrees is refused, never used instead.
    expect(r.lines[5]!.error).to.deep.equal({
      code: 'CONVEYOR_ERR_BUSINESS_KEY_MISMATCH', message: 'X-Business-Key "B-3-other" disagrees with payload.sku "B-3": the key of this pipeline is the payload\'s value',
    });
    expect(r.lines[6]).to.include({ outcome: 'created' });
    const rows = await rowsOf(t, 'in-key-reject');
    // With no sku in the payload, the line's own key is the key.
    expect(rows.find((x) => x.id === r.lines[2]!.id)!.business_key).to.equal('B-2-explicit');
    expect(rows.find((x) => x.id === r.lines[6]!.id)!.business_key).to.equal('B-4');
    expect(rows.filter((x) => x.business_key === 'B-3' || x.business_key === 'B-3-other')).to.deep.equal([]);
  });

  it('an X-Business-Key header is the key of every line without its own; a line whose payload disagrees answers 422 and is not stored', async () => {
    const input = [{ sku: 'H-1', ms: 10 }, { note: 'no sku' }, { sku: 'H-2' }].map((l) => JSON.stringify(l)).join('\n');
    const r = await bulk('in-key-reject', input, '', { 'x-business-key': 'H-1' });
    expect(r.status).to.equal(200);
    expect(r.lines[0]).to.include({ line: 1, outcome: 'created' });
    // The second line has no sku: the header's key, which the first line holds.
    expect(r.lines[1]!.error!.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_ACTIVE');
    expect(r.lines[2]!.error!.code).to.equal('CONVEYOR_ERR_BUSINESS_KEY_MISMATCH');
    const rows = await rowsOf(t, 'in-key-reject');
    expect(rows.filter((x) => x.business_key === 'H-1').map((x) => x.id)).to.deep.equal([r.lines[0]!.id]);
    expect(rows.filter((x) => x.business_key === 'H-2')).to.deep.equal([]);
    const bad = await bulk('in-key-reject', input, '', { 'x-business-key': 'bad\tkey' });
    expect(bad.status).to.equal(400);
  });

  it('reports a line over the size limit without reading it into memory, and carries on', async () => {
    const big = `{"x":"${'y'.repeat(1024 * 1024 + 10)}"}`;
    const r = await bulk('in-plain', `{"ok":1}\n${big}\n{"ok":2}\n`);
    expect(r.lines.map((l) => l.error?.code ?? l.outcome)).to.deep.equal(['created', 'CONVEYOR_ERR_BODY_TOO_LARGE', 'created']);
  });

  it('refuses a wrong content type (415) and an unknown pipeline (404) before reading anything', async () => {
    const wrong = await t.api<ErrorBody>('POST', '/api/pipelines/in-plain/requests/bulk', { raw: '{"a":1}' });
    expect(wrong.status).to.equal(415);
    const unknown = await t.api<ErrorBody>('POST', '/api/pipelines/nope/requests/bulk', { raw: '{"a":1}', headers: { 'content-type': 'application/x-ndjson' } });
    expect(unknown.status).to.equal(404);
    const forbidden = await t.api<ErrorBody>('POST', '/api/pipelines/in-plain/requests/bulk', { raw: '{"a":1}', key: t.keys.read, headers: { 'content-type': 'application/x-ndjson' } });
    expect(forbidden.status).to.equal(403);
  });
});
