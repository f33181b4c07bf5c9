import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: one index for a business key's queue and for the search by business key, instead
 * of two (issue "Integration", performance at 1,000,000 events).
 *
 * A keyed event entered two B-trees at a random place: the search index
 * (`ix_requests_search_business_key`: key, created, id) and, when it queued behind the
 * key's holder, the queue's (`ix_requests_key_waiters`: pipeline, key, created, id, partial
 * on `hold = 'key'`). Once they outgrew the page cache each entry was a page written of its
 * own: in the WAL of a 300,000-event bulk intake the two were 41% and 33% of the pages
 * written. `ix_requests_key_hold` is (business key, pipeline, hold, created, id): a key's
 * rows sit together, and its queued ones (`hold = 'key'`) are one range of them in promotion
 * order, which the queue's reads take from the index alone. A queued event now writes one
 * random page, and the entry it writes stays in that page when the request takes the key.
 * A search by business key reads the key's rows from it and sorts them by time.
 *
 * MariaDB keeps its indexes (`1763800000340`).
 */
export class SqliteKeyHoldIndex1763800000360 implements MigrationInterface {
  name = 'SqliteKeyHoldIndex1763800000360';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_key_hold" ON "requests" (business_key, pipeline_id, hold, created_at, id) WHERE business_key IS NOT NULL`);
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_key_waiters"');
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_search_business_key"');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_search_business_key" ON "requests" (business_key, created_at, id) WHERE business_key IS NOT NULL`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_key_waiters" ON "requests" (pipeline_id, business_key, created_at, id) WHERE hold = 'key'`);
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_key_hold"');
  }
}
