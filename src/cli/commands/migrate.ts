/** `conveyor migrate`: applies pending schema migrations to DATABASE_URL. */
import { DEFAULT_DATABASE_URL } from '../../store/data-source';
import { migrateDatabase } from '../../store/migrate';
import { parseArgs, runCommand, UsageError, type Io } from './args';

export const MIGRATE_USAGE = `Usage: conveyor migrate [--json]

Applies every pending schema migration to DATABASE_URL (default ${DEFAULT_DATABASE_URL}),
each in its own transaction. The engine also does this when it starts; run it by hand to
migrate before a deploy. Safe to run again: it does nothing when the schema is current.
It refuses, changing nothing, a database that a newer release has migrated.

Options:
  --json                      print { dialect, applied, total } as JSON`;

export function migrateCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, MIGRATE_USAGE, async () => {
    const a = parseArgs(args, [], ['json', 'help']);
    if (a.switches.has('help')) return void io.out(MIGRATE_USAGE);
    if (a.positional.length > 0) throw new UsageError(`unexpected argument "${a.positional[0]}"`);
    const r = await migrateDatabase(io.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
    if (a.switches.has('json')) return void io.out(JSON.stringify(r, null, 2));
    if (r.applied.length === 0) io.out(`${r.dialect}: up to date (${r.total} migrations)`);
    else {
      for (const name of r.applied) io.out(`applied ${name}`);
      io.out(`${r.dialect}: ${r.applied.length} applied, ${r.total} in all`);
    }
  });
}
