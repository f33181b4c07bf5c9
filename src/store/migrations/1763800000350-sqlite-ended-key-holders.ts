import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: the requests that ended and still hold their business key get a small index of
 * their own (issue "Integration", performance at 1,000,000 events).
 *
 * A submit under `onConflict: 'queue'` asks whether an active request holds its key. The
 * unique index `uq_requests_active_key` says whether anyone holds it, but "active" needed the
 * holder's status, from its table row: a page at a random place in the largest B-tree of the
 * database, read back from the disk cache for most events once the table outgrew the page
 * cache (0.7 of the ~2 page reads per event on the engine's thread at 300,000 events). A
 * holder that ended and kept its key is rare: a `reuse` policy keeps it on purpose, and an
 * ended request holds it only until its hand-over. `ix_requests_key_ended` holds just those,
 * so both questions are answered from indexes (`IntakeStore.mustQueueForKey`).
 *
 * MariaDB has no partial indexes, and there the read is one round trip either way.
 */
export class SqliteEndedKeyHolders1763800000350 implements MigrationInterface {
  name = 'SqliteEndedKeyHolders1763800000350';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_key_ended" ON "requests" (pipeline_id, active_key) WHERE active_key IS NOT NULL AND status IN ('completed', 'stopped')`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_key_ended"');
  }
}
