import { Table, TableIndex, type MigrationInterface, type QueryRunner, type TableColumnOptions } from 'typeorm';

/** Column builders for one dialect: large JSON columns are LONGTEXT on MySQL (TEXT there stops at 64 KB). */
function columns(isMysql: boolean) {
  return {
    json: (name: string, nullable = true): TableColumnOptions => ({ name, type: isMysql ? 'longtext' : 'text', isNullable: nullable }),
    str: (name: string, length: number, nullable = false): TableColumnOptions => ({ name, type: 'varchar', length: String(length), isNullable: nullable }),
    int: (name: string, nullable = false, dflt?: number): TableColumnOptions => ({ name, type: 'int', isNullable: nullable, default: dflt }),
    big: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'bigint', isNullable: nullable }),
  };
}
type Columns = ReturnType<typeof columns>;

function pipelineVersions({ json, str, int, big }: Columns): Table {
  return new Table({
    name: 'pipeline_versions',
    columns: [
      { ...str('pipeline_id', 100), isPrimary: true },
      { ...int('version'), isPrimary: true },
      str('hash', 64),
      json('definition', false),
      big('created_at'),
    ],
    indices: [new TableIndex({ name: 'uq_pipeline_versions_hash', columnNames: ['pipeline_id', 'hash'], isUnique: true })],
  });
}

function requests({ json, str, int, big }: Columns): Table {
  return new Table({
    name: 'requests',
    columns: [
      { ...str('id', 36), isPrimary: true },
      str('pipeline_id', 100),
      int('version'),
      str('status', 16),
      str('business_key', 255, true),
      str('idempotency_key', 255, true),
      str('mode', 16, true),
      { name: 'test', type: 'smallint', default: 0 },
      json('payload', false),
      json('error'),
      json('joins'),
      int('step_count', false, 0),
      int('rev', false, 0),
      big('release_at', true),
      big('created_at'),
      big('updated_at'),
      big('finished_at', true),
    ],
    indices: [
      new TableIndex({ name: 'ix_requests_status', columnNames: ['status', 'release_at'] }),
      new TableIndex({ name: 'ix_requests_pipeline_created', columnNames: ['pipeline_id', 'created_at'] }),
      new TableIndex({ name: 'ix_requests_created', columnNames: ['created_at'] }),
      new TableIndex({ name: 'ix_requests_business_key', columnNames: ['pipeline_id', 'business_key', 'status'] }),
      new TableIndex({ name: 'uq_requests_idempotency', columnNames: ['pipeline_id', 'idempotency_key'], isUnique: true }),
    ],
  });
}

function stepRuns({ json, str, int, big }: Columns): Table {
  return new Table({
    name: 'step_runs',
    columns: [
      { ...str('id', 36), isPrimary: true },
      str('request_id', 36),
      str('pipeline_id', 100),
      str('step_id', 100),
      int('seq'),
      int('attempt'),
      str('status', 16),
      str('kind', 16),
      str('module', 100, true),
      str('transport', 16, true),
      json('params'),
      json('output'),
      json('error'),
      str('caused_by', 36, true),
      big('available_at', true),
      big('started_at'),
      big('finished_at', true),
      int('duration_ms', true),
    ],
    indices: [
      new TableIndex({ name: 'uq_step_runs_request_seq', columnNames: ['request_id', 'seq'], isUnique: true }),
      new TableIndex({ name: 'ix_step_runs_status_available', columnNames: ['status', 'available_at'] }),
      new TableIndex({ name: 'ix_step_runs_pipeline_step', columnNames: ['pipeline_id', 'step_id', 'started_at'] }),
      new TableIndex({ name: 'ix_step_runs_started', columnNames: ['started_at'] }),
    ],
  });
}

function apiKeys({ str, big }: Columns): Table {
  return new Table({
    name: 'api_keys',
    columns: [
      { ...str('id', 36), isPrimary: true },
      { ...str('hash', 64), isUnique: true },
      str('name', 100),
      str('roles', 255),
      big('created_at'),
      big('revoked_at', true),
    ],
  });
}

/**
 * The first schema. Written with TypeORM's Table API so one migration serves SQLite and
 * MySQL/MariaDB; large JSON columns are LONGTEXT on MySQL (TEXT there stops at 64 KB).
 */
export class Initial1763800000000 implements MigrationInterface {
  name = 'Initial1763800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = columns(queryRunner.connection.driver.options.type === 'mysql');
    for (const table of [pipelineVersions(c), requests(c), stepRuns(c), apiKeys(c)]) await queryRunner.createTable(table);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['api_keys', 'step_runs', 'requests', 'pipeline_versions']) {
      await queryRunner.dropTable(table, true);
    }
  }
}
