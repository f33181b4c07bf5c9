import type { ParticipantRow, RequestCommit, RequestRecord, StepRunRecord } from '../model';
import type { NewAccess } from './participants';
import type { IntakeInsert } from './rows';
import type { Store } from './store';
import type { WriteBatch } from './write';

/** A new request handed to the group commit, with what is written in the same transaction. */
interface NewRequestItem {
  record: RequestRecord;
  access?: NewAccess;
  /** Its first runs, when it is inserted already started. */
  runs?: StepRunRecord[];
  /** Its first attempt, when that is open in its row (`RequestCommit.openRow`). */
  openRow?: StepRunRecord;
}

interface Pending<T> {
  item: T;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/** Resolves with `value` on a later turn of the event loop. */
const nextTurn = <T>(value: T): Promise<T> => new Promise((resolve) => setImmediate(() => resolve(value)));

/**
 * How many waiting items make a batch leave at once ({@link GroupCommitter}). Measured with the
 * embedded 5,000 batch (docs/performance.md): 250 and 500 alike; 500 keeps the transactions
 * (an fsync each with `synchronous=FULL`) fewer.
 */
export const FLUSH_AT = 500;

/** One transaction's worth: new requests (with their access rows, first runs and open rows), commits and keyed inserts. */
function batchOf(requests: Array<Pending<NewRequestItem>>, commits: Array<Pending<RequestCommit>>, keyed: Array<Pending<IntakeInsert>>): WriteBatch {
  const newAccess = requests.flatMap((p) => (p.item.access ? [p.item.access] : []));
  const newRuns = requests.flatMap((p) => p.item.runs ?? []);
  const openRows = requests.filter((p) => p.item.openRow);
  return {
    newRequests: requests.map((p) => p.item.record), commits: commits.map((p) => p.item),
    ...(newAccess.length > 0 ? { newAccess } : {}), ...(newRuns.length > 0 ? { newRuns } : {}),
    ...(openRows.length > 0 ? { newOpenRows: new Map(openRows.map((p) => [p.item.record.id, p.item.openRow!])) } : {}),
    ...(keyed.length > 0 ? { keyed: keyed.map((p) => p.item) } : {}),
  };
}

/**
 * Group commit: new requests (plain or keyed) and step results handed in together are written
 * in a single transaction: those of one event-loop turn, or the first `flushAt` of them. Each
 * caller's promise settles only after that transaction is durable, so nothing is routed or
 * answered before its cause is stored. While one batch is being written, the next one fills up.
 *
 * A batch leaves at the end of the event-loop turn, or as soon as `flushAt` items wait, whichever
 * comes first (and a batch holds at most `maxBatch`). The second matters when one answered batch
 * sets off a long run of work in one turn: with thousands of requests in flight, the commits of
 * a batch resolve together, and the supervisor's work they start (route, run the next in-process
 * step, commit again) runs as one chain of microtasks, with no turn's end until all of it is
 * done. Waiting for the turn's end then held every commit of that wave, and its records, until
 * the wave had passed, and wrote them as one large batch; the in-flight requests moved in step,
 * as one wave. Written as they fill, the batches stay short and the waves do not form
 * (docs/performance.md, "A batch leaves when it is full").
 *
 * On SQLite one batch is written at a time (a write is synchronous there anyway). On MySQL a
 * batch spends most of its time waiting for round trips and the log flush, so up to
 * `parallel` batches are in flight at once, each on its own connection. That is safe because
 * a request never has two commits in flight in one process (the supervisor waits for each),
 * so concurrent batches touch different rows; across processes the `rev` guard decides, and
 * the store locks rows in id order.
 */
export class GroupCommitter {
  private requests: Array<Pending<NewRequestItem>> = [];
  private commits: Array<Pending<RequestCommit>> = [];
  private keyed: Array<Pending<IntakeInsert>> = [];
  private scheduled = false;
  private readonly flushes = new Set<Promise<void>>();
  private readonly parallel: number;
  /** Commits in batches being written and not answered yet. */
  private writingCommits = 0;
  private readonly answeredListeners: Array<() => void> = [];
  /** Batches written so far, the items in them, and the failed batches written again one item at a time (for metrics and the benchmark). */
  readonly stats = { batches: 0, items: 0, split: 0 };

  constructor(
    private readonly store: Store,
    private readonly maxBatch = 2000,
    parallel?: number,
    /** A batch leaves as soon as this many items wait, without waiting for the turn's end. */
    private readonly flushAt = FLUSH_AT,
  ) {
    this.parallel = Math.max(1, parallel ?? 1);
  }

  /**
   * Stores a new request, with its participant rows if it has some; resolves once it is
   * durable. `runs`: a request inserted already started also gets its first runs, in the
   * same transaction (`Supervisor.startNew`).
   */
  insertRequest(record: RequestRecord, access?: ParticipantRow[], runs?: StepRunRecord[], openRow?: StepRunRecord): Promise<void> {
    return new Promise<boolean>((resolve, reject) => {
      const item: NewRequestItem = { record };
      if (access && access.length > 0) item.access = { requestId: record.id, createdAt: record.createdAt, rows: access };
      // The attempt open in the request's row is written with the row, not into `step_runs`.
      const inserted = openRow && runs ? runs.filter((r) => r !== openRow) : runs;
      if (inserted && inserted.length > 0) item.runs = inserted;
      if (openRow) item.openRow = openRow;
      this.requests.push({ item, resolve, reject });
      this.schedule();
    }).then(() => undefined);
  }

  /**
   * Stores a request that carries an idempotency key, a business key, a hold or a callback,
   * with `ON CONFLICT DO NOTHING`: resolves `true` once it is durable, `false` if a unique
   * key refused it (a duplicate skips that one request, never the batch).
   */
  insertKeyed(row: IntakeInsert): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.keyed.push({ item: row, resolve, reject });
      this.schedule();
    });
  }

  /** Applies a commit; resolves `false` if the store refused it (stale rev or closed run). */
  commit(commit: RequestCommit): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.commits.push({ item: commit, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything handed in so far is written. */
  async drain(): Promise<void> {
    while (this.flushes.size > 0 || this.waiting()) {
      if (this.flushes.size > 0) await Promise.allSettled([...this.flushes]);
      else await this.flush();
    }
  }

  /**
   * A batch whose transaction failed (nothing of it is written) is written again one item per
   * transaction, so that an item the database refuses (an output over MySQL's packet limit, a
   * broken invariant) fails alone rather than every commit batched with it, each time it is
   * tried again. Three failures in a row say the database itself is failing: the items not
   * tried yet fail with the batch's error, at once.
   */
  private async oneByOne(requests: Array<Pending<NewRequestItem>>, commits: Array<Pending<RequestCommit>>, keyed: Array<Pending<IntakeInsert>>, batchError: unknown): Promise<void> {
    this.stats.split++;
    // Each item alone, with how its caller is answered: a new request is stored or not, a commit or a keyed insert held or not.
    // A commit stops counting as pending once it is answered, one by one here.
    const commitSettled = (p: Pending<RequestCommit>): Pending<RequestCommit> => ({
      item: p.item,
      resolve: (ok) => { this.writingCommits--; p.resolve(ok); },
      reject: (err) => { this.writingCommits--; p.reject(err); },
    });
    const items: Array<{ batch: WriteBatch; settle: { resolve(ok: boolean): void; reject(err: unknown): void }; held: (answers: boolean[]) => boolean }> = [
      ...requests.map((p) => ({ batch: batchOf([p], [], []), settle: p, held: () => true })),
      ...commits.map((p) => ({ batch: batchOf([], [p], []), settle: commitSettled(p), held: (a: boolean[]) => a[0] ?? false })),
      ...keyed.map((p) => ({ batch: batchOf([], [], [p]), settle: p, held: (a: boolean[]) => a[0] ?? false })),
    ];
    let failedInARow = 0;
    for (const { batch, settle, held } of items) {
      if (failedInARow >= 3) {
        settle.reject(batchError);
        continue;
      }
      try {
        settle.resolve(held(await this.store.write(batch)));
        failedInARow = 0;
      } catch (err) {
        settle.reject(err);
        failedInARow++;
      }
    }
  }

  /**
   * Step commits handed in and not answered yet: waiting for a batch, or in one being written.
   * New requests (intake's inserts) are not counted: admission control bounds the requests in
   * flight by it (`SupervisorOptions.maxBacklog`), and a flood of submissions stored `buffered`
   * must not hold back the starts.
   */
  get pendingCommits(): number {
    return this.commits.length + this.writingCommits;
  }

  /**
   * Calls `listener` on the turn after each batch is answered: its commits no longer count as
   * pending. Admission control listens: its backlog also falls where no request's work ends
   * (a start at submit, intake's inserts).
   */
  onAnswered(listener: () => void): void {
    this.answeredListeners.push(listener);
  }

  private answered(): void {
    if (this.answeredListeners.length > 0) setImmediate(() => this.answeredListeners.forEach((l) => l()));
  }

  private waiting(): boolean {
    return this.requests.length > 0 || this.commits.length > 0 || this.keyed.length > 0;
  }

  private schedule(): void {
    if (this.flushes.size >= this.parallel) return;
    if (this.requests.length + this.commits.length + this.keyed.length >= this.flushAt) {
      void this.flush(true);
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /**
   * Writes one batch. `early`: it leaves inside the turn that filled it; its answers are then
   * given on a later turn (`setImmediate`), not in this one's microtasks. A store that writes
   * synchronously (SQLite) would otherwise answer at once, and the work the answers start
   * (often enough commits for another early batch) would chain on in microtasks for as long
   * as hundreds of requests run in-process steps: no timer, socket or sweep would get the
   * thread meanwhile. Answered on the next turn, each early batch leaves room for them.
   */
  private flush(early = false): Promise<void> {
    if (this.flushes.size >= this.parallel) return Promise.resolve();
    // Step results get at least half of a batch: a flood of new requests must not stall the
    // requests already running (their ends are what frees room for the new ones).
    const half = Math.ceil(this.maxBatch / 2);
    const commits = this.commits.splice(0, Math.max(half, this.maxBatch - this.requests.length - this.keyed.length));
    const requests = this.requests.splice(0, this.maxBatch - commits.length);
    const keyed = this.keyed.splice(0, Math.max(0, this.maxBatch - requests.length - commits.length));
    if (requests.length === 0 && commits.length === 0 && keyed.length === 0) return Promise.resolve();
    this.writingCommits += commits.length;
    let writing: Promise<boolean[]>;
    try {
      writing = this.store.write(batchOf(requests, commits, keyed));
    } catch (err) {
      // Building the batch threw (inside a caller's `commit()` when it left early): its items fail as a failed write's do.
      writing = Promise.reject(err);
    }
    if (early) writing = writing.then(nextTurn, (err: unknown) => nextTurn(undefined).then(() => Promise.reject(err)));
    const flush: Promise<void> = writing
      .then(
        (answers) => {
          this.writingCommits -= commits.length;
          this.stats.batches++;
          this.stats.items += requests.length + commits.length + keyed.length;
          for (const p of requests) p.resolve(true);
          commits.forEach((p, i) => p.resolve(answers[i] ?? false));
          keyed.forEach((p, i) => p.resolve(answers[commits.length + i] ?? false));
        },
        (err: unknown) => {
          if (requests.length + commits.length + keyed.length > 1) return this.oneByOne(requests, commits, keyed, err);
          this.writingCommits -= commits.length;
          [...requests, ...commits, ...keyed][0]!.reject(err);
        },
      )
      .finally(() => {
        this.answered();
        this.flushes.delete(flush);
        if (this.waiting()) this.schedule();
      });
    this.flushes.add(flush);
    return flush;
  }
}
