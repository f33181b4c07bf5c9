import type { MigrationInterface, QueryRunner } from 'typeorm';

const TABLES = ['pipeline_versions', 'requests', 'step_runs', 'api_keys', 'settings'];

/**
 * On MySQL, tables otherwise take the database's default character set; a latin1 or utf8mb3
 * database would mangle 4-byte characters in payloads. Binary collation keeps ids and keys
 * exact (case-sensitive), as they are on SQLite.
 */
export class Utf8mb41763800000003 implements MigrationInterface {
  name = 'Utf8mb41763800000003';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'mysql') return;
    for (const t of TABLES) await queryRunner.query(`ALTER TABLE ${t} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  }

  async down(): Promise<void> {
    // Converting back could lose characters; nothing to undo safely.
  }
}
