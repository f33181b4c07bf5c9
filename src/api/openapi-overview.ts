/**
 * The OpenAPI description of the dashboard routes (`routes-overview.ts`), merged into the
 * document by `openapi.ts`, whose helpers it takes as an argument. `GET /api/live` answers
 * `text/event-stream`; OpenAPI 3.1 has no schema for the items of a stream, so each event's
 * `data` is described by the extension `x-conveyor-event-data` (the test checks it).
 */
type Schema = Record<string, unknown>;

export interface OpenApiHelpers {
  ref(name: string): Schema;
  obj(properties: Record<string, Schema>, required?: string[]): Schema;
  json(schema: Schema, description: string): unknown;
  secured(role: string): Record<string, unknown>;
  common: Record<string, unknown>;
}

export function overviewOpenApi(h: OpenApiHelpers): { schemas: Record<string, Schema>; paths: Record<string, Record<string, unknown>> } {
  const int = { type: 'integer' };
  const num = { type: 'number' };
  const str = { type: 'string' };
  const time = { type: 'string', format: 'date-time' };
  const counts = { type: 'object', additionalProperties: int };
  const schemas: Record<string, Schema> = {
    Overview: h.obj({
      generatedAt: time, since: time, bucketSeconds: int, marker: str,
      pipelines: { type: 'array', items: h.obj({ id: str, open: counts, lastHour: counts }) },
      series: { type: 'array', items: h.obj({ at: time, created: int, completed: int, errorStop: int, stopped: int, errorRate: { anyOf: [num, { type: 'null' }] } }) },
      slowSteps: { type: 'array', items: h.obj({ pipeline: str, stepId: str, count: int, p50Ms: int, p95Ms: int, maxMs: int }) },
    }),
    Me: h.obj({
      name: str, actor: str, actorName: { anyOf: [str, { type: 'null' }] }, via: str, roles: { type: 'array', items: str },
      may: h.obj({ submit: { type: 'boolean' }, read: { type: 'boolean' }, operate: { type: 'boolean' }, admin: { type: 'boolean' }, delegate: { type: 'boolean' } }),
    }),
  };
  const paths = {
    '/api/me': {
      get: {
        summary: 'The caller: its key name, roles, and what they allow (the dashboard shows only the buttons it may use)',
        tags: ['operations'], security: [{ bearer: [] }], 'x-conveyor-role': 'any',
        responses: { 200: h.json(h.ref('Me'), 'The caller'), ...h.common },
      },
    },
    '/api/overview': {
      get: {
        summary: 'Counts by status per pipeline (open now, ended in the last hour), throughput and error rate per minute over the last hour, the slowest steps (p50 / p95)',
        tags: ['operations'], ...h.secured('read'),
        responses: { 200: h.json(h.ref('Overview'), 'The overview'), ...h.common },
      },
    },
    '/api/live': {
      get: {
        summary: 'Live updates (Server-Sent Events): `event: overview` with the overview, first at once, then whenever it changes',
        tags: ['operations'], ...h.secured('read'),
        responses: {
          200: {
            description: 'An event stream; each `data:` line of an `overview` event is an Overview as JSON. Comment lines keep it alive.',
            content: { 'text/event-stream': { schema: { type: 'string' }, 'x-conveyor-event-data': h.ref('Overview') } },
          },
          ...h.common,
        },
      },
    },
  };
  return { schemas, paths };
}
