import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Durable admin alerts: one row per channel (webhook, module) for each `error_stop`, written
 * in the transaction that commits the `error_stop`. Any engine claims a due row (moving
 * `due_at` forward as a lease), tries it, and settles it: `delivered`, `failed` after its
 * tries, or `pending` again with the next try's `due_at`.
 */
export class AdminAlerts1763800000140 implements MigrationInterface {
  name = 'AdminAlerts1763800000140';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.createTable(
      new Table({
        name: 'admin_alerts',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'request_id', type: 'varchar', length: '36' },
          { name: 'pipeline_id', type: 'varchar', length: '100' },
          { name: 'channel', type: 'varchar', length: '200' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'attempts', type: 'int', default: 0 },
          { name: 'due_at', type: 'bigint' },
          { name: 'last_error', type: 'varchar', length: '1000', isNullable: true },
          { name: 'created_at', type: 'bigint' },
          { name: 'delivered_at', type: 'bigint', isNullable: true },
        ],
      }),
    );
    await queryRunner.createIndices('admin_alerts', [
      new TableIndex({ name: 'ix_admin_alerts_due', columnNames: ['status', 'due_at'] }),
      new TableIndex({ name: 'ix_admin_alerts_request', columnNames: ['request_id'] }),
    ]);
    if (isMysql) await queryRunner.query('ALTER TABLE admin_alerts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('admin_alerts', true);
  }
}
