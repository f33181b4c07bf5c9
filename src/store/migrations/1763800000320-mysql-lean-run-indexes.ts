import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * MariaDB/MySQL: a step's close (`dispatched → completed`) no longer moves the run in five
 * indexes. InnoDB changes a secondary index on UPDATE only when a column of that index
 * changes, and `status` was in five of `step_runs`' nine: each close delete-marked and
 * re-inserted five entries (and purge removed them later), for rows that no sweep or search
 * looks for. MariaDB has no partial indexes (SQLite got them in migrations `1763800000090`
 * and `1763800000300`); stored generated columns that are NULL for the rows a query never
 * wants play their part: their value, and so their index entries, do not change when such a
 * run closes.
 *
 * - `due_at`: `available_at` of a pending run, else NULL. Replaces `(status, available_at)`;
 *   the sweeper asks `due_at <= ?` (`step-store.ts`).
 * - `wait_status`: the status of a run that waits for an event, else NULL. Replaces `status`
 *   in `(wait_event, wait_key, status)`.
 * - `searched_status`: the status when it is one a user hunts for (waiting, failed,
 *   cancelled, as on SQLite), else NULL. Replaces `status` in the two status search indexes;
 *   the search (`search.ts`) filters on it for those statuses and reaches the others through
 *   the sweeper's indexes (pending, dispatched: few rows) or the time indexes (completed:
 *   most rows).
 *
 * `(status, lease_until)` stays: a closing run must leave the lease sweep anyway, so one
 * entry moves per close, against five before.
 */
export const MYSQL_SEARCHED_RUN_STATUSES = ['waiting', 'failed', 'cancelled'] as const;
const inList = (xs: readonly string[]): string => xs.map((s) => `'${s}'`).join(',');

const COLUMNS = [
  "due_at BIGINT AS (IF(status = 'pending', available_at, NULL)) STORED",
  'wait_status VARCHAR(16) AS (IF(wait_event IS NULL, NULL, status)) STORED',
  `searched_status VARCHAR(16) AS (IF(status IN (${inList(MYSQL_SEARCHED_RUN_STATUSES)}), status, NULL)) STORED`,
];
const REPLACED: Array<{ name: string; old: string; now: string }> = [
  { name: 'ix_step_runs_status_available', old: 'status, available_at', now: '' },
  { name: 'ix_step_runs_due', old: '', now: 'due_at' },
  { name: 'ix_step_runs_wait', old: 'wait_event, wait_key, status', now: 'wait_event, wait_key, wait_status' },
  { name: 'ix_step_runs_search_status', old: 'status, started_at, id', now: 'searched_status, started_at, id' },
  { name: 'ix_step_runs_search_pipeline_status', old: 'pipeline_id, status, started_at, id', now: 'pipeline_id, searched_status, started_at, id' },
];

export class MysqlLeanRunIndexes1763800000320 implements MigrationInterface {
  name = 'MysqlLeanRunIndexes1763800000320';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    // One ALTER: the table is rebuilt once (the stored columns), with its new indexes.
    const changes = [
      ...COLUMNS.map((c) => `ADD COLUMN ${c}`),
      ...REPLACED.filter((ix) => ix.old).map((ix) => `DROP INDEX ${ix.name}`),
      ...REPLACED.filter((ix) => ix.now).map((ix) => `ADD INDEX ${ix.name} (${ix.now})`),
    ];
    await queryRunner.query(`ALTER TABLE step_runs ${changes.join(', ')}`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    const changes = [
      ...REPLACED.filter((ix) => ix.now).map((ix) => `DROP INDEX ${ix.name}`),
      ...REPLACED.filter((ix) => ix.old).map((ix) => `ADD INDEX ${ix.name} (${ix.old})`),
      ...COLUMNS.map((c) => `DROP COLUMN ${c.split(' ')[0]}`),
    ];
    await queryRunner.query(`ALTER TABLE step_runs ${changes.join(', ')}`);
  }
}
