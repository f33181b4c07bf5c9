/** The queries of broker sources: the rejects they record, and the backlog that pauses them. */
import type { SqlExecutor } from './sql-executor';

/** One broker message a source refused (and dead-lettered). */
export interface IntakeReject {
  id: string;
  pipelineId: string;
  source: string;
  messageId: string | null;
  code: string;
  reason: string;
  createdAt: number;
}

export class SourceStore {
  /**
   * @param sideRead SQLite with the side thread (`checkpointer.ts`): reads the backlog count
   *   there, off the engine's thread and page cache.
   */
  constructor(
    private readonly x: SqlExecutor,
    private readonly sideRead?: <T>(sql: string, params: unknown[]) => Promise<T[]>,
  ) {}

  async recordReject(r: IntakeReject): Promise<void> {
    await this.x.run('INSERT INTO intake_rejects (id, pipeline_id, source, message_id, code, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      r.id, r.pipelineId, r.source.slice(0, 100), r.messageId?.slice(0, 255) ?? null, r.code.slice(0, 64), r.reason.slice(0, 1000), r.createdAt,
    ]);
  }

  /** The latest rejects, newest first. */
  async listRejects(limit: number, pipelineId?: string): Promise<IntakeReject[]> {
    const where = pipelineId ? 'WHERE pipeline_id = ? ' : '';
    const rows = await this.x.all(
      `SELECT id, pipeline_id, source, message_id, code, reason, created_at FROM intake_rejects ${where}ORDER BY created_at DESC, id DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
      pipelineId ? [pipelineId] : [],
    );
    return rows.map((r) => ({
      id: String(r.id), pipelineId: String(r.pipeline_id), source: String(r.source), messageId: r.message_id === null ? null : String(r.message_id),
      code: String(r.code), reason: String(r.reason), createdAt: Number(r.created_at),
    }));
  }

  async countRejects(pipelineId: string, source: string): Promise<number> {
    const [row] = await this.x.all<{ n: unknown }>('SELECT COUNT(*) AS n FROM intake_rejects WHERE pipeline_id = ? AND source = ?', [pipelineId, source]);
    return Number(row?.n ?? 0);
  }

  /**
   * How many of the pipeline's requests wait to start or are running (its backlog), counted
   * up to `cap + 1` only: the answer is compared with `maxBuffered`, so a huge backlog costs
   * no more than a small one.
   */
  async backlog(pipelineId: string, cap: number): Promise<number> {
    const sql = `SELECT COUNT(*) AS n FROM (SELECT 1 AS x FROM requests WHERE pipeline_id = ? AND status IN ('buffered','running') LIMIT ${Math.max(1, Math.floor(cap)) + 1}) b`;
    // The side thread's answer, or the engine's own connection when there is none (MySQL,
    // `COMMIT`) or it could not answer (stopped, or its thread failed).
    const onSide = this.sideRead?.<{ n: unknown }>(sql, [pipelineId]).catch(() => undefined);
    const [row] = (await onSide) ?? (await this.x.all<{ n: unknown }>(sql, [pipelineId]));
    return Number(row?.n ?? 0);
  }
}
