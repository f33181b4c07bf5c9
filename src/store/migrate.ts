/** Schema migrations on demand (`conveyor migrate`); the engine also runs them when it opens the store. */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions, runKnownMigrations } from './data-source';

/** What {@link migrateDatabase} did. */
export interface MigrationReport {
  /** Migrations this call applied, oldest first. */
  applied: string[];
  /** Every migration the database has now. */
  total: number;
  dialect: 'sqlite' | 'mysql';
}

/**
 * Applies every pending migration to the database at `url`, each in its own transaction.
 * Rejects with `SchemaAheadError`, changing nothing, when a newer release has migrated it.
 */
export async function migrateDatabase(url: string): Promise<MigrationReport> {
  const ds = new DataSource(dataSourceOptions(url));
  await ds.initialize();
  try {
    const applied = await runKnownMigrations(ds);
    const rows = (await ds.query('SELECT COUNT(*) AS n FROM migrations')) as Array<{ n: unknown }>;
    return { applied, total: Number(rows[0]?.n ?? 0), dialect: ds.driver.options.type === 'mysql' ? 'mysql' : 'sqlite' };
  } finally {
    await ds.destroy();
  }
}
