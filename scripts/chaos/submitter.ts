/**
 * Submits the campaign's requests through the HTTP API while processes die under it.
 *
 * Each request has a tag, sent both as `payload.tag` and as the `Idempotency-Key`. A submit
 * whose answer is lost (refused connection, reset, timeout, 503 while shutting down, a 5xx)
 * is an *unknown*, not a failure: it is sent again, with the same key and body, until the API
 * answers 2xx. The API then answers with the request it already stored (200, replayed), or
 * stores it now (202). So every tag ends with exactly one id, and a retried submit never
 * makes a second request; the verdict checks both in the database.
 */

export interface SubmitStats {
  /** Tags with an id. */
  accepted: number;
  /** HTTP calls made. */
  calls: number;
  /** Calls whose answer was lost or a 5xx/503/429, and were sent again. */
  retries: number;
  /** 2xx answers that were idempotent replays of a stored request. */
  replays: number;
  /** Tags refused with a 4xx: a violation (the payload is valid). */
  refused: number;
  /** Tags that got two different ids (must be 0). */
  conflictingIds: number;
  /** Tags still without an answer at the deadline. */
  unanswered: number;
  /** Lost answers by kind. */
  lost: Record<string, number>;
  refusedSamples: string[];
}

export interface SubmitOptions {
  url: string;
  key: string;
  pipeline: string;
  tags: string[];
  /** Submits in flight at once. @default 32 */
  concurrency?: number;
  /** Target submits per second (a pace, not a cap on retries). 0: as fast as possible. @default 0 */
  rate?: number;
  /** Stop retrying after this time (epoch ms). */
  deadline: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Submitter {
  /** tag → id, as the API answered. */
  readonly ids = new Map<string, string>();
  private readonly s: Omit<SubmitStats, 'accepted' | 'unanswered'> = { calls: 0, retries: 0, replays: 0, refused: 0, conflictingIds: 0, lost: {}, refusedSamples: [] };
  private next = 0;
  private t0 = 0;

  constructor(private readonly o: SubmitOptions) {}

  stats(): SubmitStats {
    return { ...this.s, accepted: this.ids.size, unanswered: this.o.tags.length - this.ids.size - this.s.refused };
  }

  /** Resolves when every tag has an answer, or the deadline passed. */
  async run(): Promise<void> {
    this.t0 = Date.now();
    await Promise.all(Array.from({ length: this.o.concurrency ?? 32 }, () => this.worker()));
  }

  private async worker(): Promise<void> {
    const rate = this.o.rate ?? 0;
    while (this.next < this.o.tags.length && Date.now() < this.o.deadline) {
      const i = this.next++;
      if (rate > 0) {
        const due = this.t0 + (i * 1000) / rate;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await this.submitOne(this.o.tags[i]!, i);
    }
  }

  private async submitOne(tag: string, i: number): Promise<void> {
    const body = JSON.stringify({ tag, i });
    for (let attempt = 0; Date.now() < this.o.deadline; attempt++) {
      if (attempt > 0) {
        this.s.retries++;
        await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)) + Math.floor(Math.random() * 50));
      }
      this.s.calls++;
      let status: number;
      let text: string;
      let replayed: boolean;
      try {
        const res = await fetch(`${this.o.url}/api/pipelines/${this.o.pipeline}/requests`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.o.key}`, 'content-type': 'application/json', 'idempotency-key': tag },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        replayed = res.headers.get('idempotent-replayed') === 'true';
        text = await res.text();
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        const kind = e.cause?.code ?? e.name;
        this.s.lost[kind] = (this.s.lost[kind] ?? 0) + 1;
        continue;
      }
      if (status === 200 || status === 202) {
        const id = (JSON.parse(text) as { id?: string }).id;
        if (!id) throw new Error(`a ${status} without an id: ${text.slice(0, 200)}`);
        const before = this.ids.get(tag);
        if (before !== undefined && before !== id) this.s.conflictingIds++;
        this.ids.set(tag, id);
        if (replayed) this.s.replays++;
        return;
      }
      if (status >= 500 || status === 429 || status === 408) {
        this.s.lost[`http ${status}`] = (this.s.lost[`http ${status}`] ?? 0) + 1;
        continue;
      }
      this.s.refused++;
      if (this.s.refusedSamples.length < 5) this.s.refusedSamples.push(`#${i} ${status} ${text.slice(0, 200)}`);
      return;
    }
  }
}
