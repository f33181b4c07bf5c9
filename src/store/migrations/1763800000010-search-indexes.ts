import { TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Indexes for `GET /api/requests` and `GET /api/steps` (src/store/search.ts). Each search
 * sorts newest first by `(time, id)`, so every index ends with the time column and the id:
 * the equality filters pick the index prefix, the rows come out already in order, and a page
 * reads about `limit` index entries however many rows match. Filters that have no index of
 * their own here are served by the initial schema's `(pipeline_id, created_at)`,
 * `(created_at)` and `(started_at)`.
 */
const INDEXES: Array<{ table: string; name: string; columns: string[] }> = [
  { table: 'requests', name: 'ix_requests_search_status', columns: ['status', 'created_at', 'id'] },
  { table: 'requests', name: 'ix_requests_search_pipeline_status', columns: ['pipeline_id', 'status', 'created_at', 'id'] },
  { table: 'requests', name: 'ix_requests_search_business_key', columns: ['business_key', 'created_at', 'id'] },
  { table: 'requests', name: 'ix_requests_search_test', columns: ['test', 'created_at', 'id'] },
  { table: 'step_runs', name: 'ix_step_runs_search_pipeline', columns: ['pipeline_id', 'started_at', 'id'] },
  { table: 'step_runs', name: 'ix_step_runs_search_status', columns: ['status', 'started_at', 'id'] },
  { table: 'step_runs', name: 'ix_step_runs_search_pipeline_status', columns: ['pipeline_id', 'status', 'started_at', 'id'] },
  // Replaces the initial (pipeline_id, step_id, started_at): with the id as its last column,
  // SQLite serves the whole ORDER BY from it instead of preferring the pipeline index and
  // filtering, which is slow for a step that a pipeline seldom runs.
  { table: 'step_runs', name: 'ix_step_runs_search_pipeline_step', columns: ['pipeline_id', 'step_id', 'started_at', 'id'] },
];
const REPLACED = { table: 'step_runs', name: 'ix_step_runs_pipeline_step', columns: ['pipeline_id', 'step_id', 'started_at'] };

export class SearchIndexes1763800000010 implements MigrationInterface {
  name = 'SearchIndexes1763800000010';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const ix of INDEXES) {
      await queryRunner.createIndex(ix.table, new TableIndex({ name: ix.name, columnNames: ix.columns }));
    }
    await queryRunner.dropIndex(REPLACED.table, REPLACED.name);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(REPLACED.table, new TableIndex({ name: REPLACED.name, columnNames: REPLACED.columns }));
    for (const ix of [...INDEXES].reverse()) await queryRunner.dropIndex(ix.table, ix.name);
  }
}
