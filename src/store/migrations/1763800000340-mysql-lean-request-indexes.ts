import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * MariaDB/MySQL: a request's status change moves it in three indexes of `requests`, not six
 * (issue "Performance"; migration `1763800000320` did the same for `step_runs`). A step
 * commit that leaves the status and the finish time as they are changes no secondary index
 * of `requests` (InnoDB leaves an index alone when none of its columns changes). A start
 * (`buffered → running`) and an end (`running → completed`, with `finished_at`) changed
 * `status` in six: each delete-marked and re-inserted an entry (and purge removed it later),
 * for rows no query on that index wants. SQLite keeps partial indexes for these
 * (`1763800000300`, `1763800000310`, `1763800000330`); here stored generated columns that are
 * NULL for the rows a query never wants stand in:
 *
 * - `buffered_status`: 'buffered' for a request waiting to start, else NULL. Replaces `status`
 *   in `ix_requests_status` (SQLite: `WHERE status = 'buffered'`); the stale-buffered sweep
 *   and the released-start sweep ask `buffered_status = 'buffered'`. The other status
 *   queries read `ix_requests_search_status`.
 * - `key_queued_at`: `created_at` of a request queued for its business key (`hold = 'key'`),
 *   else NULL. `ix_requests_key_waiters` (pipeline, business key, key_queued_at) replaces
 *   `ix_requests_business_key` (pipeline, business key, status), which every request moved
 *   in at each status change (a NULL key included) and whose reads checked every request the
 *   key ever had, row by row, for its hold (as SQLite's `1763800000330`).
 * - `callback_status`: the status of a request with a callback to deliver (`callback_due`
 *   set), else NULL. Replaces `status` in `ix_requests_callback_due`.
 * - `finished_status`: the status once `finished_at` is set, else NULL. Replaces `status` in
 *   `ix_requests_finished`: an open request no longer moves in it at a start or a wait; it
 *   enters the finished part once, when it ends (its `finished_at` changes anyway). The
 *   overview's count of finished requests reads it (still from the index alone).
 *
 * `ix_requests_search_status` and `ix_requests_search_pipeline_status` stay: they find the
 * open requests (search, admission and backlog counts), which must leave them when they end.
 */
const COLUMNS = [
  "buffered_status VARCHAR(16) AS (IF(status = 'buffered', status, NULL)) STORED",
  "key_queued_at BIGINT AS (IF(hold = 'key', created_at, NULL)) STORED",
  'callback_status VARCHAR(16) AS (IF(callback_due IS NULL, NULL, status)) STORED',
  'finished_status VARCHAR(16) AS (IF(finished_at IS NULL, NULL, status)) STORED',
];
const REPLACED: Array<{ name: string; old: string; now: string }> = [
  { name: 'ix_requests_status', old: 'status, release_at', now: 'buffered_status, release_at' },
  { name: 'ix_requests_business_key', old: 'pipeline_id, business_key, status', now: '' },
  { name: 'ix_requests_key_waiters', old: '', now: 'pipeline_id, business_key, key_queued_at' },
  { name: 'ix_requests_callback_due', old: 'status, callback_due', now: 'callback_status, callback_due' },
  { name: 'ix_requests_finished', old: 'finished_at, pipeline_id, status', now: 'finished_at, pipeline_id, finished_status' },
];

export class MysqlLeanRequestIndexes1763800000340 implements MigrationInterface {
  name = 'MysqlLeanRequestIndexes1763800000340';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    // One ALTER: the table is rebuilt once (the stored columns), with its new indexes.
    const changes = [
      ...COLUMNS.map((c) => `ADD COLUMN ${c}`),
      ...REPLACED.filter((ix) => ix.old).map((ix) => `DROP INDEX ${ix.name}`),
      ...REPLACED.filter((ix) => ix.now).map((ix) => `ADD INDEX ${ix.name} (${ix.now})`),
    ];
    await queryRunner.query(`ALTER TABLE requests ${changes.join(', ')}`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    const changes = [
      ...REPLACED.filter((ix) => ix.now).map((ix) => `DROP INDEX ${ix.name}`),
      ...REPLACED.filter((ix) => ix.old).map((ix) => `ADD INDEX ${ix.name} (${ix.old})`),
      ...COLUMNS.map((c) => `DROP COLUMN ${c.split(' ')[0]}`),
    ];
    await queryRunner.query(`ALTER TABLE requests ${changes.join(', ')}`);
  }
}
