/**
 * Each step's transport, timeout and retry policy are resolved once, when the pipeline is
 * loaded, from the step, its module and the pipeline's defaults (in that order).
 */
import { expect } from 'chai';
import { compilePipeline } from '../../src/pipeline/compile';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, deliveryOf, resolveDelivery, type ModuleDelivery } from '../../src/pipeline/delivery';
import type { CompiledPipeline, RetryPolicy } from '../../src/pipeline/types';

const SLOW: RetryPolicy = { attempts: 5, backoffMs: 2000, factor: 2, maxDelayMs: 60_000, jitter: 0 };

const modules: ModuleDelivery = {
  get: (name) => ({
    local: { transport: 'event' as const },
    remote: { transport: 'http' as const, timeoutMs: 7000, retry: SLOW },
    queued: { transport: 'queue' as const },
  })[name],
};

function pipeline(): CompiledPipeline {
  const res = compilePipeline({
    id: 'd', start: 'a', defaults: { timeout: '20s' },
    steps: {
      a: { subsystem: 'local', next: ['b'] },
      b: { subsystem: 'remote', next: ['c'] },
      c: { subsystem: 'queued', timeout: '3s', retry: { attempts: 2, backoff: '1s' }, next: ['set'] },
      set: { kind: 'setData', data: { x: 1 } },
    },
  }, { source: 'pipelines/d', modules: new Set(['local', 'remote', 'queued']) });
  expect(res.issues).to.deep.equal([]);
  return res.pipeline!;
}

describe('delivery: transport, timeout and retry resolved at load', () => {
  it('takes the step\'s, else the module\'s, else the pipeline\'s, else the defaults', () => {
    const p = resolveDelivery(pipeline(), modules);
    expect(deliveryOf(p, 'a')).to.deep.equal({ transport: 'event', timeoutMs: 20_000, retry: DEFAULT_RETRY });
    expect(deliveryOf(p, 'b')).to.deep.equal({ transport: 'http', timeoutMs: 7000, retry: SLOW });
    expect(deliveryOf(p, 'c').transport).to.equal('queue');
    expect(deliveryOf(p, 'c').timeoutMs).to.equal(3000);
    expect(deliveryOf(p, 'c').retry.attempts).to.equal(2);
    expect(deliveryOf(p, 'set')).to.deep.equal({ transport: 'engine', timeoutMs: DEFAULT_TIMEOUT_MS, retry: { ...DEFAULT_RETRY, attempts: 1 } });
  });

  it('a pipeline the catalog never resolved: the step\'s and the pipeline\'s own settings', () => {
    const p = pipeline();
    expect(deliveryOf(p, 'b')).to.deep.equal({ transport: 'event', timeoutMs: 20_000, retry: DEFAULT_RETRY });
    expect(deliveryOf(p, 'c').timeoutMs).to.equal(3000);
    expect(deliveryOf(p, 'set').transport).to.equal('engine');
  });
});
