import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Tracing: `requests.trace_context` keeps the ids of the request's span (and of its caller's
 * span, from a W3C `traceparent` on submit), so that every process, after any restart, makes
 * the request's step spans children of it. NULL while tracing is off.
 */
export class TraceContext1763800000160 implements MigrationInterface {
  name = 'TraceContext1763800000160';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn('requests', new TableColumn({ name: 'trace_context', type: 'varchar', length: '100', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('requests', 'trace_context');
  }
}
