/**
 * The queries of durable admin alerts (`admin_alerts`): rows are written by the commit that
 * stops a request on an error (`rows.ts` `alertStmts`); here any engine claims the due ones
 * (moving `due_at` to the end of a lease, guarded by the value it read, so one process wins),
 * and settles them once tried.
 */
import { num } from './rows';
import type { SqlExecutor } from './sql-executor';

/** A claimed alert: this process may try it until `lease`. */
export interface AlertClaim {
  id: string;
  requestId: string;
  pipelineId: string;
  channel: string;
  /** Tries made before this one. */
  attempts: number;
  lease: number;
}

/** An alert as stored, for views and tests. */
export interface AlertRecord {
  id: string;
  requestId: string;
  channel: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

const COLUMNS = 'id, request_id, pipeline_id, channel, attempts, due_at';

export class AlertStore {
  constructor(private readonly x: SqlExecutor) {}

  /** Claims the due alerts of one request (the engine that stopped it tries them at once). */
  claimForRequest(requestId: string, channels: string[], now: number, leaseUntil: number): Promise<AlertClaim[]> {
    return this.claim(`request_id = ? AND status = 'pending' AND due_at <= ?`, [requestId, now], channels, leaseUntil, 20);
  }

  /** Claims due alerts of any request: retries, and alerts whose engine died before trying. */
  claimDue(channels: string[], now: number, leaseUntil: number, limit: number): Promise<AlertClaim[]> {
    return this.claim(`status = 'pending' AND due_at <= ?`, [now], channels, leaseUntil, limit);
  }

  private async claim(where: string, params: unknown[], channels: string[], leaseUntil: number, limit: number): Promise<AlertClaim[]> {
    if (channels.length === 0) return [];
    const rows = await this.x.all<Record<string, unknown>>(
      `SELECT ${COLUMNS} FROM admin_alerts WHERE ${where} AND channel IN (${channels.map(() => '?').join(',')}) ORDER BY due_at LIMIT ?`,
      [...params, ...channels, limit],
    );
    const out: AlertClaim[] = [];
    for (const r of rows) {
      const n = await this.x.run("UPDATE admin_alerts SET due_at = ? WHERE id = ? AND status = 'pending' AND due_at = ?", [leaseUntil, r.id, num(r.due_at)]);
      if (n !== 1) continue;
      out.push({ id: String(r.id), requestId: String(r.request_id), pipelineId: String(r.pipeline_id), channel: String(r.channel), attempts: num(r.attempts), lease: leaseUntil });
    }
    return out;
  }

  /**
   * Records a try of a claimed alert: delivered, failed for good, or due again at `nextDue`.
   * Resolves false when the lease was lost (another process took the alert over meanwhile).
   */
  async settle(c: AlertClaim, o: { outcome: 'delivered' | 'failed' | 'retry'; error: string | null; nextDue: number; now: number }): Promise<boolean> {
    const status = o.outcome === 'retry' ? 'pending' : o.outcome;
    const n = await this.x.run(
      "UPDATE admin_alerts SET status = ?, attempts = ?, last_error = ?, due_at = ?, delivered_at = ? WHERE id = ? AND status = 'pending' AND due_at = ?",
      [status, c.attempts + 1, o.error, o.outcome === 'retry' ? o.nextDue : o.now, o.outcome === 'delivered' ? o.now : null, c.id, c.lease],
    );
    return n === 1;
  }

  /** The alerts of one request, oldest first. */
  async listForRequest(requestId: string): Promise<AlertRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>(
      'SELECT id, request_id, channel, status, attempts, last_error, created_at, delivered_at FROM admin_alerts WHERE request_id = ? ORDER BY created_at, id',
      [requestId],
    );
    return rows.map((r) => ({
      id: String(r.id), requestId: String(r.request_id), channel: String(r.channel), status: r.status as AlertRecord['status'],
      attempts: num(r.attempts), lastError: (r.last_error as string | null) ?? null, createdAt: num(r.created_at),
      deliveredAt: r.delivered_at === null || r.delivered_at === undefined ? null : num(r.delivered_at),
    }));
  }
}
