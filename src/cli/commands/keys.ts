/**
 * `conveyor keys create|list|revoke`: API keys stored (hashed) in the database, managed
 * directly on the store (`DATABASE_URL`), so the first keys can be made before any API key
 * exists. Keys from `CONVEYOR_API_KEYS` are not stored and are not listed here.
 */
import { hashKey, KeyRing, ROLES } from '../../api/auth';
import { isId } from '../../ids';
import { DEFAULT_DATABASE_URL } from '../../store/data-source';
import { SqlStore } from '../../store/store';
import { CommandError, parseArgs, runCommand, table, UsageError, type Io } from './args';

export const KEYS_USAGE = `Usage: conveyor keys <create|list|revoke> [options]

  keys create --name <name> --roles <role+role>   makes a key and prints it (the only time it is shown)
  keys list                                       lists stored keys (never the keys themselves)
  keys revoke <key-id>                            revokes a key at once

Roles: ${ROLES.join(', ')} (admin may do anything; operate implies read), or any role a
pipeline's actions name in "allow".

Options:
  --name <name>               create: the key's name (required)
  --roles <role+role>         create: its roles, joined with + (required)
  --json                      machine-readable output

The database is DATABASE_URL (default ${DEFAULT_DATABASE_URL}).`;

const ROLE = /^[a-z][a-z0-9_-]{0,49}$/;

export function keysCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, KEYS_USAGE, async () => {
    const a = parseArgs(args, ['name', 'roles'], ['json', 'help']);
    if (a.switches.has('help')) return void io.out(KEYS_USAGE);
    const [sub, ...rest] = a.positional;
    const json = a.switches.has('json');
    if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') throw new UsageError(sub ? `unknown keys command "${sub}"` : 'name a keys command: create, list or revoke');
    if (sub === 'create') {
      const name = a.flags.name;
      const roles = (a.flags.roles ?? '').split('+').map((r) => r.trim()).filter(Boolean);
      if (!name || name.length > 100) throw new UsageError('--name is required (at most 100 characters)');
      if (roles.length === 0) throw new UsageError('--roles is required, e.g. --roles read+operate');
      const bad = roles.find((r) => !ROLE.test(r));
      if (bad) throw new UsageError(`"${bad}" is not a role name (lower-case letters, digits, - and _)`);
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    } else if (sub === 'revoke' && (rest.length !== 1 || !isId(rest[0]!))) throw new UsageError('name exactly one key id (see "conveyor keys list")');
    else if (sub === 'list' && rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);

    const store = await SqlStore.open(io.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
    try {
      if (sub === 'create') {
        const roles = a.flags.roles!.split('+').map((r) => r.trim()).filter(Boolean);
        const key = await new KeyRing(store, '').create(a.flags.name!, roles);
        const created = await store.findApiKey(hashKey(key));
        if (json) return void io.out(JSON.stringify({ id: created?.id ?? null, name: a.flags.name, roles, key }, null, 2));
        io.out(`created key ${created?.id ?? ''} "${a.flags.name}" (${roles.join('+')}). It is shown only this once:`);
        io.out(`  ${key}`);
        return;
      }
      if (sub === 'list') {
        const keys = await store.listApiKeys();
        if (json) {
          return void io.out(JSON.stringify(keys.map((k) => ({
            id: k.id, name: k.name, roles: k.roles, createdAt: new Date(k.createdAt).toISOString(),
            revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
          })), null, 2));
        }
        if (keys.length === 0) return void io.out('no stored keys');
        const rows = [['ID', 'NAME', 'ROLES', 'CREATED', 'STATUS']];
        for (const k of keys) rows.push([k.id, k.name, k.roles.join('+'), new Date(k.createdAt).toISOString(), k.revokedAt === null ? 'active' : `revoked ${new Date(k.revokedAt).toISOString()}`]);
        for (const line of table(rows)) io.out(line);
        return;
      }
      const id = rest[0]!;
      if (!(await store.revokeApiKey(id))) {
        const known = (await store.listApiKeys()).find((k) => k.id === id);
        throw new CommandError(known ? `key ${id} was already revoked` : `no stored key ${id}`);
      }
      if (json) return void io.out(JSON.stringify({ id, revoked: true }));
      io.out(`revoked key ${id}`);
    } finally {
      await store.close();
    }
  });
}
