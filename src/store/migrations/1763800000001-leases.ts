import { TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Leases on dispatched runs: a run whose lease has run out (its engine died) is claimed and
 * sent again by whichever engine sees it first, so a dead process strands nothing.
 */
export class Leases1763800000001 implements MigrationInterface {
  name = 'Leases1763800000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn('step_runs', new TableColumn({ name: 'lease_until', type: 'bigint', isNullable: true }));
    await queryRunner.createIndex('step_runs', new TableIndex({ name: 'ix_step_runs_status_lease', columnNames: ['status', 'lease_until'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('step_runs', 'ix_step_runs_status_lease');
    await queryRunner.dropColumn('step_runs', 'lease_until');
  }
}
