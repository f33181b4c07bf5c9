import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: `ix_requests_hold` (pipeline, hold, created_at) becomes partial, `hold IS NOT NULL`.
 * Only requests held by a gate or behind a business key are ever looked up through it, always
 * as `hold = 'gate'` or `hold = 'key'` (which SQLite knows implies `hold IS NOT NULL`); every
 * other request entered it with a NULL hold, one index page written per request for nothing
 * (issue "Performance", `scripts/bench/page-map.ts`). A request leaving its hold leaves the
 * index, as before. MariaDB has no partial indexes; its index stays as it is.
 */
export class SqlitePartialHold1763800000310 implements MigrationInterface {
  name = 'SqlitePartialHold1763800000310';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_hold"');
    await queryRunner.query('CREATE INDEX "ix_requests_hold" ON "requests" (pipeline_id, hold, created_at) WHERE hold IS NOT NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_hold"');
    await queryRunner.query('CREATE INDEX "ix_requests_hold" ON "requests" (pipeline_id, hold, created_at)');
  }
}
