import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Broker messages a source could not turn into a request (not JSON, not an object, too
 * large, refused by intake): each was dead-lettered at the broker and is recorded here, so
 * `GET /api/sources` and the dashboard show what was refused and why.
 */
export class IntakeRejects1763800000120 implements MigrationInterface {
  name = 'IntakeRejects1763800000120';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.createTable(
      new Table({
        name: 'intake_rejects',
        columns: [
          { name: 'id', type: 'varchar', length: '40', isPrimary: true },
          { name: 'pipeline_id', type: 'varchar', length: '100' },
          { name: 'source', type: 'varchar', length: '100' },
          { name: 'message_id', type: 'varchar', length: '255', isNullable: true },
          { name: 'code', type: 'varchar', length: '64' },
          { name: 'reason', type: 'varchar', length: '1000' },
          { name: 'created_at', type: 'bigint' },
        ],
      }),
    );
    await queryRunner.createIndex('intake_rejects', new TableIndex({ name: 'ix_intake_rejects_created', columnNames: ['created_at'] }));
    if (isMysql) await queryRunner.query('ALTER TABLE intake_rejects CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('intake_rejects', true);
  }
}
