/**
 * Signatures of end-of-request callbacks: `X-Conveyor-Signature: t=<unix seconds>,v1=<hex>`,
 * where the hex is HMAC-SHA256 over `<t>.<raw body>`. The timestamp lets a receiver refuse
 * replays; the comparison is constant-time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-conveyor-signature';

/** Signs `body` (the exact bytes sent) at `timestampS`. */
export function signBody(secret: string, body: string, timestampS = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex');
  return `t=${timestampS},v1=${mac}`;
}

/** Checks a signature header against `body`; refuses one older than `toleranceS`. */
export function verifyBody(secret: string, body: string, header: string, toleranceS = 300, nowS = Math.floor(Date.now() / 1000)): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(parts.v1);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
