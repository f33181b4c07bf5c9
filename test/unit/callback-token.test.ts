/**
 * Callback tokens (src/http/callback-token.ts): a token names its run's request, so a run open
 * in its request's row (migration 1763800000370) is found by it; a token signed before that
 * (run, attempt, expiry) still verifies, and anything else in the body is refused.
 */
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { signCallback, verifyCallback } from '../../src/http/callback-token';

const SECRET = 'a-test-secret';
/** Tokens are checked at a fixed time, a minute before they expire. */
const NOW = 1_800_000_000_000;
const LATER = NOW + 60_000;

/** A token over any body text, signed as `signCallback` signs. */
function signed(text: string): string {
  const body = Buffer.from(text).toString('base64url');
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

describe('callback tokens', () => {
  it('carry the request id and read it back', () => {
    const token = signCallback(SECRET, { runId: 'run-1', attempt: 2, expiresAt: LATER, requestId: 'req-1' });
    expect(verifyCallback(SECRET, token, NOW)).to.deep.equal({ ok: true, claims: { runId: 'run-1', attempt: 2, expiresAt: LATER, requestId: 'req-1' } });
  });

  it('signed before the request id was added (three parts), still verify, without one', () => {
    expect(verifyCallback(SECRET, signed(`run-1.2.${LATER}`), NOW)).to.deep.equal({ ok: true, claims: { runId: 'run-1', attempt: 2, expiresAt: LATER } });
  });

  it('refuses an empty request id or a fifth part, even when signed', () => {
    expect(verifyCallback(SECRET, signed(`run-1.2.${LATER}.`), NOW)).to.deep.equal({ ok: false, reason: 'malformed' });
    expect(verifyCallback(SECRET, signed(`run-1.2.${LATER}.req-1.more`), NOW)).to.deep.equal({ ok: false, reason: 'malformed' });
  });

  it('refuses a token whose request id was changed', () => {
    const token = signCallback(SECRET, { runId: 'run-1', attempt: 2, expiresAt: LATER, requestId: 'req-1' });
    const [, mac] = token.split('.');
    const forged = `${Buffer.from(`run-1.2.${LATER}.req-2`).toString('base64url')}.${mac}`;
    expect(verifyCallback(SECRET, forged, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });
});
