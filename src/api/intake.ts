/** The API module's intake: it stores a request durably, then emits `NewRequest` when it may start. */
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import { redact } from '../log/redact';
import type { RequestRecord } from '../model';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { GroupCommitter } from '../store/group-commit';
import type { Store } from '../store/store';

export interface SubmitInput {
  pipelineId: string;
  payload: Record<string, unknown>;
  businessKey?: string | null;
  idempotencyKey?: string | null;
  test?: boolean;
  mode?: string | null;
}

export class Intake {
  constructor(
    private readonly catalog: PipelineCatalog,
    private readonly committer: GroupCommitter,
    private readonly store: Store,
    /** Announces that a stored request may start (`NewRequest`): on the local bus, or through Redis. */
    private readonly notify: (requestId: string) => void,
  ) {}

  /**
   * Accepts a request. The returned promise resolves only once the request is durably
   * stored, so a 2xx answer always means "it will run".
   */
  async submit(input: SubmitInput): Promise<RequestRecord> {
    const entry = this.catalog.latest(input.pipelineId);
    if (!entry) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${input.pipelineId}"`);
    const now = Date.now();
    const record: RequestRecord = {
      id: newId(now),
      pipelineId: entry.pipeline.id,
      version: entry.version,
      status: 'buffered',
      businessKey: input.businessKey ?? null,
      idempotencyKey: input.idempotencyKey ?? null,
      mode: input.mode ?? null,
      test: input.test ?? false,
      // Secrets are never stored: values under secret-looking keys are masked on the way in.
      payload: redact(input.payload),
      error: null,
      joins: {},
      stepCount: 0,
      rev: 0,
      releaseAt: now,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    };
    await this.committer.insertRequest(record);
    this.notify(record.id);
    return record;
  }

  /** After a restart: starts every request that was accepted but had not started yet. */
  async releaseBuffered(pageSize = 1000): Promise<number> {
    let after = '';
    let count = 0;
    for (;;) {
      const ids = await this.store.listRequestIds(['buffered'], pageSize, after);
      if (ids.length === 0) return count;
      for (const requestId of ids) this.notify(requestId);
      count += ids.length;
      after = ids[ids.length - 1]!;
    }
  }
}
