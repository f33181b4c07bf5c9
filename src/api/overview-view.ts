/**
 * The answer of `GET /api/overview` (and of each `overview` event of `GET /api/live`): what is
 * open now per pipeline, what ended in the last hour, per-minute throughput and error rate,
 * and the slowest steps. Every pipeline of the catalog is listed, with zeros if idle.
 */
import type { ApiEngine } from './ports';
import type { OverviewData } from '../store/overview';

export const OVERVIEW_STATUSES = ['buffered', 'running', 'waiting', 'error_stop', 'completed', 'stopped'] as const;

export interface OverviewView {
  generatedAt: string;
  since: string;
  bucketSeconds: number;
  /** `open` counts are now; `lastHour` counts requests that ended in the window. */
  pipelines: Array<{ id: string; open: Record<string, number>; lastHour: Record<string, number> }>;
  series: Array<{ at: string; created: number; completed: number; errorStop: number; stopped: number; errorRate: number | null }>;
  slowSteps: Array<{ pipeline: string; stepId: string; count: number; p50Ms: number; p95Ms: number; maxMs: number }>;
  marker: string;
}

export function overviewView(engine: ApiEngine, d: OverviewData): OverviewView {
  const ids = new Set([...engine.catalog.list().map((e) => e.pipeline.id), ...d.open.map((r) => r.pipeline), ...d.finished.map((r) => r.pipeline)]);
  const zero = (list: readonly string[]) => Object.fromEntries(list.map((s) => [s, 0])) as Record<string, number>;
  const byId = new Map([...ids].sort().map((id) => [id, { id, open: zero(['buffered', 'running', 'waiting', 'error_stop']), lastHour: zero(['completed', 'error_stop', 'stopped']) }]));
  for (const r of d.open) byId.get(r.pipeline)!.open[r.status] = r.n;
  for (const r of d.finished) byId.get(r.pipeline)!.lastHour[r.status] = r.n;
  return {
    generatedAt: new Date().toISOString(),
    since: new Date(d.since).toISOString(),
    bucketSeconds: d.bucketMs / 1000,
    pipelines: [...byId.values()],
    series: d.series.map((p) => {
      const ended = p.completed + p.errorStop + p.stopped;
      return { at: new Date(p.at).toISOString(), created: p.created, completed: p.completed, errorStop: p.errorStop, stopped: p.stopped, errorRate: ended === 0 ? null : p.errorStop / ended };
    }),
    slowSteps: d.slowSteps.map((s) => ({ pipeline: s.pipeline, stepId: s.stepId, count: s.count, p50Ms: s.p50, p95Ms: s.p95, maxMs: s.max })),
    marker: d.marker,
  };
}
