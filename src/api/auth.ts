import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import type { Store } from '../store/store';

/** The built-in roles. A pipeline's `allow` may name more. */
export const ROLES = ['submit', 'read', 'operate', 'admin'] as const;

export interface Principal {
  keyId: string;
  name: string;
  roles: Set<string>;
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** Parses `CONVEYOR_API_KEYS="key1:admin,key2:submit+read"`. Throws on a malformed entry. */
export function parseApiKeys(spec: string): Array<{ hash: string; roles: string[]; name: string }> {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const at = entry.lastIndexOf(':');
      const key = at > 0 ? entry.slice(0, at) : '';
      const roles = at > 0 ? entry.slice(at + 1).split('+').map((r) => r.trim()).filter(Boolean) : [];
      if (key.length < 8 || roles.length === 0) {
        throw new Error(`CONVEYOR_API_KEYS entry ${i + 1} must look like "<key of 8+ chars>:role+role"`);
      }
      return { hash: hashKey(key), roles, name: `env#${i + 1}` };
    });
}

/** Finds who a bearer key belongs to: keys from the environment first, then stored keys. */
export class KeyRing {
  private readonly envKeys: Array<{ hash: Buffer; roles: string[]; name: string }>;

  constructor(
    private readonly store: Store,
    spec = process.env.CONVEYOR_API_KEYS ?? '',
  ) {
    this.envKeys = parseApiKeys(spec).map((k) => ({ ...k, hash: Buffer.from(k.hash, 'hex') }));
  }

  get hasEnvKeys(): boolean {
    return this.envKeys.length > 0;
  }

  async identify(key: string): Promise<Principal | undefined> {
    const digest = Buffer.from(hashKey(key), 'hex');
    let found: Principal | undefined;
    // Every configured key is compared, in constant time, whichever matches.
    for (const k of this.envKeys) {
      if (timingSafeEqual(k.hash, digest) && !found) found = { keyId: k.name, name: k.name, roles: new Set(k.roles) };
    }
    if (found) return found;
    const stored = await this.store.findApiKey(digest.toString('hex'));
    if (stored && stored.revokedAt === null) return { keyId: stored.id, name: stored.name, roles: new Set(stored.roles) };
    return undefined;
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

/** Reads `Authorization: Bearer <key>` and sets `ctx.state.principal`. */
export function authMiddleware(keys: KeyRing) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('authorization');
    const m = /^Bearer\s+(\S{1,512})$/i.exec(header);
    if (!m?.[1]) {
      throw new ClientError(401, ErrorCodes.UNAUTHORIZED, header ? 'Authorization must be "Bearer <api key>"' : 'an API key is required: Authorization: Bearer <key>');
    }
    const principal = await keys.identify(m[1]);
    if (!principal) throw new ClientError(401, ErrorCodes.UNAUTHORIZED, 'unknown or revoked API key');
    ctx.state.principal = principal;
    await next();
  };
}

/** Roles that imply others: admin can do anything; operate can read. */
function holds(principal: Principal, role: string): boolean {
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
