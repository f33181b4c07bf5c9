import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Waits that last days, and a truthful step log.
 *
 * - `step_runs.polls`, `last_poll_at`: a polling wait is one run however often it polls;
 *   each poll is a row of `step_polls` (the run's poll history).
 * - `step_runs.ended_by`: how a wait or action step ended (`event`, `poll`, `action`, `timeout`).
 * - `step_runs.duration_ms` becomes BIGINT on MySQL: a wait of more than 24 days overflows INT.
 * - `requests.max_steps`: the step budget an operator gave on resume.
 * - `requests.first_dispatch_at`: when the request's first step was dispatched, for a `rate`
 *   policy that holds at dispatch (indexed per pipeline for the sliding-window count).
 */
export class LongWaits1763800000130 implements MigrationInterface {
  name = 'LongWaits1763800000130';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    // Plain ADD COLUMN: TypeORM's SQLite addColumns rebuilds the table and loses the partial
    // indexes an earlier migration made by hand.
    const add = (table: string, columns: string[]): Promise<unknown> =>
      isMysql ? queryRunner.query(`ALTER TABLE ${table} ${columns.map((c) => `ADD COLUMN ${c}`).join(', ')}`) : Promise.all(columns.map((c) => queryRunner.query(`ALTER TABLE ${table} ADD COLUMN ${c}`)));
    await add('step_runs', ['polls integer NULL', 'last_poll_at bigint NULL', 'ended_by varchar(16) NULL']);
    if (isMysql) await queryRunner.query('ALTER TABLE step_runs MODIFY duration_ms BIGINT NULL');
    await add('requests', ['max_steps integer NULL', 'first_dispatch_at bigint NULL']);
    await queryRunner.createIndex('requests', new TableIndex({ name: 'ix_requests_first_dispatch', columnNames: ['pipeline_id', 'first_dispatch_at'] }));
    await queryRunner.createTable(
      new Table({
        name: 'step_polls',
        columns: [
          { name: 'run_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'n', type: 'int', isPrimary: true },
          { name: 'request_id', type: 'varchar', length: '36' },
          { name: 'started_at', type: 'bigint' },
          { name: 'finished_at', type: 'bigint' },
          { name: 'duration_ms', type: 'bigint' },
          { name: 'output', type: isMysql ? 'longtext' : 'text', isNullable: true },
          { name: 'error', type: isMysql ? 'longtext' : 'text', isNullable: true },
        ],
        indices: [new TableIndex({ name: 'ix_step_polls_request', columnNames: ['request_id'] })],
      }),
    );
    if (isMysql) await queryRunner.query('ALTER TABLE step_polls CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('step_polls', true);
    await queryRunner.dropIndex('requests', 'ix_requests_first_dispatch');
    for (const c of ['first_dispatch_at', 'max_steps']) await queryRunner.query(`ALTER TABLE requests DROP COLUMN ${c}`);
    for (const c of ['ended_by', 'last_poll_at', 'polls']) await queryRunner.query(`ALTER TABLE step_runs DROP COLUMN ${c}`);
  }
}
