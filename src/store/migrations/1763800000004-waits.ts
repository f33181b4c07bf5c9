import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Long-running steps: a wait run remembers the event it waits for (so `POST /api/events`
 * finds it by index) and its deadline; a resumed run carries the operator's edited params.
 * Actions and operator commands are audited in their own table.
 */
export class Waits1763800000004 implements MigrationInterface {
  name = 'Waits1763800000004';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.addColumns('step_runs', [
      new TableColumn({ name: 'wait_event', type: 'varchar', length: '100', isNullable: true }),
      new TableColumn({ name: 'wait_key', type: 'varchar', length: '255', isNullable: true }),
      new TableColumn({ name: 'deadline_at', type: 'bigint', isNullable: true }),
      new TableColumn({ name: 'override', type: isMysql ? 'longtext' : 'text', isNullable: true }),
    ]);
    await queryRunner.createIndex('step_runs', new TableIndex({ name: 'ix_step_runs_wait', columnNames: ['wait_event', 'wait_key', 'status'] }));
    await queryRunner.createTable(
      new Table({
        name: 'audit_events',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'request_id', type: 'varchar', length: '36' },
          { name: 'actor', type: 'varchar', length: '100' },
          { name: 'action', type: 'varchar', length: '100' },
          { name: 'outcome', type: 'varchar', length: '32' },
          { name: 'details', type: isMysql ? 'longtext' : 'text', isNullable: true },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [new TableIndex({ name: 'ix_audit_request', columnNames: ['request_id', 'created_at'] })],
      }),
    );
    if (isMysql) await queryRunner.query('ALTER TABLE audit_events CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_events', true);
    await queryRunner.dropIndex('step_runs', 'ix_step_runs_wait');
    for (const c of ['override', 'deadline_at', 'wait_key', 'wait_event']) await queryRunner.dropColumn('step_runs', c);
  }
}
