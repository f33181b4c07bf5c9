/** The pipelines this engine serves, and the pinned versions its requests started on. */
import { PipelineValidationError } from '../errors';
import { compilePipeline } from './compile';
import { canonicalJson } from './hash';
import type { CompiledPipeline, CompiledStep, RetryPolicy } from './types';

/** When no step, module or pipeline says otherwise: three attempts, 1 s then 2 s apart. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0.2 };

/**
 * What the catalog needs of the store: the stored definition of each version. Narrow, so the
 * pipeline layer does not import the store (`SqlStore` and the test stores fit it).
 */
export interface PipelineVersionStore {
  ensurePipelineVersion(pipelineId: string, hash: string, definition: string): Promise<number>;
  getPipelineVersion(pipelineId: string, version: number): Promise<{ hash: string; definition: string } | undefined>;
}

/** What the catalog needs of the module registry (`ModuleRegistry` fits it): names, and each module's retry policy. */
export interface ModuleLookup {
  names(): Set<string>;
  get(name: string): { retry?: RetryPolicy } | undefined;
}

export interface PipelineEntry {
  pipeline: CompiledPipeline;
  version: number;
}

/** Serves the supervisor as its `PipelineSource` (a structural fit: this layer does not import the supervisor). */
export class PipelineCatalog {
  private readonly current = new Map<string, PipelineEntry>();
  private readonly pinned = new Map<string, CompiledPipeline>();

  constructor(
    private readonly store: PipelineVersionStore,
    private readonly registry: ModuleLookup,
  ) {}

  /** Registers the loaded definitions; a definition never seen before gets a new version. */
  async register(pipelines: CompiledPipeline[]): Promise<void> {
    for (const p of pipelines) {
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
    this.pinned.set(key, res.pipeline);
    return res.pipeline;
  }

  retryPolicy(pipeline: CompiledPipeline, step: CompiledStep): RetryPolicy {
    if (step.kind === 'publish') return step.retry ?? pipeline.defaults.retry ?? DEFAULT_RETRY;
    if (step.kind !== 'module') return { ...DEFAULT_RETRY, attempts: 1 };
    return step.retry ?? this.registry.get(step.subsystem)?.retry ?? pipeline.defaults.retry ?? DEFAULT_RETRY;
  }
}
