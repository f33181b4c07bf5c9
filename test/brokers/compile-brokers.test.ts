/** Sources and publish steps are checked at load, each problem at its exact path; message decoding and URL expansion by table. */
import { expect } from 'chai';
import { expandUrl, redactUrl, urlProblem } from '../../src/pipeline/broker-url';
import { compilePipeline } from '../../src/pipeline/compile';
import { decodeMessage } from '../../src/sources/message';

const compile = (extra: Record<string, unknown>, steps: Record<string, unknown> = { a: { subsystem: 'm' } }) =>
  compilePipeline({ id: 'p', start: 'a', steps, ...extra }, { source: 'pipelines/p', modules: new Set(['m']) });
const issues = (extra: Record<string, unknown>, steps?: Record<string, unknown>) => compile(extra, steps).issues.map((i) => `${i.path}: ${i.message}`);

describe('broker sources and publish steps: load-time validation', () => {
  it('compiles sources with their defaults', () => {
    const r = compile({ sources: [{ kind: 'amqp', queue: 'erp.catalog' }, { kind: 'nats', stream: 'ERP', subject: 'erp.catalog.>', durable: 'c', name: 'js' }] });
    expect(r.issues).to.deep.equal([]);
    expect(r.pipeline!.sources).to.deep.equal([
      { kind: 'amqp', name: 'amqp-0', url: '${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}', prefetch: 100, maxBuffered: 10_000, maxMessageBytes: 1_048_576, queue: 'erp.catalog' },
      { kind: 'nats', name: 'js', url: '${NATS_URL:-nats://127.0.0.1:4222}', prefetch: 100, maxBuffered: 10_000, maxMessageBytes: 1_048_576, stream: 'ERP', subject: 'erp.catalog.>', durable: 'c', ackWaitMs: 30_000 },
    ]);
  });

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['not a list', { sources: {} }, 'sources: must be a list'],
    ['unknown kind', { sources: [{ kind: 'kafka' }] }, 'sources[0].kind: must be an object with kind "amqp" or "nats" (got "kafka")'],
    ['missing queue', { sources: [{ kind: 'amqp' }] }, 'sources[0].queue: is required'],
    ['typo in a key', { sources: [{ kind: 'amqp', queue: 'q', prefech: 5 }] }, 'sources[0].prefech: unknown key "prefech"'],
    ['bad prefetch', { sources: [{ kind: 'amqp', queue: 'q', prefetch: 0 }] }, 'sources[0].prefetch: must be an integer from 1 to 10000 (got 0)'],
    ['bad URL scheme', { sources: [{ kind: 'amqp', queue: 'q', url: 'http://127.0.0.1' }] }, 'sources[0].url: must be a amqp:// or amqps:// URL'],
    ['unset variable without default', { sources: [{ kind: 'amqp', queue: 'q', url: '${CONVEYOR_TEST_NO_SUCH_VAR}' }] }, 'sources[0].url: environment variable CONVEYOR_TEST_NO_SUCH_VAR is not set'],
    ['stream with a dot', { sources: [{ kind: 'nats', stream: 'a.b', subject: 'x', durable: 'd' }] }, 'sources[0].stream: must be a stream name'],
    ['bad subject', { sources: [{ kind: 'nats', stream: 'S', subject: 'a..b', durable: 'd' }] }, 'sources[0].subject: must be a subject'],
    ['duplicate names', { sources: [{ kind: 'amqp', queue: 'q', name: 'x' }, { kind: 'amqp', queue: 'r', name: 'x' }] }, 'sources[1].name: duplicate source name "x"'],
  ];
  for (const [what, extra, says] of cases) {
    it(`refuses sources: ${what}`, () => {
      expect(issues(extra).some((i) => i.startsWith(says)), issues(extra).join('\n')).to.equal(true);
    });
  }

  const publish = (step: Record<string, unknown>) => issues({}, { a: { kind: 'publish', ...step } });
  const stepCases: Array<[string, Record<string, unknown>, string]> = [
    ['neither amqp nor nats', { body: {} }, 'steps.a: a publish step needs exactly one of "amqp"'],
    ['both', { body: {}, amqp: { exchange: 'e' }, nats: { subject: 's' } }, 'steps.a: a publish step needs exactly one of'],
    ['no body', { amqp: { exchange: 'e' } }, 'steps.a.body: is required'],
    ['no exchange', { body: {}, amqp: { routingKey: 'k' } }, 'steps.a.amqp.exchange: is required'],
    ['wildcard subject', { body: {}, nats: { subject: 'a.*' } }, 'steps.a.nats.subject: must be a subject without wildcards'],
    ['unknown amqp key', { body: {}, amqp: { exchange: 'e', routing: 'k' } }, 'steps.a.amqp.routing: unknown key "routing"'],
    ['header not a string', { body: {}, amqp: { exchange: 'e' }, headers: { n: 1 } }, 'steps.a.headers.n: must be a string'],
    ['unknown step key', { body: {}, amqp: { exchange: 'e' }, subsystem: 'm' }, 'steps.a.subsystem: unknown key "subsystem"'],
  ];
  for (const [what, step, says] of stepCases) {
    it(`refuses a publish step: ${what}`, () => {
      expect(publish(step).some((i) => i.startsWith(says)), publish(step).join('\n')).to.equal(true);
    });
  }

  it('compiles a publish step', () => {
    const r = compile({}, { a: { kind: 'publish', amqp: { exchange: 'erp', routingKey: 'order.created' }, body: { id: '{{ payload.id }}' }, headers: { 'x-id': '{{ payload.id }}' }, timeout: '5s' } });
    expect(r.issues).to.deep.equal([]);
    expect(r.pipeline!.steps.a).to.include({ kind: 'publish', timeoutMs: 5000 });
    expect((r.pipeline!.steps.a as { amqp: unknown }).amqp).to.deep.equal({ url: '${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}', exchange: 'erp', routingKey: 'order.created' });
  });
});

describe('broker messages and URLs (pure)', () => {
  const bytes = (s: string): Uint8Array => Buffer.from(s);
  const table: Array<[string, Uint8Array, number, string | null]> = [
    ['an object', bytes('{"sku":"A"}'), 100, null],
    ['not JSON', bytes('{sku'), 100, 'CONVEYOR_ERR_BAD_JSON'],
    ['empty', bytes(''), 100, 'CONVEYOR_ERR_BAD_JSON'],
    ['an array', bytes('[1]'), 100, 'CONVEYOR_ERR_BAD_BODY'],
    ['null', bytes('null'), 100, 'CONVEYOR_ERR_BAD_BODY'],
    ['a string', bytes('"x"'), 100, 'CONVEYOR_ERR_BAD_BODY'],
    ['too large', bytes(`{"a":"${'x'.repeat(200)}"}`), 100, 'CONVEYOR_ERR_BODY_TOO_LARGE'],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0xff, 0x7d]), 100, 'CONVEYOR_ERR_BAD_JSON'],
    ['a forbidden key', bytes('{"__proto__":{"x":1}}'), 100, 'CONVEYOR_ERR_FORBIDDEN_KEY'],
    ['too deep', bytes('{"a":'.repeat(70) + '1' + '}'.repeat(70)), 10_000, 'CONVEYOR_ERR_TOO_DEEP'],
  ];
  for (const [what, content, max, code] of table) {
    it(`decodes ${what}`, () => {
      const d = decodeMessage(content, max);
      if (code === null) expect(d).to.deep.equal({ ok: true, payload: { sku: 'A' } });
      else expect(d).to.include({ ok: false, code });
    });
  }

  it('expands ${VAR} and ${VAR:-default}, masks passwords, checks schemes', () => {
    const env = { AMQP_URL: 'amqp://u:secret@127.0.0.1:5673', EMPTY: '' };
    expect(expandUrl('${AMQP_URL:-amqp://127.0.0.1}', env)).to.equal('amqp://u:secret@127.0.0.1:5673');
    expect(expandUrl('${NATS_URL:-nats://127.0.0.1:4222}', env)).to.equal('nats://127.0.0.1:4222');
    expect(expandUrl('${EMPTY:-amqp://d}', env)).to.equal('amqp://d');
    expect(() => expandUrl('${NOPE}', env)).to.throw('environment variable NOPE is not set');
    expect(redactUrl('amqp://u:secret@127.0.0.1:5673')).to.equal('amqp://u:***@127.0.0.1:5673');
    expect(urlProblem('nats://127.0.0.1:4222', 'nats', env)).to.equal(undefined);
    expect(urlProblem('amqp://127.0.0.1', 'nats', env)).to.match(/must be a nats:\/\/ or tls:\/\/ URL/);
  });
});
