/**
 * JWT bearer tokens (issue 12 §1), verified with `jose`: HS256 with a shared secret
 * (`CONVEYOR_JWT_SECRET`), or RS256/ES256 with keys from a JWKS URL (`CONVEYOR_JWT_JWKS_URL`;
 * jose caches the set and fetches it again when a token names an unknown `kid`). Each way a
 * token can be wrong answers 401 with its own code, before anything else happens.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { JwtConfig } from '../config';
import { ClientError, ErrorCodes, type ErrorCode } from '../errors';

export type { JwtConfig };

/** Who a verified token names. */
export interface VerifiedToken {
  sub: string;
  name: string | null;
  roles: string[];
  issuer: string | null;
}

/** A compact JWS: three base64url parts, the first a JSON header (`eyJ`). */
export const looksLikeJwt = (bearer: string): boolean => /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(bearer);

const refuse = (code: ErrorCode, message: string): ClientError => new ClientError(401, code, message);

/** The jose error codes, each mapped to Conveyor's code and a message a client can act on. */
function mapJoseError(err: unknown): ClientError {
  const e = err as { code?: string; claim?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return refuse(ErrorCodes.TOKEN_EXPIRED, 'the token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'iss') return refuse(ErrorCodes.TOKEN_ISSUER, 'the token was issued by an issuer this server does not accept');
      if (e.claim === 'aud') return refuse(ErrorCodes.TOKEN_AUDIENCE, 'the token is meant for another audience');
      if (e.claim === 'nbf' || e.claim === 'iat') return refuse(ErrorCodes.TOKEN_NOT_YET_VALID, `the token is not valid yet (${e.claim})`);
      return refuse(ErrorCodes.TOKEN_INVALID, `the token's "${e.claim ?? 'claims'}" claim is invalid`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse(ErrorCodes.TOKEN_ALGORITHM, 'the token is signed with an algorithm this server does not accept');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refuse(ErrorCodes.TOKEN_SIGNATURE, 'the token signature does not verify');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      // The key set could not be had: the caller may well be right, so this is not its fault.
      return new ClientError(503, ErrorCodes.SHUTTING_DOWN, 'the token keys could not be fetched now; try again');
    default:
      return refuse(ErrorCodes.TOKEN_INVALID, 'the bearer token is not a valid JWT');
  }
}

function rolesOf(payload: JWTPayload, claim: string): string[] {
  const raw = payload[claim];
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/[\s,]+/) : [];
  return list.filter((r): r is string => typeof r === 'string' && /^[a-z][a-z0-9_-]{0,49}$/.test(r));
}

/** Verifies bearer JWTs against one configuration. */
export class TokenVerifier {
  private readonly algorithms: string[];
  private readonly check: (token: string, options: JWTVerifyOptions) => Promise<{ payload: JWTPayload }>;

  constructor(private readonly config: JwtConfig) {
    if (config.secret) {
      const secret = new TextEncoder().encode(config.secret);
      this.algorithms = ['HS256'];
      this.check = (token, options) => jwtVerify(token, secret, options);
    } else {
      // Cached; an unknown `kid` fetches the set again (at most once per cooldown).
      const keys = createRemoteJWKSet(new URL(config.jwksUrl!), { timeoutDuration: 5000, cooldownDuration: config.jwksCooldownMs, cacheMaxAge: 10 * 60_000 });
      this.algorithms = ['RS256', 'ES256'];
      this.check = (token, options) => jwtVerify(token, keys, options);
    }
  }

  /** The token's actor; throws a 401 {@link ClientError} naming what is wrong. */
  async verify(token: string): Promise<VerifiedToken> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw refuse(ErrorCodes.TOKEN_INVALID, 'the bearer token is not a valid JWT');
    }
    // `none` is refused by name, before any key is looked at.
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || !this.algorithms.includes(alg)) {
      throw refuse(ErrorCodes.TOKEN_ALGORITHM, `tokens must be signed with ${this.algorithms.join(' or ')} (got ${typeof alg === 'string' ? alg.slice(0, 20) : 'no alg'})`);
    }
    let payload: JWTPayload;
    try {
      payload = (await this.check(token, {
        algorithms: this.algorithms, issuer: this.config.issuer, audience: this.config.audience, requiredClaims: ['sub'], clockTolerance: 5,
      })).payload;
    } catch (err) {
      throw mapJoseError(err);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 100) {
      throw refuse(ErrorCodes.TOKEN_INVALID, 'the token needs a "sub" claim (the actor id, at most 100 characters)');
    }
    return {
      sub: payload.sub,
      name: typeof payload.name === 'string' ? payload.name.slice(0, 200) : null,
      roles: rolesOf(payload, this.config.rolesClaim),
      issuer: typeof payload.iss === 'string' ? payload.iss.slice(0, 200) : null,
    };
  }
}
