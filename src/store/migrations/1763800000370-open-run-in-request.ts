import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The step log becomes append-only for the usual step (issue "Performance": one row written
 * per step attempt). A module step's attempt that is sent at once is no longer inserted into
 * `step_runs` when it starts and updated when it ends: while it is open it lives in its
 * request's row, which every step updates anyway for its `rev`, and it is inserted into
 * `step_runs` once, when it ends, with its output.
 *
 * - `open_run`: the open attempt as JSON (a step run record), NULL when the request has none
 *   here (its other open attempts, and every pending, waiting-for-event or polling one, stay
 *   rows of `step_runs`);
 * - `open_status`, `open_lease`: the two fields of it that change while it is open
 *   (`dispatched` → `waiting` when a module accepts it for later; its lease or deadline), so
 *   the sweeps find expired ones through `ix_requests_open_lease` without reading JSON.
 *
 * SQLite's index is partial (only requests with an open attempt); MariaDB has no partial
 * indexes, and a request without one sits under NULL, where no sweep looks.
 */
export class OpenRunInRequest1763800000370 implements MigrationInterface {
  name = 'OpenRunInRequest1763800000370';

  async up(queryRunner: QueryRunner): Promise<void> {
    const mysql = queryRunner.connection.driver.options.type === 'mysql';
    await queryRunner.query(`ALTER TABLE requests ADD COLUMN open_run ${mysql ? 'LONGTEXT' : 'TEXT'} NULL`);
    await queryRunner.query('ALTER TABLE requests ADD COLUMN open_status VARCHAR(16) NULL');
    await queryRunner.query('ALTER TABLE requests ADD COLUMN open_lease BIGINT NULL');
    await queryRunner.query(mysql
      ? 'CREATE INDEX ix_requests_open_lease ON requests (open_status, open_lease)'
      : 'CREATE INDEX "ix_requests_open_lease" ON "requests" (open_status, open_lease) WHERE open_status IS NOT NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const mysql = queryRunner.connection.driver.options.type === 'mysql';
    // An attempt open in a request's row goes back to the step log, as the old code keeps them.
    // The JSON holds what the row does not (the request's id and pipeline are its columns).
    const rows = (await queryRunner.query('SELECT id, pipeline_id, open_run, open_status, open_lease FROM requests WHERE open_run IS NOT NULL')) as Array<Record<string, unknown>>;
    for (const row of rows) {
      const r = JSON.parse(String(row.open_run)) as Record<string, unknown>;
      const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
      await queryRunner.query(
        'INSERT INTO step_runs (id, request_id, pipeline_id, step_id, seq, attempt, status, kind, module, transport, params, caused_by, available_at, lease_until, wait_event, wait_key, deadline_at, override, started_at) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [r.id, row.id, row.pipeline_id, r.stepId, r.seq, r.attempt, row.open_status, r.kind, r.module ?? null, r.transport ?? null, json(r.params),
          r.causedBy ?? null, r.availableAt ?? null, row.open_lease ?? null, r.waitEvent ?? null, r.waitKey ?? null, r.deadlineAt ?? null, json(r.override), r.startedAt],
      );
    }
    await queryRunner.query(mysql ? 'DROP INDEX ix_requests_open_lease ON requests' : 'DROP INDEX IF EXISTS "ix_requests_open_lease"');
    for (const column of ['open_lease', 'open_status', 'open_run']) await queryRunner.query(`ALTER TABLE requests DROP COLUMN ${column}`);
  }
}
