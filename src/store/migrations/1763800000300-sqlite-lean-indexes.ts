import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: fewer index pages per commit. In WAL mode a commit writes every page it changed,
 * and each index a row enters or moves in is at least one page: with one request in flight,
 * that write is most of a step's cost (issue "Performance", `docs/performance.md`). These
 * indexes become partial, so the rows that never match a query on them stay out:
 *
 * - keys, callbacks, first dispatches, test requests: most requests have none, and a query
 *   on them always names a value (`col = ?`, `col < ?`, which SQLite knows implies
 *   `col IS NOT NULL`), so the NULL rows were never read;
 * - `finished_at`: NULL until the request ends;
 * - step runs by status: the search keeps only the statuses a user hunts for (waiting,
 *   failed, cancelled). A run enters `dispatched` or `pending` and leaves as `completed`,
 *   three index moves per step that nobody needed: open runs are found through the lease and
 *   due indexes (few rows), completed ones through the time and pipeline indexes, which
 *   they fill. `src/store/search.ts` adds the same condition to such a query, so SQLite
 *   may use the index.
 *
 * MariaDB has no partial indexes; its indexes stay as they are.
 */
export const SEARCHED_RUN_STATUSES = "status IN ('waiting','failed','cancelled')";

const PARTIAL: Array<{ table: string; name: string; unique?: boolean; columns: string; where: string }> = [
  { table: 'requests', name: 'uq_requests_idempotency', unique: true, columns: 'pipeline_id, idempotency_key', where: 'idempotency_key IS NOT NULL' },
  { table: 'requests', name: 'uq_requests_active_key', unique: true, columns: 'pipeline_id, active_key', where: 'active_key IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_business_key', columns: 'pipeline_id, business_key, status', where: 'business_key IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_search_business_key', columns: 'business_key, created_at, id', where: 'business_key IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_callback_due', columns: 'status, callback_due', where: 'callback_due IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_first_dispatch', columns: 'pipeline_id, first_dispatch_at', where: 'first_dispatch_at IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_finished', columns: 'finished_at, pipeline_id, status', where: 'finished_at IS NOT NULL' },
  { table: 'requests', name: 'ix_requests_search_test', columns: 'test, created_at, id', where: 'test = 1' },
  { table: 'step_runs', name: 'ix_step_runs_search_status', columns: 'status, started_at, id', where: SEARCHED_RUN_STATUSES },
  { table: 'step_runs', name: 'ix_step_runs_search_pipeline_status', columns: 'pipeline_id, status, started_at, id', where: SEARCHED_RUN_STATUSES },
];

export class SqliteLeanIndexes1763800000300 implements MigrationInterface {
  name = 'SqliteLeanIndexes1763800000300';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of PARTIAL) {
      await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
      await queryRunner.query(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX "${ix.name}" ON "${ix.table}" (${ix.columns}) WHERE ${ix.where}`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of PARTIAL) {
      await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
      await queryRunner.query(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX "${ix.name}" ON "${ix.table}" (${ix.columns})`);
    }
  }
}
