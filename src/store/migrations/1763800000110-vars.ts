import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Process variables: a request's `vars` (NULL while it has none) and, on each step run, what
 * its `assign` set. Plain `ALTER TABLE … ADD COLUMN` on both dialects: TypeORM's SQLite
 * `addColumn` copies the whole table, which is slow on a large step log and would have to
 * rebuild the partial indexes of migration 090.
 */
export class Vars1763800000110 implements MigrationInterface {
  name = 'Vars1763800000110';

  async up(queryRunner: QueryRunner): Promise<void> {
    const type = queryRunner.connection.driver.options.type === 'mysql' ? 'LONGTEXT' : 'TEXT';
    await queryRunner.query(`ALTER TABLE requests ADD COLUMN vars ${type} NULL`);
    await queryRunner.query(`ALTER TABLE step_runs ADD COLUMN assigned ${type} NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE step_runs DROP COLUMN assigned');
    await queryRunner.query('ALTER TABLE requests DROP COLUMN vars');
  }
}
