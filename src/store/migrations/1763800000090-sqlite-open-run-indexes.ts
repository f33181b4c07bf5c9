import { TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * SQLite only: the sweeper's indexes cover open runs alone (partial indexes).
 *
 * `ix_step_runs_status_available`, `ix_step_runs_status_lease` and `ix_step_runs_wait` held
 * an entry for every step run ever written, and each step changed two of them twice (the
 * run's insert, then `dispatched → completed`): WAL frames written on every commit, for rows
 * no sweep ever reads again. As partial indexes they hold only the rows the sweeper looks for:
 * due `pending` runs, `dispatched` and `waiting` leases, and runs that wait for an event.
 * Every query that used them names the same predicate, so SQLite still picks them
 * (`test/integration/bench-smoke.test.ts` checks the plans).
 *
 * MySQL has no partial indexes; InnoDB keeps the full ones.
 */
const FULL = [
  { name: 'ix_step_runs_status_available', columnNames: ['status', 'available_at'] },
  { name: 'ix_step_runs_status_lease', columnNames: ['status', 'lease_until'] },
  { name: 'ix_step_runs_wait', columnNames: ['wait_event', 'wait_key', 'status'] },
];
const PARTIAL = [
  { name: 'ix_step_runs_due', columnNames: ['available_at'], where: "status = 'pending'" },
  { name: 'ix_step_runs_lease', columnNames: ['lease_until'], where: "status = 'dispatched'" },
  { name: 'ix_step_runs_wait_deadline', columnNames: ['lease_until'], where: "status = 'waiting'" },
  { name: 'ix_step_runs_wait_event', columnNames: ['wait_event', 'wait_key', 'status'], where: 'wait_event IS NOT NULL' },
];

export class SqliteOpenRunIndexes1763800000090 implements MigrationInterface {
  name = 'SqliteOpenRunIndexes1763800000090';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of FULL) await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
    for (const ix of PARTIAL) await queryRunner.createIndex('step_runs', new TableIndex(ix));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'mysql') return;
    for (const ix of PARTIAL) await queryRunner.query(`DROP INDEX IF EXISTS "${ix.name}"`);
    for (const ix of FULL) await queryRunner.createIndex('step_runs', new TableIndex(ix));
  }
}
