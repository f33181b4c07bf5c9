import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tracing: `requests.trace_context` keeps the ids of the request's span (and of its caller's
 * span, from a W3C `traceparent` on submit), so that every process, after any restart, makes
 * the request's step spans children of it. NULL while tracing is off.
 *
 * Plain `ALTER TABLE … ADD COLUMN` on both dialects, as migration 110 does: TypeORM's SQLite
 * `addColumn` copies the table from its cached description, which predates 110's raw columns
 * and would drop them.
 */
export class TraceContext1763800000160 implements MigrationInterface {
  name = 'TraceContext1763800000160';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE requests ADD COLUMN trace_context VARCHAR(100) NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE requests DROP COLUMN trace_context');
  }
}
