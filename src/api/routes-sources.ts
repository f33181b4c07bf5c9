/**
 * `GET /api/sources` (role read): every broker source the pipelines declare, with its state
 * in this process (API-only processes run none: `not-running-here`), and the latest
 * messages the sources refused and dead-lettered.
 */
import type Router from '@koa/router';
import { redactUrl } from '../pipeline/broker-url';
import type { ApiEngine } from './ports';
import type { SourceStatus } from '../sources/runner';
import { requireRole } from './auth';
import { QueryReader } from './search-params';

export const SOURCE_PARAMS = ['pipeline', 'limit'] as const;

const iso = (ms: number): string => new Date(ms).toISOString();

export function mountSourceRoutes(api: Router, engine: ApiEngine): void {
  api.get('/sources', requireRole('read'), async (ctx) => {
    const q = new QueryReader(ctx.query, SOURCE_PARAMS);
    const pipeline = q.text('pipeline', 100);
    const limit = q.limit();
    const running = new Map(engine.sources.statuses().map((s) => [`${s.pipeline}/${s.name}`, s]));
    const sources: Array<SourceStatus | Record<string, unknown>> = [];
    for (const { pipeline: p } of engine.catalog.list()) {
      if (pipeline && p.id !== pipeline) continue;
      for (const s of p.sources ?? []) {
        const live = running.get(`${p.id}/${s.name}`);
        if (live) {
          sources.push({ ...live, nextAttemptAt: live.nextAttemptAt === null ? null : iso(live.nextAttemptAt) });
          continue;
        }
        const where = s.kind === 'amqp' ? { queue: s.queue } : { stream: s.stream, subject: s.subject, durable: s.durable };
        let url = s.url;
        try {
          url = redactUrl(engine.brokers.expand(s.url));
        } catch {
          // shown as written
        }
        sources.push({
          pipeline: p.id, name: s.name, kind: s.kind, url, ...where, prefetch: s.prefetch, maxBuffered: s.maxBuffered, state: 'not-running-here',
          stored: 0, duplicates: 0, rejected: 0, inFlight: 0, backlog: null, lastError: null, failures: 0, nextAttemptAt: null,
        });
      }
    }
    const rejects = await engine.store.sources.listRejects(limit, pipeline);
    ctx.body = {
      sources,
      rejects: rejects.map((r) => ({ id: r.id, pipeline: r.pipelineId, source: r.source, messageId: r.messageId, code: r.code, reason: r.reason, at: iso(r.createdAt) })),
    };
  });
}
