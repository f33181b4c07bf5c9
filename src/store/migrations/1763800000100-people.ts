import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * People (issue 12): who the participants of each request are, and what an audit entry came
 * through.
 *
 * - `request_participants`: one row per (request, actor, participant role), replaced in the
 *   same transaction as the step that changed them. `created_at` is the request's, so that
 *   `ix_participants_actor` serves "the requests of this actor, newest first" in index order
 *   with the same `(created_at, id)` cursor as the request search. Rows with role `offered`
 *   say who may take an action now; `ix_participants_role` serves `GET /api/actions`.
 * - `audit_events.via`: the key (`key:crm`) or token issuer (`jwt:https://id.example`) the
 *   actor's call came through.
 * - `requests.submitted_by`: the actor that submitted the request (`{{ request.actor }}`).
 */
export class People1763800000100 implements MigrationInterface {
  name = 'People1763800000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'request_participants',
        columns: [
          { name: 'request_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'actor_id', type: 'varchar', length: '100', isPrimary: true },
          { name: 'role', type: 'varchar', length: '50', isPrimary: true },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [
          new TableIndex({ name: 'ix_participants_actor', columnNames: ['actor_id', 'created_at', 'request_id'] }),
          new TableIndex({ name: 'ix_participants_role', columnNames: ['role', 'actor_id', 'created_at', 'request_id'] }),
        ],
      }),
    );
    await queryRunner.addColumn('audit_events', new TableColumn({ name: 'via', type: 'varchar', length: '200', isNullable: true }));
    await queryRunner.addColumn('requests', new TableColumn({ name: 'submitted_by', type: 'varchar', length: '100', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('requests', 'submitted_by');
    await queryRunner.dropColumn('audit_events', 'via');
    await queryRunner.dropTable('request_participants');
  }
}
