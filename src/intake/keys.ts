/**
 * One active request per business key (seed 000: one active run per item). The database
 * decides who holds a key: `requests.active_key` is unique per pipeline, so however many
 * submits race, one wins. This keeper gives keys back when their request ends and hands
 * them to the next request queued for them; a periodic sweep repairs what a crash left.
 */
import { getPath } from '../conditions/path';
import { ClientError, ErrorCodes } from '../errors';
import type { Logger } from '../log/logger';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { BusinessKeyReuse, CompiledPipeline } from '../pipeline/types';
import type { IntakeStore, KeyHolder } from '../store/intake-store';
import { isGated } from './releaser';

/** The longest business key (the column is 255 characters). */
export const MAX_BUSINESS_KEY = 255;
const SWEEP_LIMIT = 200;

/**
 * The business key of a submit. Where the pipeline names `businessKey.path`, the key is the
 * payload's value there (a string or a number): an `X-Business-Key` header (or a bulk line's
 * `businessKey`) must then equal it, and one that disagrees is refused with 422, never used
 * instead (seed 000: one active run per item; a key other than the item's would let a second
 * run of one item through). A header is the key only when the payload has no value at the
 * path, or when the pipeline names no path.
 */
export function businessKeyOf(pipeline: CompiledPipeline, payload: Record<string, unknown>, header: string | null | undefined): string | null {
  const path = pipeline.intakeOptions?.businessKey?.path;
  if (!path) return header || null;
  const v = getPath({ payload }, path);
  if (v === undefined || v === null) return header || null;
  const at = path.join('.');
  const key = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' && v !== '' ? v : null;
  if (key !== null && key.length > MAX_BUSINESS_KEY) {
    throw new ClientError(400, ErrorCodes.BAD_PARAM, `the business key at ${at} is longer than ${MAX_BUSINESS_KEY} characters`);
  }
  if (header && header !== key) {
    throw new ClientError(422, ErrorCodes.BUSINESS_KEY_MISMATCH, `X-Business-Key "${header.slice(0, 100)}" disagrees with ${at} ${JSON.stringify(v).slice(0, 100)}: the key of this pipeline is the payload's value`, {
      header, path: at, payload: key ?? JSON.stringify(v).slice(0, 255),
    });
  }
  return key;
}

/** What a submit meets when its business key is kept by a request that ended. */
export type ReuseVerdict = 'free' | 'reject' | 'existing';

/**
 * `businessKey.reuse` (Temporal's workflow id reuse policy), pure: once the window after the
 * earlier request's end has passed, or under `allow`, the key is free again; otherwise
 * `reject-duplicate` refuses, `return-existing` answers with the earlier request, and
 * `allow-after-failure` frees the key only when the earlier request ended `stopped`.
 */
export function reuseOf(policy: BusinessKeyReuse, holder: Pick<KeyHolder, 'status' | 'finishedAt'>, windowMs: number, now: number): ReuseVerdict {
  if (policy === 'allow' || holder.finishedAt === null || holder.finishedAt < now - windowMs) return 'free';
  if (policy === 'return-existing') return 'existing';
  if (policy === 'allow-after-failure' && holder.status === 'stopped') return 'free';
  return 'reject';
}

export interface KeyKeeperDeps {
  store: IntakeStore;
  catalog: PipelineCatalog;
  notify(requestId: string): void;
  /** A promoted request now waits for its pipeline's gate. */
  poke(pipelineId: string): void;
  logger: Logger;
}

export class KeyKeeper {
  constructor(private readonly d: KeyKeeperDeps) {}

  /**
   * A request ended here: give its key back and start the next in line. Under a `reuse`
   * policy other than `allow` a key nobody queues for stays with the ended request, for
   * submits within `reuseWindow` to meet ({@link reuseOf}).
   */
  async onFinished(requestId: string): Promise<void> {
    const handed = await this.d.store.handOverKey(requestId, this.keeps, this.gated);
    if (handed?.promoted) this.promoted(handed.pipelineId, handed.key, handed.promoted);
  }

  /** Whether an ended request keeps a key nobody queues for (`reuse` other than `allow`). */
  private readonly keeps = (pipelineId: string): boolean => (this.d.catalog.latest(pipelineId)?.pipeline.intakeOptions?.businessKey?.reuse ?? 'allow') !== 'allow';

  private readonly gated = (pipelineId: string): boolean => {
    const entry = this.d.catalog.latest(pipelineId);
    return entry ? isGated(entry.pipeline) : false;
  };

  /** A queued request took the key: it waits for its pipeline's gate, or starts. */
  private promoted(pipelineId: string, key: string, id: string): void {
    this.d.logger.info('queued request took its business key', { requestId: id, pipeline: pipelineId, businessKey: key });
    if (this.gated(pipelineId)) this.d.poke(pipelineId);
    else this.d.notify(id);
  }

  /** Gives back the key an ended request kept (its window passed, or its policy lets it go). */
  async releaseEnded(requestId: string): Promise<void> {
    const freed = await this.d.store.releaseKey(requestId);
    if (freed) await this.promote(freed.pipelineId, freed.key);
  }

  /** Hands `key` to its oldest queued request, if the key is free. */
  async promote(pipelineId: string, key: string): Promise<void> {
    const id = await this.d.store.promoteKeyWaiter(pipelineId, key, this.gated(pipelineId), Date.now());
    if (id) this.promoted(pipelineId, key, id);
  }

  /**
   * Repairs queues after a crash: a queued key whose holder is gone, or ended without giving
   * the key back, is handed on. (A stale holder nobody waits for is repaired by the next
   * submit that meets it.)
   */
  async sweep(): Promise<void> {
    for (const { pipeline } of this.d.catalog.list()) {
      if (!pipeline.intakeOptions?.businessKey) continue;
      for (const key of await this.d.store.listWaitingKeys(pipeline.id, SWEEP_LIMIT)) {
        const holder = await this.d.store.findKeyHolder(pipeline.id, key);
        if (!holder) await this.promote(pipeline.id, key);
        else if (holder.ended) await this.onFinished(holder.id);
      }
    }
  }
}
