import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Moving running requests to another version of their pipeline (issue 15). `request_migrations`
 * (TypeORM keeps its own schema history in `migrations`) holds
 * one bulk migration: its plan, filter and progress (a cursor over request ids and counts),
 * written in the same transaction as each batch's moves, so any engine can resume it after a
 * crash. `active_pipeline` is the pipeline id while a migration that changes requests runs,
 * NULL otherwise: its unique index refuses a second one of the same pipeline in the database,
 * whichever process asks. A lease (`owner`, `lease_until`) says which engine works on it.
 * `request_migration_refusals` lists the requests a migration could not move, and why.
 */
export class RequestMigrations1763800000200 implements MigrationInterface {
  name = 'RequestMigrations1763800000200';

  async up(queryRunner: QueryRunner): Promise<void> {
    const isMysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.createTable(new Table({
      name: 'request_migrations',
      columns: [
        { name: 'id', type: 'varchar', length: '36', isPrimary: true },
        { name: 'pipeline_id', type: 'varchar', length: '100' },
        { name: 'from_version', type: 'int' },
        { name: 'to_version', type: 'int' },
        { name: 'plan', type: 'text' },
        { name: 'filter', type: 'text' },
        { name: 'dry_run', type: 'int', default: 0 },
        { name: 'status', type: 'varchar', length: '16' },
        { name: 'active_pipeline', type: 'varchar', length: '100', isNullable: true },
        { name: 'actor', type: 'varchar', length: '100' },
        { name: 'via', type: 'varchar', length: '200', isNullable: true },
        { name: 'owner', type: 'varchar', length: '64', isNullable: true },
        { name: 'lease_until', type: 'bigint', default: 0 },
        { name: 'beats', type: 'int', default: 0 },
        { name: 'after_id', type: 'varchar', length: '36', default: "''" },
        { name: 'total', type: 'int', default: 0 },
        { name: 'migrated', type: 'int', default: 0 },
        { name: 'refused', type: 'int', default: 0 },
        { name: 'error', type: 'varchar', length: '1000', isNullable: true },
        { name: 'created_at', type: 'bigint' },
        { name: 'updated_at', type: 'bigint' },
        { name: 'finished_at', type: 'bigint', isNullable: true },
      ],
    }));
    await queryRunner.createIndices('request_migrations', [
      new TableIndex({ name: 'ux_request_migrations_active', columnNames: ['active_pipeline'], isUnique: true }),
      new TableIndex({ name: 'ix_request_migrations_lease', columnNames: ['status', 'lease_until'] }),
    ]);
    await queryRunner.createTable(new Table({
      name: 'request_migration_refusals',
      columns: [
        { name: 'migration_id', type: 'varchar', length: '36', isPrimary: true },
        { name: 'request_id', type: 'varchar', length: '36', isPrimary: true },
        { name: 'problems', type: 'text' },
        { name: 'created_at', type: 'bigint' },
      ],
    }));
    await queryRunner.createIndex('requests', new TableIndex({ name: 'ix_requests_pipeline_version', columnNames: ['pipeline_id', 'version', 'id'] }));
    if (isMysql) {
      await queryRunner.query('ALTER TABLE request_migrations CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
      await queryRunner.query('ALTER TABLE request_migration_refusals CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('requests', 'ix_requests_pipeline_version');
    await queryRunner.dropTable('request_migration_refusals', true);
    await queryRunner.dropTable('request_migrations', true);
  }
}
