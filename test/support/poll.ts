/**
 * The one polling loop of the tests. Each try calls `probe`; its value is returned as soon as
 * `done` accepts it; once `timeoutMs` has passed after a try that was not done, the wait fails
 * with `failure(last value)`; between tries it sleeps `everyMs`.
 *
 * ```ts
 * const view = await pollUntil(() => get(id), (v) => v.status === 'completed', { timeoutMs: 5000, failure: (v) => `stuck at ${v.status}` });
 * const port = await waitFor('the port file', () => readPort(), 10_000);
 * const hits = await settle(() => rx.hits.length, (n) => n > 0, { timeoutMs: 5000 }); // then assert on it
 * ```
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface PollOptions<T> {
  timeoutMs: number;
  /** The pause between two tries. @default 50 */
  everyMs?: number;
  /** The error message once time is up, from the last value seen. */
  failure: (last: T) => string | Promise<string>;
}

/** Calls `probe` until `done` accepts its value, and returns that value; throws after `timeoutMs`. */
export async function pollUntil<T>(probe: () => T | Promise<T>, done: (value: T) => boolean, o: PollOptions<T>): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(await o.failure(value));
    await sleep(o.everyMs ?? 50);
  }
}

/**
 * Like {@link pollUntil}, but it does not fail: once `timeoutMs` has passed it returns the last
 * value, done or not, for the test's own assertion to judge.
 */
export async function settle<T>(probe: () => T | Promise<T>, done: (value: T) => boolean, o: Omit<PollOptions<T>, 'failure'>): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(o.everyMs ?? 50);
  }
}

/** Polls `probe` until it returns something other than `undefined`/`false`; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, everyMs = 50): Promise<T> {
  const value = await pollUntil(probe, (v) => v !== undefined && v !== false, { timeoutMs, everyMs, failure: () => `timed out after ${timeoutMs} ms waiting for ${what}` });
  return value as T;
}

/** Polls `probe` until its value is truthy; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false | null>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const value = await pollUntil(probe, (v) => Boolean(v), { timeoutMs, everyMs, failure: () => `timed out waiting for ${what}` });
  return value as T;
}
