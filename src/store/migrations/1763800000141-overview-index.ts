import { TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The dashboard overview counts requests that finished in the last hour, by minute, pipeline
 * and status: this index covers that query (a range on `finished_at`, nothing read from the
 * table), on SQLite and MariaDB alike.
 */
export class OverviewIndex1763800000141 implements MigrationInterface {
  name = 'OverviewIndex1763800000141';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex('requests', new TableIndex({ name: 'ix_requests_finished', columnNames: ['finished_at', 'pipeline_id', 'status'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('requests', 'ix_requests_finished');
  }
}
