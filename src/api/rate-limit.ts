/**
 * Per-key rate limiting for intake: a token bucket per API key, `CONVEYOR_SUBMIT_RATE`
 * (`<max>/<duration>`, e.g. `100/1s`). Over the limit a caller gets 429 with `Retry-After`.
 * The limit is per process; with several api processes each enforces it on its own share.
 */
import type { Context, Next } from 'koa';
import { ClientError, ErrorCodes } from '../errors';
import { parseDuration } from '../pipeline/duration';
import type { Principal } from './auth';

export interface RateSpec {
  max: number;
  perMs: number;
}

/** Parses `100/1s`; throws a clear error on anything else. */
export function parseRate(spec: string): RateSpec {
  const m = /^(\d+)\/(.+)$/.exec(spec.trim());
  const perMs = m ? parseDuration(m[2]) : undefined;
  if (!m || !perMs || Number(m[1]) < 1) throw new Error(`a rate must look like "100/1s" (got "${spec}")`);
  return { max: Number(m[1]), perMs };
}

export class KeyRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: RateSpec) {}

  /** Takes `n` tokens for `key`; returns 0 when allowed, else the ms to wait. */
  take(key: string, n = 1, now = Date.now()): number {
    const refill = this.rate.max / this.rate.perMs;
    const b = this.buckets.get(key) ?? { tokens: this.rate.max, at: now };
    b.tokens = Math.min(this.rate.max, b.tokens + (now - b.at) * refill);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.buckets.clear(); // bounded memory under key churn
    if (b.tokens >= n) {
      b.tokens -= n;
      return 0;
    }
    return Math.ceil((n - b.tokens) / refill);
  }
}

/** Koa middleware: 429 when the caller's key is over the submit rate. No-op without a limit. */
export function submitRateLimit(spec: string | undefined) {
  const limiter = spec ? new KeyRateLimiter(parseRate(spec)) : undefined;
  return async (ctx: Context, next: Next): Promise<void> => {
    const principal = ctx.state.principal as Principal | undefined;
    if (limiter && principal) {
      const waitMs = limiter.take(principal.keyId);
      if (waitMs > 0) {
        ctx.set('retry-after', String(Math.ceil(waitMs / 1000)));
        throw new ClientError(429, ErrorCodes.RATE_LIMITED, `this key is over its submit rate (${spec}); retry in ${Math.ceil(waitMs / 1000)} s`);
      }
    }
    await next();
  };
}
