/** The pipelines this engine serves, and the pinned versions its requests started on. */
import { PipelineValidationError } from '../errors';
import { compilePipeline } from './compile';
import { canonicalJson } from './hash';
import { resolveDelivery, retryPolicyOf, type ModuleDelivery } from './delivery';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from './types';

export { DEFAULT_RETRY } from './delivery';

/**
 * What the catalog needs of the store: the stored definition of each version. Narrow, so the
 * pipeline layer does not import the store (`SqlStore` and the test stores fit it).
 */
export interface PipelineVersionStore {
  ensurePipelineVersion(pipelineId: string, hash: string, definition: string): Promise<number>;
  getPipelineVersion(pipelineId: string, version: number): Promise<{ hash: string; definition: string } | undefined>;
}

/** What the catalog needs of the module registry (`ModuleRegistry` fits it): names, and each module's retry policy. */
export interface ModuleLookup extends ModuleDelivery {
  names(): Set<string>;
}

export interface PipelineEntry {
  pipeline: CompiledPipeline;
  version: number;
}

/** Serves the supervisor as its `PipelineSource` (a structural fit: this layer does not import the supervisor). */
export class PipelineCatalog {
  private readonly current = new Map<string, PipelineEntry>();
  /** Compiled pinned versions, by pipeline id then version (no key string to build per lookup). */
  private readonly pinned = new Map<string, Map<number, CompiledPipeline>>();

  constructor(
    private readonly store: PipelineVersionStore,
    private readonly registry: ModuleLookup,
  ) {}

  /** Registers the loaded definitions; a definition never seen before gets a new version. */
  async register(pipelines: CompiledPipeline[]): Promise<void> {
    for (const p of pipelines) {
      resolveDelivery(p, this.registry);
      const version = await this.store.ensurePipelineVersion(p.id, p.hash, canonicalJson(p.definition));
      this.current.set(p.id, { pipeline: p, version });
      this.pin(p.id, version, p);
    }
  }

  /** The version new requests of this pipeline start on. */
  latest(id: string): PipelineEntry | undefined {
    return this.current.get(id);
  }

  list(): PipelineEntry[] {
    return [...this.current.values()];
  }

  private pin(pipelineId: string, version: number, pipeline: CompiledPipeline): void {
    let versions = this.pinned.get(pipelineId);
    if (!versions) this.pinned.set(pipelineId, (versions = new Map()));
    versions.set(version, pipeline);
  }

  /**
   * The pinned definition when it is already compiled here (almost always), else undefined
   * and {@link get} reads it. Synchronous: the supervisor asks on every step, and an `await`
   * of a ready promise still costs a turn of the microtask queue and a promise.
   */
  cached(pipelineId: string, version: number): CompiledPipeline | undefined {
    return this.pinned.get(pipelineId)?.get(version);
  }

  /** The exact definition a request is pinned to, even after the file changed. */
  async get(pipelineId: string, version: number): Promise<CompiledPipeline> {
    const hit = this.cached(pipelineId, version);
    if (hit) return hit;
    const key = `${pipelineId}@${version}`;
    const stored = await this.store.getPipelineVersion(pipelineId, version);
    if (!stored) throw new Error(`pipeline ${key} is not stored`);
    const res = compilePipeline(JSON.parse(stored.definition), { source: `pipelines/${pipelineId}@${version}`, modules: this.registry.names() });
    if (!res.pipeline) throw new PipelineValidationError(res.issues);
    this.pin(pipelineId, version, resolveDelivery(res.pipeline, this.registry));
    return res.pipeline;
  }

  retryPolicy(pipeline: CompiledPipeline, step: CompiledStep): RetryPolicy {
    return pipeline.delivery?.[step.id]?.retry ?? retryPolicyOf(pipeline, step, this.registry);
  }
}
