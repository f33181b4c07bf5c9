/**
 * The aggregates behind the dashboard overview (`GET /api/overview`), each one query that an
 * index bounds, on SQLite and MariaDB alike:
 *
 * - open requests by pipeline and status: a status index (open requests are few);
 * - requests created and finished per minute of the window: ranges of `ix_requests_created`
 *   and `ix_requests_finished`, which cover the queries (no table rows read; on MySQL it
 *   holds `finished_status`, the status of a finished request, migration `1763800000340`);
 * - the slowest steps: p50 / p95 (nearest rank) per pipeline step over the latest `sample`
 *   finished attempts of the window, through `ix_step_runs_started` and window functions;
 * - a marker that changes whenever a request arrives, a step starts or a step ends (three index
 *   maxima: the latest step row, the latest request, the latest lease of an attempt sent).
 */
import { requestIndexTerms } from './request-index-terms';
import type { SqlExecutor } from './sql-executor';

export interface OverviewOptions {
  /** @default 3_600_000 (the last hour) */
  windowMs?: number;
  /** @default 60_000 (one point a minute) */
  bucketMs?: number;
  /** The latest finished step attempts the percentiles are computed over. @default 20_000 */
  sample?: number;
  /** @default 10 */
  slowest?: number;
}

export interface OverviewData {
  since: number;
  bucketMs: number;
  /** Requests in an open status now. */
  open: Array<{ pipeline: string; status: string; n: number }>;
  /** Requests that ended in the window. */
  finished: Array<{ pipeline: string; status: string; n: number }>;
  /** One point per bucket of the window, oldest first. */
  series: Array<{ at: number; created: number; completed: number; errorStop: number; stopped: number }>;
  slowSteps: Array<{ pipeline: string; stepId: string; count: number; p50: number; p95: number; max: number }>;
  /** Changes when anything happened: new requests or step attempts. */
  marker: string;
}

const OPEN = ['buffered', 'running', 'waiting', 'error_stop'];

/** Reads the overview at `now`. */
export async function readOverview(x: SqlExecutor, now: number, o: OverviewOptions = {}): Promise<OverviewData> {
  const windowMs = o.windowMs ?? 3_600_000;
  const bucketMs = o.bucketMs ?? 60_000;
  const since = now - windowMs;
  const bucket = (col: string): string => (x.dialect === 'mysql' ? `(${col} - ?) DIV ?` : `(${col} - ?) / ?`);
  const finishedStatus = requestIndexTerms(x.dialect).finishedStatus;
  const [open, finishedRows, createdRows, slow, marker] = await Promise.all([
    x.all<{ pipeline_id: string; status: string; n: unknown }>(
      `SELECT pipeline_id, status, COUNT(*) AS n FROM requests WHERE status IN (${OPEN.map(() => '?').join(',')}) GROUP BY pipeline_id, status`, OPEN,
    ),
    x.all<{ b: unknown; pipeline_id: string; status: string; n: unknown }>(
      `SELECT ${bucket('finished_at')} AS b, pipeline_id, ${finishedStatus} AS status, COUNT(*) AS n FROM requests WHERE finished_at >= ? GROUP BY b, pipeline_id, ${finishedStatus}`,
      [since, bucketMs, since],
    ),
    x.all<{ b: unknown; n: unknown }>(`SELECT ${bucket('created_at')} AS b, COUNT(*) AS n FROM requests WHERE created_at >= ? GROUP BY b`, [since, bucketMs, since]),
    slowSteps(x, since, o.sample ?? 20_000),
    // What moves when anything happens: a step's row (it ends), a request (it arrives), the lease of the latest attempt sent (it starts, in its request's row).
    x.all<{ s: unknown; c: unknown; o: unknown }>(
      "SELECT (SELECT MAX(started_at) FROM step_runs) AS s, (SELECT MAX(created_at) FROM requests) AS c, (SELECT MAX(open_lease) FROM requests WHERE open_status = 'dispatched') AS o",
    ),
  ]);
  const buckets = Math.ceil(windowMs / bucketMs);
  const series = Array.from({ length: buckets }, (_, i) => ({ at: since + i * bucketMs, created: 0, completed: 0, errorStop: 0, stopped: 0 }));
  const at = (b: unknown) => series[Math.min(buckets - 1, Math.max(0, Number(b)))]!;
  for (const r of createdRows) at(r.b).created += Number(r.n);
  const finished = new Map<string, { pipeline: string; status: string; n: number }>();
  for (const r of finishedRows) {
    const n = Number(r.n);
    const point = at(r.b);
    if (r.status === 'completed') point.completed += n;
    else if (r.status === 'error_stop') point.errorStop += n;
    else if (r.status === 'stopped') point.stopped += n;
    const k = `${r.pipeline_id}\u0000${r.status}`;
    const f = finished.get(k) ?? { pipeline: String(r.pipeline_id), status: String(r.status), n: 0 };
    f.n += n;
    finished.set(k, f);
  }
  return {
    since,
    bucketMs,
    open: open.map((r) => ({ pipeline: String(r.pipeline_id), status: String(r.status), n: Number(r.n) })),
    finished: [...finished.values()],
    series,
    slowSteps: slow.sort((a, b) => b.p95 - a.p95 || b.p50 - a.p50).slice(0, o.slowest ?? 10),
    marker: `${Number(marker[0]?.s ?? 0)}:${Number(marker[0]?.c ?? 0)}:${Number(marker[0]?.o ?? 0)}`,
  };
}

/** p50 / p95 by nearest rank: the smallest rank r with r / count >= p. */
async function slowSteps(x: SqlExecutor, since: number, sample: number): Promise<OverviewData['slowSteps']> {
  const rank = (p: number) => `(rn * 100 >= cnt * ${p} AND (rn - 1) * 100 < cnt * ${p})`;
  const rows = await x.all<{ pipeline_id: string; step_id: string; duration_ms: unknown; rn: unknown; cnt: unknown; mx: unknown }>(
    `SELECT pipeline_id, step_id, duration_ms, rn, cnt, mx FROM (
       SELECT pipeline_id, step_id, duration_ms,
              ROW_NUMBER() OVER (PARTITION BY pipeline_id, step_id ORDER BY duration_ms) AS rn,
              COUNT(*) OVER (PARTITION BY pipeline_id, step_id) AS cnt,
              MAX(duration_ms) OVER (PARTITION BY pipeline_id, step_id) AS mx
       FROM (SELECT pipeline_id, step_id, duration_ms FROM step_runs
             WHERE started_at >= ? AND duration_ms IS NOT NULL ORDER BY started_at DESC LIMIT ?) recent
     ) ranked WHERE ${rank(50)} OR ${rank(95)}`,
    [since, sample],
  );
  const out = new Map<string, OverviewData['slowSteps'][number]>();
  for (const r of rows) {
    const k = `${r.pipeline_id}\u0000${r.step_id}`;
    const s = out.get(k) ?? { pipeline: String(r.pipeline_id), stepId: String(r.step_id), count: Number(r.cnt), p50: 0, p95: 0, max: Number(r.mx) };
    const rn = Number(r.rn);
    const cnt = Number(r.cnt);
    const d = Number(r.duration_ms);
    if (rn * 100 >= cnt * 50 && (rn - 1) * 100 < cnt * 50) s.p50 = d;
    if (rn * 100 >= cnt * 95 && (rn - 1) * 100 < cnt * 95) s.p95 = d;
    out.set(k, s);
  }
  return [...out.values()];
}
