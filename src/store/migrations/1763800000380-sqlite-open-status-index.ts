import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: a step no longer moves its request's entry in an index (issue "Performance", one
 * request alone). `ix_requests_open_lease` (open status, lease) had the lease in its key, and
 * every step gives its attempt a new lease, so each step commit deleted and re-inserted the
 * request's entry: a page of the WAL every commit, for an index the sweeps read once a second.
 * In its place:
 *
 * - `ix_requests_open_status` (open status), partial on an open attempt: its entry changes only
 *   when the open status does (a first attempt, `dispatched` → `waiting`, the last one ending),
 *   and a step commit that leaves it as it was does not name `open_status` in its `UPDATE`
 *   (`write.ts`), so SQLite leaves the index alone. The sweep of expired leases reads the
 *   dispatched attempts through it (one per request in flight, at most `CONVEYOR_MAX_IN_FLIGHT`
 *   per engine) and keeps those past their lease;
 * - `ix_requests_open_wait` (deadline), partial on `open_status = 'waiting'`: the attempts a
 *   module accepted with `202` (which may be many, and wait for long), whose deadlines the
 *   sweep reads in order. A step that only changes a lease does not touch it (the row is not
 *   waiting).
 *
 * MariaDB kept `ix_requests_open_lease` here; `1763800000390` replaces it the same way (its
 * lease changed every step too, so InnoDB moved the entry as SQLite did).
 */
export class SqliteOpenStatusIndex1763800000380 implements MigrationInterface {
  name = 'SqliteOpenStatusIndex1763800000380';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query('CREATE INDEX IF NOT EXISTS "ix_requests_open_status" ON "requests" (open_status) WHERE open_status IS NOT NULL');
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS "ix_requests_open_wait" ON "requests" (open_lease) WHERE open_status = 'waiting'`);
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_open_lease"');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    await queryRunner.query('CREATE INDEX IF NOT EXISTS "ix_requests_open_lease" ON "requests" (open_status, open_lease) WHERE open_status IS NOT NULL');
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_open_wait"');
    await queryRunner.query('DROP INDEX IF EXISTS "ix_requests_open_status"');
  }
}
