/**
 * Callback tokens for the HTTP module protocol's `202`: HMAC-signed, bound to one run and
 * attempt, and expiring. A forged, altered or expired token is refused before anything is read.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CallbackClaims {
  runId: string;
  attempt: number;
  /** ms since epoch */
  expiresAt: number;
  /**
   * The run's request: an attempt open in its request's row is found by it (migration
   * `1763800000370`). Tokens signed before it was added have none; their runs are in the step log.
   */
  requestId?: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

export function signCallback(secret: string, c: CallbackClaims): string {
  const body = b64(`${c.runId}.${c.attempt}.${c.expiresAt}${c.requestId === undefined ? '' : `.${c.requestId}`}`);
  const mac = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${mac}`;
}

export type VerifyResult = { ok: true; claims: CallbackClaims } | { ok: false; reason: 'malformed' | 'forged' | 'expired' };

export function verifyCallback(secret: string, token: string, now = Date.now()): VerifyResult {
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined || token.length > 512) return { ok: false, reason: 'malformed' };
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'forged' };
  const [runId, attempt, expiresAt, requestId, more] = Buffer.from(body, 'base64url').toString('utf8').split('.');
  const claims: CallbackClaims = { runId: runId ?? '', attempt: Number(attempt), expiresAt: Number(expiresAt) };
  if (requestId !== undefined) claims.requestId = requestId;
  if (!claims.runId || !Number.isInteger(claims.attempt) || !Number.isFinite(claims.expiresAt) || requestId === '' || more !== undefined) return { ok: false, reason: 'malformed' };
  if (claims.expiresAt < now) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
