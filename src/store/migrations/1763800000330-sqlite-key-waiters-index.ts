import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: the requests queued for a business key get an index of their own, and the
 * (pipeline, business key, status) index that served those reads goes (issue "Integration",
 * performance at 1,000,000 events).
 *
 * `ix_requests_business_key` was read only as "the requests with `hold = 'key'` of this
 * pipeline and key" (has the key waiters, which is the oldest). Every keyed request entered it
 * at a random place (keys are SKUs, order numbers) and moved inside it at each status change,
 * and the reads then looked at every request the key ever had, row by row, for its `hold`.
 * On a deep backlog (a million catalog events) those random pages were the part of a stored
 * event that grew with the table: pages read and written per event rose with its size.
 *
 * `ix_requests_key_waiters` (pipeline, business key, created_at, id) `WHERE hold = 'key'`
 * holds only the queued requests, in the order they are promoted. A request enters it when it
 * queues and leaves it when it takes the key; a request that takes the key at once, and every
 * status change, never touches it. The waiter reads are answered from the index alone.
 *
 * MariaDB has no partial indexes; its index stays as it is.
 */
export class SqliteKeyWaitersIndex1763800000330 implements MigrationInterface {
  name = 'SqliteKeyWaitersIndex1763800000330';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_key_waiters" ON "requests" (pipeline_id, business_key, created_at, id) WHERE hold = 'key'`);
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_business_key"');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_business_key" ON "requests" (pipeline_id, business_key, status) WHERE business_key IS NOT NULL`);
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_key_waiters"');
  }
}
