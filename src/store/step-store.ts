/**
 * The step log's queries (`step_runs`, `step_polls`, and the attempt open in a request's row:
 * migration `1763800000370`): runs read back; due runs, expired leases and expired waits
 * claimed at most once across processes (a conditional UPDATE on the value read decides);
 * waits found by event. Reached as `SqlStore.steps`.
 */
import type { PollRecord, StepRunRecord } from '../model';
import { num, OPEN, OPEN_ROW_READ, openRowsFrom, openLeaseBefore, openRunIs, parse, POLL_COLUMNS, RUN_COLUMNS, toOpenRow, toRun, withOpenRun } from './rows';
import type { SqlExecutor } from './sql-executor';

export interface ClaimedRun {
  id: string;
  requestId: string;
}

/** The step log's columns in a read joined to `requests r` (`s` is the log). */
const RUN_FROM_LOG = RUN_COLUMNS.split(', ').map((c) => `s.${c}`).join(', ');
/** The request's open attempt in such a read, under names of its own. */
const OPEN_ROW_JOINED = 'r.id AS r_id, r.pipeline_id AS r_pipeline_id, r.open_run AS r_open_run, r.open_status AS r_open_status, r.open_lease AS r_open_lease';
const openRowOf = (row: Record<string, unknown>): Record<string, unknown> => ({
  id: row.r_id, pipeline_id: row.r_pipeline_id, open_run: row.r_open_run, open_status: row.r_open_status, open_lease: row.r_open_lease,
});

export class StepStore {
  constructor(private readonly x: SqlExecutor) {}

  /**
   * A request's runs in `seq` order: the step log's rows and the attempt open in the
   * request's row (migration `1763800000370`, marked by `isInRow`), read in one statement, so
   * from one snapshot: an attempt that ends, or one that starts, while it is read is found
   * once, where that snapshot has it.
   */
  async listStepRuns(requestId: string): Promise<StepRunRecord[]> {
    return this.withOpenRow(await this.x.all<Record<string, unknown>>(
      `SELECT ${RUN_FROM_LOG}, ${OPEN_ROW_JOINED} FROM requests r LEFT JOIN step_runs s ON s.request_id = r.id WHERE r.id = ? ORDER BY s.seq`, [requestId],
    ));
  }

  /** The log's runs of a joined read ({@link RUN_FROM_LOG}), with the request's open attempt in `seq` order. */
  private withOpenRow(rows: Array<Record<string, unknown>>): StepRunRecord[] {
    const runs = rows.filter((r) => r.id !== null && r.id !== undefined).map(toRun);
    return withOpenRun(runs, rows[0] ? toOpenRow(openRowOf(rows[0])) : undefined);
  }

  /**
   * A run by id. An attempt open in its request's row is found only with `requestId`
   * (nothing indexes the rows by the attempt they hold); then in one statement, as
   * {@link listStepRuns} reads.
   */
  async getStepRun(id: string, requestId?: string): Promise<StepRunRecord | undefined> {
    if (requestId === undefined) {
      const rows = await this.x.all<Record<string, unknown>>(`SELECT ${RUN_COLUMNS} FROM step_runs WHERE id = ?`, [id]);
      return rows[0] ? toRun(rows[0]) : undefined;
    }
    const runs = this.withOpenRow(await this.x.all<Record<string, unknown>>(
      `SELECT ${RUN_FROM_LOG}, ${OPEN_ROW_JOINED} FROM requests r LEFT JOIN step_runs s ON s.id = ? AND s.request_id = r.id WHERE r.id = ?`, [id, requestId],
    ));
    return runs.find((r) => r.id === id);
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

  /**
   * Runs handed back at shutdown: their leases end now, so another engine's sweep sends them
   * again at once. `inRows`: those of them open in their requests' rows, with their requests.
   */
  async expireLeases(ids: string[], inRows: Array<{ id: string; requestId: string }> = []): Promise<void> {
    await this.expireOpenRows(inRows);
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200);
      await this.x.run(`UPDATE step_runs SET lease_until = 0 WHERE status = 'dispatched' AND id IN (${chunk.map(() => '?').join(',')})`, chunk);
    }
  }

  /** Attempts open in requests' rows handed back: their leases end now, if they are still those attempts and dispatched. */
  private async expireOpenRows(runs: Array<{ id: string; requestId: string }>): Promise<void> {
    for (const r of runs) {
      const is = openRunIs(r.id);
      await this.x.run(`UPDATE requests SET open_lease = 0 WHERE id = ? AND open_status = 'dispatched' AND ${is.sql}`, [r.requestId, ...is.params]);
    }
  }

  /**
   * Claims attempts open in requests' rows with this status whose lease or deadline is before
   * `now`, earliest first: each gets `next(run)` as its new one, if the row still holds that
   * attempt with the value read (another attempt that took the row since is not claimed).
   */
  private async claimOpenRows(status: 'dispatched' | 'waiting', now: number, next: (run: StepRunRecord) => number, limit: number): Promise<ClaimedRun[]> {
    // Dispatched attempts through the index of open ones (every one in flight, each checked in its row), waiting ones by deadline.
    const byLease = openLeaseBefore(this.x.dialect, status);
    const rows = await this.x.all<Record<string, unknown>>(
      `SELECT ${OPEN_ROW_READ} FROM ${openRowsFrom(this.x.dialect, status === 'waiting')} WHERE ${byLease.where} ORDER BY ${byLease.order} LIMIT ?`,
      [now, limit],
    );
    const claimed: ClaimedRun[] = [];
    for (const row of rows) {
      const run = toOpenRow(row)!;
      const is = openRunIs(run.id);
      const n = await this.x.run(
        `UPDATE requests SET open_lease = ? WHERE id = ? AND open_status = ? AND open_lease = ? AND ${is.sql}`,
        [next(run), run.requestId, status, num(row.open_lease), ...is.params],
      );
      if (n === 1) claimed.push({ id: run.id, requestId: run.requestId });
    }
    return claimed;
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
    claimed.push(...(await this.claimOpenRows('dispatched', now, (run) => leaseUntil(run.transport), limit)));
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

  /** A dispatched run waits for its callback until `until`; with `requestId`, also one open in the request's row. */
  async markWaiting(id: string, until: number, requestId?: string): Promise<boolean> {
    if ((await this.x.run("UPDATE step_runs SET status = 'waiting', lease_until = ? WHERE id = ? AND status = 'dispatched'", [until, id])) === 1) return true;
    if (requestId === undefined) return false;
    const is = openRunIs(id);
    return (await this.x.run(`UPDATE requests SET open_status = 'waiting', open_lease = ? WHERE id = ? AND open_status = 'dispatched' AND ${is.sql}`, [until, requestId, ...is.params])) === 1;
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
    claimed.push(...(await this.claimOpenRows('waiting', now, () => now + 3_600_000, limit)));
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
