/**
 * The step log's queries (`step_runs`, `step_polls`): runs read back; due runs, expired
 * leases and expired waits claimed at most once across processes (a conditional UPDATE on
 * the value read decides); waits found by event. Reached as `SqlStore.steps`.
 */
import type { PollRecord, StepRunRecord } from '../model';
import { num, OPEN, parse, POLL_COLUMNS, RUN_COLUMNS, toRun } from './rows';
import type { SqlExecutor } from './sql-executor';

export interface ClaimedRun {
  id: string;
  requestId: string;
}

export class StepStore {
  constructor(private readonly x: SqlExecutor) {}

  async listStepRuns(requestId: string): Promise<StepRunRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE request_id = ? ORDER BY seq`, [requestId]);
    return rows.map(toRun);
  }

  async getStepRun(id: string): Promise<StepRunRecord | undefined> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE id = ?`, [id]);
    return rows[0] ? toRun(rows[0]) : undefined;
  }

  async claimDueRuns(now: number, leaseUntil: number, limit: number): Promise<ClaimedRun[]> {
    // MySQL: `due_at` is `available_at` of a pending run, NULL otherwise (migration 1763800000320).
    const rows = await this.x.all<{ id: string; request_id: string }>(
      this.x.dialect === 'mysql'
        ? 'SELECT id, request_id FROM step_runs WHERE due_at <= ? ORDER BY due_at LIMIT ?'
        : "SELECT id, request_id FROM step_runs WHERE status = 'pending' AND available_at <= ? ORDER BY available_at LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      const n = await this.x.run("UPDATE step_runs SET status = 'dispatched', lease_until = ? WHERE id = ? AND status = 'pending'", [leaseUntil, r.id]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  async expireLeases(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200);
      await this.x.run(`UPDATE step_runs SET lease_until = 0 WHERE status = 'dispatched' AND id IN (${chunk.map(() => '?').join(',')})`, chunk);
    }
  }

  async claimRun(id: string, leaseUntil: number): Promise<boolean> {
    return (await this.x.run("UPDATE step_runs SET status = 'dispatched', lease_until = ? WHERE id = ? AND status = 'pending'", [leaseUntil, id])) === 1;
  }

  async claimExpiredLeases(now: number, leaseUntil: (transport: string | null) => number, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string; lease_until: unknown; transport: string | null }>(
      "SELECT id, request_id, lease_until, transport FROM step_runs WHERE status = 'dispatched' AND lease_until < ? ORDER BY lease_until LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      const n = await this.x.run("UPDATE step_runs SET lease_until = ? WHERE id = ? AND status = 'dispatched' AND lease_until = ?", [leaseUntil(r.transport), r.id, num(r.lease_until)]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  async findWaitingForEvent(name: string, key: string, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string }>(
      // MySQL: `wait_status` is the status of a run with a `wait_event` (migration 1763800000320).
      `SELECT id, request_id FROM step_runs WHERE wait_event = ? AND wait_key = ? AND ${this.x.dialect === 'mysql' ? 'wait_status' : 'status'} IN (${OPEN}) ORDER BY seq LIMIT ?`,
      [name, key, limit],
    );
    return rows.map((r) => ({ id: String(r.id), requestId: String(r.request_id) }));
  }

  async markWaiting(id: string, until: number): Promise<boolean> {
    return (await this.x.run("UPDATE step_runs SET status = 'waiting', lease_until = ? WHERE id = ? AND status = 'dispatched'", [until, id])) === 1;
  }

  async claimExpiredWaits(now: number, limit: number): Promise<ClaimedRun[]> {
    const rows = await this.x.all<{ id: string; request_id: string; lease_until: unknown }>(
      "SELECT id, request_id, lease_until FROM step_runs WHERE status = 'waiting' AND lease_until < ? ORDER BY lease_until LIMIT ?",
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const r of rows) {
      // Pushing the deadline far out claims it; the timeout result that follows closes the run.
      const n = await this.x.run("UPDATE step_runs SET lease_until = ? WHERE id = ? AND status = 'waiting' AND lease_until = ?", [now + 3_600_000, r.id, num(r.lease_until)]);
      if (n === 1) claimed.push({ id: String(r.id), requestId: String(r.request_id) });
    }
    return claimed;
  }

  async listPolls(runId: string, limit: number, afterN = 0): Promise<PollRecord[]> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT ${POLL_COLUMNS} FROM step_polls WHERE run_id = ? AND n > ? ORDER BY n LIMIT ?`, [runId, afterN, limit]);
    return rows.map((r) => ({
      runId: String(r.run_id), n: num(r.n), requestId: String(r.request_id), startedAt: num(r.started_at), finishedAt: num(r.finished_at),
      durationMs: num(r.duration_ms), output: parse(r.output), error: parse(r.error),
    }));
  }
}
