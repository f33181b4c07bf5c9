/** The pure parts of tracing: the switch, the stored trace context, the ids derived from runs. */
import { expect } from 'chai';
import { decodeRequestTrace, encodeRequestTrace, spanIdOfRun, stepTraceparent, traceHeaders } from '../../src/tracing/spans';
import { parseTraceparent, tracingConfig, tracingOn } from '../../src/tracing/tracing';

describe('tracing: configuration and trace context', () => {
  const cases: Array<[string, NodeJS.ProcessEnv, boolean]> = [
    ['is off when nothing is set', {}, false],
    ['is on with an OTLP endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true],
    ['is on with a traces endpoint', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true],
    ['is on with CONVEYOR_TRACING=1 alone', { CONVEYOR_TRACING: '1' }, true],
    ['is off with CONVEYOR_TRACING=0 despite an endpoint', { CONVEYOR_TRACING: '0', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, false],
    ['is off with OTEL_SDK_DISABLED=true despite an endpoint', { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, false],
    ['is off with an empty endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: '' }, false],
    ['is off with only a protocol', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, false],
  ];
  for (const [name, env, enabled] of cases) {
    it(`${name}`, () => expect(tracingConfig('engine', env).enabled).to.equal(enabled));
  }

  it('names the service after the role unless OTEL_SERVICE_NAME says otherwise', () => {
    expect(tracingConfig('worker', {}).serviceName).to.equal('conveyor-worker');
    expect(tracingConfig('worker', { OTEL_SERVICE_NAME: 'billing' }).serviceName).to.equal('billing');
  });

  it('accepts a W3C traceparent and ignores malformed ones', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).to.include({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
    for (const bad of ['', 'garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']) {
      expect(parseTraceparent(bad), bad).to.equal(undefined);
    }
  });

  it('stores the request span ids, its parent and whether it was recorded, and reads them back', () => {
    const t = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true, parentSpanId: 'b7ad6b7169203331', recorded: false };
    const stored = encodeRequestTrace(t);
    expect(stored).to.equal('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01;b7ad6b7169203331');
    expect(stored.length).to.be.at.most(100);
    expect(decodeRequestTrace(stored)).to.deep.equal(t);
    const done = encodeRequestTrace({ ...t, parentSpanId: null, sampled: false, recorded: true });
    expect(done).to.equal('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00;;done');
    expect(decodeRequestTrace(done)).to.deep.equal({ ...t, parentSpanId: null, sampled: false, recorded: true });
    expect(decodeRequestTrace(null)).to.equal(undefined);
    expect(decodeRequestTrace('nonsense;x')).to.equal(undefined);
  });

  it('derives one stable span id per run, the same in every process', () => {
    expect(spanIdOfRun('run-1')).to.match(/^[0-9a-f]{16}$/).and.equal(spanIdOfRun('run-1'));
    expect(spanIdOfRun('run-1')).to.not.equal(spanIdOfRun('run-2'));
  });

  it("passes a traced request's context on to its steps even where tracing is off, and adds nothing to untraced ones", () => {
    expect(tracingOn()).to.equal(false);
    expect(stepTraceparent(undefined, 'run-1')).to.equal(undefined);
    expect(stepTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01;', 'run-1')).to.equal(`00-4bf92f3577b34da6a3ce929d0e0e4736-${spanIdOfRun('run-1')}-01`);
    expect(traceHeaders({})).to.deep.equal({});
    expect(traceHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })).to.deep.equal({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  });
});
