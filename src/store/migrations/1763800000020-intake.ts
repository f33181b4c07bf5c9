import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Intake: buffered requests held by a policy or by their business key, the one-active-request
 * rule, end-of-request callbacks, and the shared marks (last batch, last cron tick) that keep
 * intake limits global across processes.
 *
 * - `hold`: `gate` (waits for the pipeline's intake policy), `key` (waits for the active
 *   request of its business key to end), or NULL (free to start).
 * - `active_key`: the business key while this request holds it. Unique per pipeline, so two
 *   requests can never hold one key, however many processes race; NULL once released.
 * - `callback_*`: the callback owed when the request ends (`callback_due` is when to try
 *   next; `callback_rev` is the request rev last reported).
 * - `intake_marks`: one row per gate or trigger, `at` being its last tick; rows are also the
 *   lock that serialises releases of one pipeline across processes.
 */
export class Intake1763800000020 implements MigrationInterface {
  name = 'Intake1763800000020';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.addColumns('requests', [
      new TableColumn({ name: 'hold', type: 'varchar', length: '8', isNullable: true }),
      new TableColumn({ name: 'active_key', type: 'varchar', length: '255', isNullable: true }),
      new TableColumn({ name: 'callback_url', type: 'varchar', length: '2000', isNullable: true }),
      new TableColumn({ name: 'callback_due', type: 'bigint', isNullable: true }),
      new TableColumn({ name: 'callback_attempts', type: 'int', default: 0 }),
      new TableColumn({ name: 'callback_rev', type: 'int', isNullable: true }),
      new TableColumn({ name: 'callback_error', type: 'varchar', length: '1000', isNullable: true }),
    ]);
    await queryRunner.createIndices('requests', [
      new TableIndex({ name: 'uq_requests_active_key', columnNames: ['pipeline_id', 'active_key'], isUnique: true }),
      new TableIndex({ name: 'ix_requests_hold', columnNames: ['pipeline_id', 'hold', 'created_at'] }),
      new TableIndex({ name: 'ix_requests_pipeline_release', columnNames: ['pipeline_id', 'release_at'] }),
      new TableIndex({ name: 'ix_requests_callback_due', columnNames: ['status', 'callback_due'] }),
    ]);
    await queryRunner.createTable(
      new Table({
        name: 'intake_marks',
        columns: [
          { name: 'id', type: 'varchar', length: '200', isPrimary: true },
          { name: 'at', type: 'bigint' },
        ],
      }),
    );
    if (isMysql) await queryRunner.query('ALTER TABLE intake_marks CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('intake_marks', true);
    for (const ix of ['ix_requests_callback_due', 'ix_requests_pipeline_release', 'ix_requests_hold', 'uq_requests_active_key']) {
      await queryRunner.dropIndex('requests', ix);
    }
    for (const c of ['callback_error', 'callback_rev', 'callback_attempts', 'callback_due', 'callback_url', 'active_key', 'hold']) {
      await queryRunner.dropColumn('requests', c);
    }
  }
}
