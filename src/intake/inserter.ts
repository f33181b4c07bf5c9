/**
 * Group commit for requests that carry an idempotency key, a business key, a hold or a
 * callback: everything handed in during one event-loop turn is inserted in one transaction,
 * with `ON CONFLICT DO NOTHING`, so a duplicate key skips that one request instead of failing
 * the batch. Each caller learns whether its request was inserted, once that is durable.
 */
import type { IntakeInsert, IntakeStore } from '../store/intake-store';

interface Pending {
  row: IntakeInsert;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

export class BatchInserter {
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: IntakeStore,
    private readonly maxBatch = 2000,
  ) {}

  /** Resolves `true` once the request is durably stored, `false` if a unique key refused it. */
  insert(row: IntakeInsert): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ row, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything handed in so far is written. */
  async drain(): Promise<void> {
    while (this.flushing || this.pending.length > 0) {
      if (this.flushing) await this.flushing;
      else await this.flush();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return Promise.resolve();
    this.flushing = this.store
      .insertRequests(batch.map((p) => p.row))
      .then(
        (inserted) => batch.forEach((p, i) => p.resolve(inserted[i] ?? false)),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.flushing = null;
        if (this.pending.length > 0) this.schedule();
      });
    return this.flushing;
  }
}
