/** Stored API keys (`api_keys`, sha256 hashes only). Reached as `SqlStore.keys`. */
import { num, numOrNull } from './rows';
import type { SqlExecutor } from './sql-executor';

export interface ApiKeyRecord {
  id: string;
  hash: string;
  name: string;
  roles: string[];
  createdAt: number;
  revokedAt: number | null;
}

export class ApiKeyStore {
  constructor(private readonly x: SqlExecutor) {}

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    await this.x.run('INSERT INTO api_keys (id, hash, name, roles, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)', [
      key.id, key.hash, key.name, key.roles.join('+'), key.createdAt, key.revokedAt,
    ]);
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT id, hash, name, roles, created_at, revoked_at FROM api_keys WHERE hash = ?', [hash]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: String(r.id), hash: String(r.hash), name: String(r.name), roles: String(r.roles).split('+').filter(Boolean),
      createdAt: num(r.created_at), revokedAt: numOrNull(r.revoked_at),
    };
  }

  async countApiKeys(): Promise<number> {
    const rows = await this.x.all<{ n: unknown }>('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL');
    return num(rows[0]?.n ?? 0);
  }

  /** Every stored API key (hashes only), oldest first. */
  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>('SELECT id, hash, name, roles, created_at, revoked_at FROM api_keys ORDER BY created_at, id');
    return rows.map((r) => ({
      id: String(r.id), hash: String(r.hash), name: String(r.name), roles: String(r.roles).split('+').filter(Boolean),
      createdAt: num(r.created_at), revokedAt: numOrNull(r.revoked_at),
    }));
  }

  /** Revokes a stored key; false when there is no such key or it was revoked already. */
  async revokeApiKey(id: string, at = Date.now()): Promise<boolean> {
    return (await this.x.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id])) === 1;
  }
}
