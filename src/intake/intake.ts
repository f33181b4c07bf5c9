/**
 * The API module's intake (DESIGN "Intake"): it stores a request durably, then posts a
 * `start` to the supervisor's inbox when the request may start: at once (`immediate`), or
 * when the pipeline's policy releases it (`rate`, `batch`, `schedule`), or when its
 * business key is free.
 *
 * Both kinds of insert are group-committed by the engine's `GroupCommitter`: a plain request
 * as a new request; a request with an idempotency key, an enforced business key, a hold or a
 * callback as a keyed insert, whose `ON CONFLICT DO NOTHING` lets a unique index say
 * "duplicate" for one request without failing its batch.
 */
import { randomBytes } from 'node:crypto';
import type { Bus } from '../bus/bus';
import { submittedAccessRows } from '../access/people';
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import { CallbackSender, type CallbackOptions } from './callbacks';
import { businessKeyOf, KeyKeeper, reuseOf } from './keys';
import { isGated, Releaser } from './releaser';
import { TriggerScheduler } from './triggers';
import type { Logger } from '../log/logger';
import { redact } from '../log/redact';
import type { RequestRecord } from '../model';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { CompiledIntakeOptions } from '../pipeline/types';
import { DEFAULT_IDEMPOTENCY_WINDOW_MS, DEFAULT_REUSE_WINDOW_MS } from '../pipeline/compile-intake';
import { canonicalJson } from '../pipeline/hash';
import type { GroupCommitter } from '../store/group-commit';
import type { Hold } from '../store/intake-store';
import type { IntakeInsert } from '../store/rows';
import type { SqlStore } from '../store/store';
import { copyRequest } from '../supervisor/state';
import { beginRequestTrace } from '../tracing/spans';

export interface SubmitInput {
  pipelineId: string;
  payload: Record<string, unknown>;
  businessKey?: string | null;
  idempotencyKey?: string | null;
  test?: boolean;
  mode?: string | null;
  /** Overrides the pipeline's `intake.callbackUrl` for this request. */
  callbackUrl?: string | null;
  /** The caller's W3C `traceparent`: the request joins its trace (when tracing is on). */
  traceparent?: string | null;
  /** The actor submitting it: `{{ request.actor }}` in templates and conditions. */
  actor?: string | null;
}

/**
 * What a submit did: `created` a request; `replayed` an earlier one with the same idempotency
 * key and body; or returned the `existing` active request of the business key
 * (`onConflict: 'return-existing'`).
 */
export type SubmitOutcome = 'created' | 'replayed' | 'existing';

export interface Accepted {
  request: RequestRecord;
  outcome: SubmitOutcome;
}

export interface IntakeDeps {
  catalog: PipelineCatalog;
  committer: GroupCommitter;
  store: SqlStore;
  bus: Bus;
  logger: Logger;
  /** Announces that a stored request may start: a `start` posted to the inbox (in-process, or through Redis). */
  notify(requestId: string): void;
  /**
   * Offers a new plain request to the supervisor to be stored already started, with its first
   * runs, in one transaction (`Inbox.startNew`). Resolves with the request as stored, or
   * `undefined`: store it buffered and `notify`.
   */
  startNew?(record: RequestRecord): Promise<RequestRecord | undefined>;
}

export interface IntakeOptions {
  /** How often a gated pipeline's release loop looks for arrivals from other processes. @default 200 */
  pollMs?: number;
  /** How often keys and callbacks are swept (crash repair, retries). @default 1000 */
  sweepMs?: number;
  callbacks?: CallbackOptions;
  /** HMAC key of request-finished callbacks (`CONVEYOR_REQUEST_CALLBACK_SECRET`). @default generated once, kept in the database */
  callbackSecret?: string;
}

const MAX_CONFLICT_ROUNDS = 6;
/**
 * Submissions being stored at once, at most: two group-commit batches' worth. Beyond it a
 * caller waits before its request is even built, so a caller that submits 100,000 at once
 * holds 100,000 small promises, not 100,000 requests.
 */
export const MAX_PENDING_INSERTS = 4096;

const requestOf = (a: Accepted): RequestRecord => a.request;

/** The record offered to start at submit: a copy that says it has no callback URL. */
function offeredToStart(record: RequestRecord): RequestRecord {
  const offered = copyRequest(record);
  offered.hasCallback = false;
  return offered;
}

export class Intake {
  private readonly releaser: Releaser;
  private readonly keys: KeyKeeper;
  private readonly callbacks: CallbackSender;
  private readonly triggers: TriggerScheduler;
  private secret = '';
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly offs: Array<() => void> = [];
  private pendingInserts = 0;
  private readonly insertWaiters: Array<{ input: SubmitInput; resolve: (a: Accepted) => void; reject: (err: unknown) => void }> = [];

  constructor(
    private readonly d: IntakeDeps,
    private readonly o: IntakeOptions = {},
  ) {
    const store = d.store.intake;
    this.releaser = new Releaser({ store, catalog: d.catalog, notify: d.notify, logger: d.logger }, o.pollMs);
    this.keys = new KeyKeeper({ store, catalog: d.catalog, notify: d.notify, poke: (id) => this.releaser.poke(id), logger: d.logger });
    this.callbacks = new CallbackSender(d.store, () => this.secret, d.logger, o.callbacks);
    this.triggers = new TriggerScheduler(store, d.catalog, (input) => this.accept(input), d.logger);
  }

  /**
   * The engine side of intake, in every engine process: release loops, scheduled triggers,
   * business keys given back when requests end, and end-of-request callbacks.
   */
  async start(): Promise<void> {
    this.secret = this.o.callbackSecret || (await this.d.store.ensureSetting('request_callback_secret', randomBytes(32).toString('hex')));
    this.offs.push(
      this.d.bus.on('RequestFinished', ({ requestId, pipeline, callback }) => {
        // A request ended: a pipeline under maxActive may release another.
        this.releaser.poke(pipeline);
        // Keys are only held under `businessKey.onConflict` (the sweep covers older versions).
        if (this.d.catalog.latest(pipeline)?.pipeline.intakeOptions?.businessKey) {
          void this.keys.onFinished(requestId).catch((err: unknown) => this.d.logger.warn('business key not released', { requestId, error: (err as Error).message }));
        }
        // Most requests have no callback URL: no claim to try (the sweep covers any doubt).
        if (callback !== false) this.callbacks.onFinished(requestId);
      }),
    );
    await this.releaser.start();
    await this.triggers.start();
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepMs ?? 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    for (const off of this.offs.splice(0)) off();
    await this.releaser.stop();
    await this.triggers.stop();
    await this.callbacks.stop();
    await this.d.committer.drain();
  }

  /** The signing secret of end-of-request callbacks (`X-Conveyor-Signature`). */
  get callbackSecret(): string {
    return this.secret;
  }

  /**
   * Accepts a request. The returned promise resolves only once the request is durably
   * stored, so a 2xx answer always means "it will run".
   */
  submit(input: SubmitInput): Promise<RequestRecord> {
    return this.accept(input).then(requestOf);
  }

  /**
   * Like {@link submit}, and says whether the request is new, replayed or an existing active one.
   * At most {@link MAX_PENDING_INSERTS} are stored at once; a caller beyond that waits as one
   * small entry (its input and its promise's two functions, about 0.2 KB), not as a suspended
   * call: 100,000 submitted at once hold ~20 MB here, not the ~120 MB of async frames they did.
   */
  accept(input: SubmitInput): Promise<Accepted> {
    if (this.pendingInserts >= MAX_PENDING_INSERTS) {
      return new Promise<Accepted>((resolve, reject) => void this.insertWaiters.push({ input, resolve, reject }));
    }
    this.pendingInserts++;
    return this.storeInTurn(input);
  }

  /** Stores one submission; as it ends, its slot passes straight to the next waiter. */
  private storeInTurn(input: SubmitInput): Promise<Accepted> {
    const done = this.acceptNow(input);
    const handOn = (): void => {
      const next = this.insertWaiters.shift();
      if (next) this.storeInTurn(next.input).then(next.resolve, next.reject);
      else this.pendingInserts--;
    };
    done.then(handOn, handOn);
    return done;
  }

  /** Submissions being stored now, and callers waiting for a turn (for tests and metrics). */
  get pending(): { storing: number; waiting: number } {
    return { storing: this.pendingInserts, waiting: this.insertWaiters.length };
  }

  private async acceptNow(input: SubmitInput): Promise<Accepted> {
    const entry = this.d.catalog.latest(input.pipelineId);
    if (!entry) throw new ClientError(404, ErrorCodes.UNKNOWN_PIPELINE, `unknown pipeline "${input.pipelineId}"`);
    const pipeline = entry.pipeline;
    const options = pipeline.intakeOptions;
    const gated = isGated(pipeline);
    const businessKey = businessKeyOf(pipeline, input.payload, input.businessKey);
    const keyPolicy = businessKey === null ? undefined : options?.businessKey?.onConflict;
    const callbackUrl = input.callbackUrl ?? options?.callbackUrl ?? null;
    const now = Date.now();
    const record: RequestRecord = {
      id: newId(now),
      pipelineId: pipeline.id,
      version: entry.version,
      status: 'buffered',
      businessKey,
      idempotencyKey: input.idempotencyKey ?? null,
      mode: input.mode ?? null,
      test: input.test ?? false,
      // Secrets are never stored: values under secret-looking keys are masked on the way in.
      payload: redact(input.payload),
      error: null,
      joins: {},
      stepCount: 0,
      rev: 0,
      releaseAt: gated ? null : now,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      submittedBy: input.actor ?? null,
    };
    const trace = beginRequestTrace(input.traceparent, { requestId: record.id, pipeline: pipeline.id });
    if (trace) record.traceContext = trace;
    // Participant rows go in with the request: a participant finds it before its first step.
    const access = submittedAccessRows(pipeline, record);
    if (!record.idempotencyKey && !keyPolicy && !gated && !callbackUrl) {
      // Said outright: a request that has no callback costs no callback claim when it ends.
      // `copyRequest`, not `{ ...record, hasCallback: false }`, which V8 builds slowly.
      // Started at submit: the answer says what is stored (`running`), not `buffered`.
      const started = access.length === 0 && this.d.startNew ? await this.d.startNew(offeredToStart(record)) : undefined;
      if (started) return { request: started, outcome: 'created' };
      await this.d.committer.insertRequest(record, access);
      this.d.notify(record.id);
      return { request: record, outcome: 'created' };
    }
    return this.acceptKeyed({ record, hold: null, activeKey: null, callbackUrl, access }, gated, keyPolicy, options?.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS, options?.businessKey);
  }

  /** The insert that unique keys may refuse; each refusal is resolved by the policy and tried again. */
  private async acceptKeyed(
    insert: IntakeInsert, gated: boolean, keyPolicy: string | undefined, windowMs: number,
    keyOptions: CompiledIntakeOptions['businessKey'],
  ): Promise<Accepted> {
    const { record, callbackUrl, access } = insert;
    const { pipelineId, businessKey, idempotencyKey } = record;
    const store = this.d.store.intake;
    // A newcomer queues behind requests already waiting for its key, to keep them in order,
    // and straight away when an active request holds the key (rather than after an insert the
    // unique index refuses and two reads of who refused it). The unique index still decides.
    let queue = keyPolicy === 'queue' && (await store.mustQueueForKey(pipelineId, businessKey!));
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round++) {
      const hold: Hold = queue ? 'key' : gated ? 'gate' : null;
      record.releaseAt = hold === null ? record.createdAt : null;
      const activeKey = keyPolicy && !queue ? businessKey : null;
      if (await this.d.committer.insertKeyed({ record, hold, activeKey, callbackUrl, access })) {
        if (hold === null) this.d.notify(record.id);
        else if (hold === 'gate') this.releaser.poke(pipelineId);
        // The holder may have ended between our conflict and this insert.
        else await this.keys.promote(pipelineId, businessKey!);
        return { request: record, outcome: 'created' };
      }
      if (idempotencyKey) {
        const holder = await store.findIdempotent(pipelineId, idempotencyKey);
        if (holder) {
          if (holder.createdAt < Date.now() - windowMs) {
            // The key's window has passed: it may name a new request now.
            await store.expireIdempotencyKey(holder.id, idempotencyKey);
            continue;
          }
          return { request: await this.sameBody(holder.id, record, idempotencyKey), outcome: 'replayed' };
        }
      }
      if (keyPolicy) {
        const holder = await store.findKeyHolder(pipelineId, businessKey!);
        if (!holder) continue; // it ended in the meantime: try to take the key again
        if (holder.ended) {
          // The key's request ended and kept it (`reuse`), or its process died before giving it back.
          const verdict = reuseOf(keyOptions?.reuse ?? 'allow', holder, keyOptions?.reuseWindowMs ?? DEFAULT_REUSE_WINDOW_MS, Date.now());
          if (verdict === 'free') {
            await this.keys.releaseEnded(holder.id);
            continue;
          }
          const earlier = await this.d.store.getRequest(holder.id);
          if (!earlier) continue;
          if (verdict === 'existing') return { request: earlier, outcome: 'existing' };
          throw new ClientError(409, ErrorCodes.DUPLICATE_REQUEST, `business key "${businessKey}" was used by request ${holder.id}, which ended ${holder.status}; this pipeline does not reuse it (reuse: ${keyOptions?.reuse})`, {
            existingId: holder.id, businessKey, status: holder.status,
          });
        }
        const activeId = holder.id;
        if (keyPolicy === 'reject') {
          throw new ClientError(409, ErrorCodes.BUSINESS_KEY_ACTIVE, `business key "${businessKey}" is held by active request ${activeId}`, { activeId, businessKey });
        }
        if (keyPolicy === 'return-existing') {
          const existing = await this.d.store.getRequest(activeId);
          if (existing) return { request: existing, outcome: 'existing' };
          continue;
        }
        queue = true;
      }
    }
    throw new Error(`request for pipeline "${pipelineId}" could not be stored: unique keys kept conflicting`);
  }

  /** The request an idempotency key already names, if its body is the same; else 422. */
  private async sameBody(id: string, record: RequestRecord, key: string): Promise<RequestRecord> {
    const existing = await this.d.store.getRequest(id);
    if (!existing) throw new Error(`request ${id} vanished`);
    if (canonicalJson(existing.payload) !== canonicalJson(record.payload)) {
      throw new ClientError(422, ErrorCodes.IDEMPOTENCY_MISMATCH, `Idempotency-Key "${key.slice(0, 100)}" was already used with a different body (request ${id})`, { id });
    }
    return existing;
  }

  /** After a restart: starts every request that was released but had not started yet. */
  async releaseBuffered(pageSize = 1000): Promise<number> {
    let after = '';
    let count = 0;
    for (;;) {
      const ids = await this.d.store.intake.listReleased(pageSize, after);
      if (ids.length === 0) return count;
      for (const requestId of ids) this.d.notify(requestId);
      count += ids.length;
      after = ids[ids.length - 1]!;
    }
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.keys.sweep();
      await this.callbacks.sweep();
    } catch (err) {
      this.d.logger.warn('intake sweep failed', { error: (err as Error).message });
    } finally {
      this.sweeping = false;
    }
  }
}
