/** The pipelines this engine serves, and the pinned versions its requests started on. */
import { PipelineValidationError } from '../errors';
import type { ModuleRegistry } from '../module/registry';
import type { Store } from '../store/store';
import type { PipelineSource } from '../supervisor/supervisor';
import { compilePipeline } from './compile';
import { canonicalJson } from './hash';
import { resolveDelivery, retryPolicyOf } from './delivery';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from './types';

export { DEFAULT_RETRY } from './delivery';

export interface PipelineEntry {
  pipeline: CompiledPipeline;
  version: number;
}

export class PipelineCatalog implements PipelineSource {
  private readonly current = new Map<string, PipelineEntry>();
  private readonly pinned = new Map<string, CompiledPipeline>();

  constructor(
    private readonly store: Store,
    private readonly registry: ModuleRegistry,
  ) {}

  /** Registers the loaded definitions; a definition never seen before gets a new version. */
  async register(pipelines: CompiledPipeline[]): Promise<void> {
    for (const p of pipelines) {
      resolveDelivery(p, this.registry);
      const version = await this.store.ensurePipelineVersion(p.id, p.hash, canonicalJson(p.definition));
      this.current.set(p.id, { pipeline: p, version });
      this.pinned.set(`${p.id}@${version}`, p);
    }
  }

  /** The version new requests of this pipeline start on. */
  latest(id: string): PipelineEntry | undefined {
    return this.current.get(id);
  }

  list(): PipelineEntry[] {
    return [...this.current.values()];
  }

  /** The exact definition a request is pinned to, even after the file changed. */
  async get(pipelineId: string, version: number): Promise<CompiledPipeline> {
    const key = `${pipelineId}@${version}`;
    const hit = this.pinned.get(key);
    if (hit) return hit;
    const stored = await this.store.getPipelineVersion(pipelineId, version);
    if (!stored) throw new Error(`pipeline ${key} is not stored`);
    const res = compilePipeline(JSON.parse(stored.definition), { source: `pipelines/${pipelineId}@${version}`, modules: this.registry.names() });
    if (!res.pipeline) throw new PipelineValidationError(res.issues);
    this.pinned.set(key, resolveDelivery(res.pipeline, this.registry));
    return res.pipeline;
  }

  retryPolicy(pipeline: CompiledPipeline, step: CompiledStep): RetryPolicy {
    return pipeline.delivery?.[step.id]?.retry ?? retryPolicyOf(pipeline, step, this.registry);
  }
}
