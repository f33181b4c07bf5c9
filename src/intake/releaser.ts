/**
 * Releases buffered requests under their pipeline's intake policy: one loop per gated
 * pipeline, in every engine process. The limits live in the database (see
 * `IntakeStore.releaseRate` and friends), so they hold across processes; a loop only decides
 * when to ask again.
 */
import type { Logger } from '../log/logger';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { CompiledPipeline } from '../pipeline/types';
import type { IntakeStore, Release } from '../store/intake-store';
import { nextTick, prevTick } from '../pipeline/cron';

/** How many requests one release transaction takes at most (a rate or schedule releases more in further rounds). */
const RELEASE_CHUNK = 500;
/** Longest sleep of a loop, so a clock jump or a new arrival elsewhere is noticed. */
const MAX_SLEEP_MS = 60_000;

interface Loop {
  timer?: NodeJS.Timeout;
  running: boolean;
  again: boolean;
}

export interface ReleaserDeps {
  store: IntakeStore;
  catalog: PipelineCatalog;
  /** Announces that a released request may start. */
  notify(requestId: string): void;
  logger: Logger;
}

export class Releaser {
  private readonly loops = new Map<string, Loop>();
  private stopped = false;

  constructor(
    private readonly d: ReleaserDeps,
    /** How often a loop looks for arrivals from other processes. @default 200 */
    private readonly pollMs = 200,
  ) {}

  /** Starts a loop for every pipeline whose policy is not `immediate`. */
  async start(): Promise<void> {
    const now = Date.now();
    for (const { pipeline } of this.d.catalog.list()) {
      if (!isGated(pipeline)) continue;
      await this.d.store.ensureMark(`gate:${pipeline.id}`, now);
      this.loops.set(pipeline.id, { running: false, again: false });
      this.schedule(pipeline.id, 0);
    }
  }

  /** A request was buffered here: look now rather than at the next poll. */
  poke(pipelineId: string): void {
    const loop = this.loops.get(pipelineId);
    if (!loop || this.stopped) return;
    if (loop.running) loop.again = true;
    else this.schedule(pipelineId, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const loop of this.loops.values()) clearTimeout(loop.timer);
    while ([...this.loops.values()].some((l) => l.running)) await new Promise((r) => setTimeout(r, 10));
  }

  private schedule(pipelineId: string, delayMs: number): void {
    const loop = this.loops.get(pipelineId);
    if (!loop || this.stopped) return;
    clearTimeout(loop.timer);
    loop.timer = setTimeout(() => void this.tick(pipelineId), Math.max(0, Math.min(delayMs, MAX_SLEEP_MS)));
  }

  private async tick(pipelineId: string): Promise<void> {
    const loop = this.loops.get(pipelineId);
    const entry = this.d.catalog.latest(pipelineId);
    if (!loop || !entry || this.stopped) return;
    loop.running = true;
    let delay = this.pollMs;
    try {
      const r = await this.release(entry.pipeline, Date.now());
      for (const id of r.ids) this.d.notify(id);
      if (r.ids.length > 0) this.d.logger.info('requests released', { pipeline: pipelineId, policy: entry.pipeline.intake.kind, count: r.ids.length });
      delay = Number.isFinite(r.nextAt) ? r.nextAt - Date.now() : this.pollMs;
      // A rate or maxActive loop also watches for arrivals (and ends) in other processes.
      if (entry.pipeline.intake.kind === 'rate' || entry.pipeline.intake.kind === 'immediate') delay = Math.min(delay, this.pollMs);
    } catch (err) {
      this.d.logger.warn('release failed', { pipeline: pipelineId, error: (err as Error).message });
    } finally {
      loop.running = false;
      const again = loop.again;
      loop.again = false;
      this.schedule(pipelineId, again ? 0 : delay);
    }
  }

  private release(p: CompiledPipeline, now: number): Promise<Release> {
    const policy = p.intake;
    const maxActive = p.intakeOptions?.maxActive;
    switch (policy.kind) {
      case 'rate':
        return this.d.store.releaseRate(p.id, { max: policy.max, perMs: policy.perMs }, maxActive, now, RELEASE_CHUNK);
      case 'batch':
        return this.d.store.releaseBatch(p.id, policy.size, policy.everyMs, maxActive, now);
      case 'schedule':
        return this.d.store.releaseScheduled(p.id, prevTick(policy.cron, now, policy.timezone) ?? 0, nextTick(policy.cron, now, policy.timezone), maxActive, now, RELEASE_CHUNK);
      case 'immediate':
        // Only `maxActive` holds an immediate pipeline back.
        return this.d.store.releaseRate(p.id, undefined, maxActive, now, RELEASE_CHUNK);
    }
  }
}

/** Whether a pipeline's requests wait for the release loop (a policy, or `maxActive`). */
export function isGated(p: CompiledPipeline): boolean {
  return p.intake.kind !== 'immediate' || p.intakeOptions?.maxActive !== undefined;
}
