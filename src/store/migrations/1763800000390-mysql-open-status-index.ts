import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * MariaDB/MySQL: a step no longer moves its request's entry in an index (issue "Performance"),
 * as `1763800000380` did for SQLite. `ix_requests_open_lease` (open status, lease) had the
 * lease in its key, and every step gives its attempt a new lease, so each step commit
 * delete-marked the request's entry and inserted another (and purge removed the old one
 * later). Measured on the distributed bench (`distributed linear 5000`), three interleaved
 * pairs: MariaDB's CPU per request 6–10% lower, redo per step 3.10 → 2.89 KiB
 * (docs/performance.md). In its place:
 *
 * - `ix_requests_open_status` (open status): its entry changes only when the open status does
 *   (a first attempt, `dispatched` → `waiting`, the last one ending); InnoDB leaves an index
 *   alone when none of its columns changes. The sweep of expired leases reads the dispatched
 *   attempts open in requests' rows through it (every one in flight in the cluster, each
 *   looked up in its row) and keeps those past their lease, as SQLite's does; so it runs
 *   once a quarter of the shortest lease has passed rather than every sweep
 *   (`SupervisorTimers`).
 * - `ix_requests_open_wait` on `open_wait_lease`, a stored generated column: the deadline of an
 *   attempt a module accepted with `202` (`open_status = 'waiting'`), else NULL, the stand-in
 *   for SQLite's partial index. The sweep of expired callback deadlines names it and reads
 *   them in order; a step that only changes a lease leaves it NULL, and the index alone.
 */
export class MysqlOpenStatusIndex1763800000390 implements MigrationInterface {
  name = 'MysqlOpenStatusIndex1763800000390';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    // One ALTER: the table is rebuilt once (the stored column), with its new indexes.
    await queryRunner.query(
      "ALTER TABLE requests ADD COLUMN open_wait_lease BIGINT AS (IF(open_status = 'waiting', open_lease, NULL)) STORED, " +
        'DROP INDEX ix_requests_open_lease, ADD INDEX ix_requests_open_status (open_status), ADD INDEX ix_requests_open_wait (open_wait_lease)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    await queryRunner.query(
      'ALTER TABLE requests DROP INDEX ix_requests_open_wait, DROP INDEX ix_requests_open_status, DROP COLUMN open_wait_lease, ' +
        'ADD INDEX ix_requests_open_lease (open_status, open_lease)',
    );
  }
}
