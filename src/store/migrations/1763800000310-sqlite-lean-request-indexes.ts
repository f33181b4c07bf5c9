import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite: two more indexes of `requests` become partial, so a request that is neither held
 * nor waiting to start never enters them (issue "Performance": with one request in flight a
 * commit writes every page it changed, one at least per index a row enters or leaves;
 * `scripts/bench/page-map.ts` lists them):
 *
 * - `ix_requests_hold` (pipeline, hold, created_at), `hold IS NOT NULL`: it is only read as
 *   `hold = 'gate'` or `hold = 'key'`, which SQLite knows implies `hold IS NOT NULL`. Every
 *   other request entered it with a NULL hold, a page per request for nothing.
 * - `ix_requests_status` (status, release_at), `status = 'buffered'`: it finds the requests
 *   waiting to start, oldest release first (`status = 'buffered'` in the query, as the
 *   partial index needs). A request that starts at once entered it as `running` and moved to
 *   `completed` when it ended, two pages per request; the queries on other statuses are
 *   served by `ix_requests_search_status` (status, created_at, id) and
 *   `ix_requests_search_pipeline_status`, which every request enters anyway.
 *
 * MariaDB has no partial indexes; its indexes stay as they are.
 */
const PARTIAL = [
  { name: 'ix_requests_hold', columns: 'pipeline_id, hold, created_at', where: 'hold IS NOT NULL' },
  { name: 'ix_requests_status', columns: 'status, release_at', where: "status = 'buffered'" },
];

export class SqliteLeanRequestIndexes1763800000310 implements MigrationInterface {
  name = 'SqliteLeanRequestIndexes1763800000310';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of PARTIAL) {
      await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
      await queryRunner.query(`CREATE INDEX "${ix.name}" ON "requests" (${ix.columns}) WHERE ${ix.where}`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of PARTIAL) {
      await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
      await queryRunner.query(`CREATE INDEX "${ix.name}" ON "requests" (${ix.columns})`);
    }
  }
}
