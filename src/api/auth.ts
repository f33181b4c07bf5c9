import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import type { Store } from '../store/store';
import { loadConfig } from '../config';
import { looksLikeJwt, TokenVerifier, type JwtConfig } from './tokens';

/**
 * The built-in roles. A pipeline's `allow` may name more. `delegate` lets a key act for the
 * users its platform signed in (`X-Conveyor-Actor`).
 */
export const ROLES = ['submit', 'read', 'operate', 'admin', 'delegate'] as const;

/**
 * Who is calling: the key or token it came through, its global roles, and the actor (the
 * person or system the call is made for). A key acting for itself is its own actor, named
 * after the key.
 */
export interface Principal {
  /** What rate limits count against: the key's id, or `jwt:<sub>`. */
  keyId: string;
  /** The key's name, or the token's issuer. */
  name: string;
  /** Global roles. Participant roles are never taken from here (see `access/`). */
  roles: Set<string>;
  /** The actor id: `_CURRENT_USER_`, an action's `by`, the audit's `actor`. */
  actor: string;
  /** For display only. */
  actorName: string | null;
  /** What the call came through, for the audit: `key:crm`, `jwt:https://id.example`. */
  via: string;
}

const keyPrincipal = (keyId: string, name: string, roles: string[]): Principal =>
  ({ keyId, name, roles: new Set(roles), actor: name, actorName: null, via: `key:${name}` });

/** `name=key` in `CONVEYOR_API_KEYS`: a name is a slug; the key is what follows `=`. */
const NAMED_KEY = /^([a-z][a-z0-9._-]{0,99})=(.+)$/i;

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/**
 * Parses `CONVEYOR_API_KEYS="crm=crm-key-4567:submit,key2:submit+read"`. A key may be named
 * (`name=key`); an unnamed one is `env#<position>`. Throws on a malformed entry.
 */
export function parseApiKeys(spec: string): Array<{ hash: string; roles: string[]; name: string }> {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const at = entry.lastIndexOf(':');
      const head = at > 0 ? entry.slice(0, at) : '';
      const named = NAMED_KEY.exec(head);
      const key = named ? named[2]! : head;
      const roles = at > 0 ? entry.slice(at + 1).split('+').map((r) => r.trim()).filter(Boolean) : [];
      if (key.length < 8 || roles.length === 0) {
        throw new Error(`CONVEYOR_API_KEYS entry ${i + 1} must look like "[name=]<key of 8+ chars>:role+role"`);
      }
      return { hash: hashKey(key), roles, name: named ? named[1]! : `env#${i + 1}` };
    });
}

/** Finds who a bearer key belongs to: keys from the environment first, then stored keys. */
export class KeyRing {
  private readonly envKeys: Array<{ hash: Buffer; roles: string[]; name: string }>;
  /** Undefined when no `CONVEYOR_JWT_*` is set: a JWT then gets 401. */
  readonly tokens: TokenVerifier | undefined;

  constructor(
    private readonly store: Store,
    /** `CONVEYOR_API_KEYS` (`config.apiKeys`), or a test's own keys. */
    spec: string,
    /** `config.jwt`; by default read from the environment now. */
    jwt: JwtConfig | undefined = loadConfig().jwt,
  ) {
    this.envKeys = parseApiKeys(spec).map((k) => ({ ...k, hash: Buffer.from(k.hash, 'hex') }));
    const names = this.envKeys.map((k) => k.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new Error(`CONVEYOR_API_KEYS names two keys "${twice}"`);
    this.tokens = jwt ? new TokenVerifier(jwt) : undefined;
  }

  get hasEnvKeys(): boolean {
    return this.envKeys.length > 0;
  }

  async identify(key: string): Promise<Principal | undefined> {
    const digest = Buffer.from(hashKey(key), 'hex');
    let found: Principal | undefined;
    // Every configured key is compared, in constant time, whichever matches.
    for (const k of this.envKeys) {
      if (timingSafeEqual(k.hash, digest) && !found) found = keyPrincipal(k.name, k.name, k.roles);
    }
    if (found) return found;
    const stored = await this.store.findApiKey(digest.toString('hex'));
    if (stored && stored.revokedAt === null) return keyPrincipal(stored.id, stored.name, stored.roles);
    return undefined;
  }

  /** The actor of a bearer JWT; throws 401 with the reason's own code. */
  async identifyToken(token: string): Promise<Principal> {
    if (!this.tokens) throw new ClientError(401, ErrorCodes.TOKENS_DISABLED, 'this server accepts API keys only (no CONVEYOR_JWT_SECRET or CONVEYOR_JWT_JWKS_URL is set)');
    const t = await this.tokens.verify(token);
    return { keyId: `jwt:${t.sub}`, name: t.issuer ?? 'jwt', roles: new Set(t.roles), actor: t.sub, actorName: t.name, via: `jwt:${t.issuer ?? 'local'}` };
  }

  /** Creates a stored key and returns it in clear: the only time it is ever visible. */
  async create(name: string, roles: string[]): Promise<string> {
    const key = `cvk_${randomBytes(24).toString('base64url')}`;
    await this.store.insertApiKey({ id: newId(), hash: hashKey(key), name, roles, createdAt: Date.now(), revokedAt: null });
    return key;
  }

  /** On the first start with no key anywhere, makes an admin key. Returns it, or undefined. */
  async ensureAdminKey(): Promise<string | undefined> {
    if (this.hasEnvKeys || (await this.store.countApiKeys()) > 0) return undefined;
    return this.create('initial-admin', ['admin']);
  }
}

/**
 * Reads `Authorization: Bearer <key or JWT>` (and, from a `delegate` key, `X-Conveyor-Actor*`)
 * and sets `ctx.state.principal`.
 */
export function authMiddleware(keys: KeyRing) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('authorization');
    const m = /^Bearer\s+(\S{1,8192})$/i.exec(header);
    if (!m?.[1]) {
      throw new ClientError(401, ErrorCodes.UNAUTHORIZED, header ? 'Authorization must be "Bearer <api key or JWT>"' : 'an API key or token is required: Authorization: Bearer <key>');
    }
    const principal = looksLikeJwt(m[1]) ? await keys.identifyToken(m[1]) : await keys.identify(m[1]);
    if (!principal) throw new ClientError(401, ErrorCodes.UNAUTHORIZED, 'unknown or revoked API key');
    ctx.state.principal = delegated(principal, (name) => ctx.get(name));
    await next();
  };
}

const ACTOR_ID = /^[\x21-\x7e][\x20-\x7e]{0,99}$/;
const ROLE_NAME = /^[a-z][a-z0-9_-]{0,49}$/;

/**
 * The principal after `X-Conveyor-Actor*`: the same one when none is sent; the named actor,
 * with the roles named, when a `delegate` key sends them. Refused (403) from anyone else, and
 * when the key would hand on a role it does not hold itself (or `delegate`).
 */
export function delegated(principal: Principal, header: (name: string) => string): Principal {
  const actor = header('x-conveyor-actor');
  const rolesHeader = header('x-conveyor-actor-roles');
  const name = header('x-conveyor-actor-name');
  if (!actor && !rolesHeader && !name) return principal;
  if (!principal.via.startsWith('key:') || !holds(principal, 'delegate')) {
    throw new ClientError(403, ErrorCodes.DELEGATION_FORBIDDEN, 'X-Conveyor-Actor headers need a key with the "delegate" role');
  }
  if (!ACTOR_ID.test(actor)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'X-Conveyor-Actor must be the actor id: 1-100 printable ASCII characters');
  const roles = rolesHeader.split(',').map((r) => r.trim()).filter(Boolean);
  const bad = roles.find((r) => !ROLE_NAME.test(r));
  if (bad !== undefined) throw new ClientError(400, ErrorCodes.BAD_PARAM, `X-Conveyor-Actor-Roles: "${bad.slice(0, 50)}" is not a role name`);
  const beyond = roles.filter((r) => r === 'delegate' || !holds(principal, r));
  if (beyond.length > 0) {
    throw new ClientError(403, ErrorCodes.DELEGATION_FORBIDDEN, `this key cannot hand on roles it does not hold: ${beyond.join(', ')}`, { roles: beyond });
  }
  return { ...principal, roles: new Set(roles), actor, actorName: name ? name.slice(0, 200) : null };
}

/** A person rather than a system: a token's actor, or one a delegate key acts for. */
export const isPerson = (principal: Principal): boolean => !principal.via.startsWith('key:') || principal.actor !== principal.name;

/** Roles that imply others: admin can do anything; operate can read. */
export function holds(principal: Principal, role: string): boolean {
  if (principal.roles.has('admin') || principal.roles.has(role)) return true;
  return role === 'read' && principal.roles.has('operate');
}

/** Route guard: the caller needs `role` (or a role that implies it). */
export function requireRole(role: (typeof ROLES)[number]) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const principal = ctx.state.principal as Principal | undefined;
    if (!principal || !holds(principal, role)) {
      throw new ClientError(403, ErrorCodes.FORBIDDEN, `this needs the "${role}" role`);
    }
    await next();
  };
}
