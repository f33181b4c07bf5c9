import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Engine-wide settings shared by every process, such as the callback signing secret. */
export class Settings1763800000002 implements MigrationInterface {
  name = 'Settings1763800000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'settings',
        columns: [
          { name: 'name', type: 'varchar', length: '100', isPrimary: true },
          { name: 'value', type: 'varchar', length: '1000' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('settings', true);
  }
}
