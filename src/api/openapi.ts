/**
 * The OpenAPI 3.1 description of Conveyor's HTTP API, served at `GET /openapi.json`.
 *
 * `test/ops/openapi.test.ts` lists the routes the Koa routers really register and fails on any
 * that is not described here (and on any described here that no longer exists), and it
 * validates real answers against these schemas. A new route therefore needs its entry here.
 */
import { MAX_LIMIT, DEFAULT_LIMIT } from './search-params';
import { overviewOpenApi } from './openapi-overview';
import { migrationsOpenApi } from './openapi-migrations';
import { ref, str, int, bool, obj, page, REQUEST_STATUS, RUN_STATUS, schemas, type Schema } from './openapi-schemas';

const json = (schema: Schema, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: str, description });
const query = (name: string, schema: Schema, description: string) => ({ name, in: 'query', required: false, schema, description });
const header = (name: string, description: string) => ({ name, in: 'header', required: false, schema: str, description });
const TRACEPARENT = header('traceparent', 'W3C trace context: the request joins the caller’s trace (when tracing is on; docs/observability.md).');
const secured = (role: string) => ({ security: [{ bearer: [] }], 'x-conveyor-role': role });
const COMMON = { 401: error('No key or token, or an unknown, revoked, expired or badly signed one'), 403: error('The key lacks the role, or sent X-Conveyor-Actor without "delegate"') };
const REQUEST_ID = pathParam('id', 'The request id (a UUID).');
const OPTIONAL_JSON = (schema: Schema) => ({ required: false, content: { 'application/json': { schema } } });

const window = [
  query('since', str, 'Only rows at or after this time: ISO-8601 (`2025-01-31T12:00:00Z`) or epoch milliseconds.'),
  query('until', str, 'Only rows before this time (exclusive), same forms.'),
  query('limit', { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT }, 'Page size.'),
  query('cursor', str, 'The `nextCursor` of the previous page (opaque).'),
];

const paths: Record<string, Record<string, unknown>> = {
  '/healthz': { get: { summary: 'Liveness', tags: ['operations'], responses: { 200: json(ref('Health'), 'The process answers') } } },
  '/readyz': {
    get: {
      summary: 'Readiness: the database answers (SELECT 1) and, in distributed mode, Redis (PING)',
      tags: ['operations'],
      responses: { 200: json(ref('Readiness'), 'Ready'), 503: json(ref('Readiness'), 'A dependency failed; `checks` names it') },
    },
  },
  '/metrics': {
    get: {
      summary: 'Prometheus metrics (text exposition format)',
      tags: ['operations'],
      ...secured('read'),
      responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: str } } }, ...COMMON },
    },
  },
  '/openapi.json': { get: { summary: 'This document', tags: ['operations'], responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1') } } },
  '/': { get: { summary: 'The dashboard (HTML); it signs in with an API key', tags: ['dashboard'], responses: { 200: { description: 'HTML', content: { 'text/html': { schema: str } } } } } },
  '/dashboard/{file}': {
    get: {
      summary: "The dashboard's static files",
      tags: ['dashboard'],
      parameters: [pathParam('file', 'A file name, e.g. `app.js`')],
      responses: { 200: { description: 'The file' }, 404: error('No such file') },
    },
  },
  '/dashboard/vendor/{file}': {
    get: {
      summary: 'Front-end libraries the dashboard uses, served from node_modules (mermaid)',
      tags: ['dashboard'],
      parameters: [pathParam('file', 'e.g. `mermaid.min.js`')],
      responses: { 200: { description: 'The file' }, 404: error('No such file') },
    },
  },
  '/api/callbacks/{token}': {
    post: {
      summary: "A remote module's late result (after it answered 202); the signed token is the credential",
      tags: ['modules'],
      parameters: [pathParam('token', 'The signed, expiring token of the callback URL')],
      requestBody: { required: true, content: { 'application/json': { schema: { oneOf: [obj({ data: {} }), obj({ error: obj({ code: str, message: str, retryable: bool }, []) })] } } } },
      responses: {
        200: json(obj({ status: { const: 'accepted' } }), 'Taken'),
        400: error('Bad body'),
        401: error('Invalid token'),
        409: error('The run is not waiting for this result'),
        410: error('The callback URL expired'),
      },
    },
  },
  '/api/pipelines/{id}/requests': {
    post: {
      summary: 'Submit a request: the body is the payload',
      tags: ['requests'],
      ...secured('submit'),
      parameters: [
        pathParam('id', 'The pipeline id'),
        query('wait', { type: 'number', minimum: 0, maximum: 60 }, 'Wait up to this many seconds for the end; answers 200 with the request if it ends in time.'),
        query('test', { type: 'string', enum: ['1', '0', 'true', 'false'] }, 'Test mode.'),
        query('mode', str, 'The run mode (e.g. `semi`, `auto`).'),
        query('callbackUrl', str, 'Where to post the final request. Public addresses only, unless `CONVEYOR_OUTBOUND_ALLOW` lists it (else 422).'),
        header('Idempotency-Key', 'A repeated key answers the first request again (200).'),
        header('X-Business-Key', 'One active request per business key, when the pipeline asks for it. Where the pipeline reads the key from the payload, the header must equal that value (else 422).'),
        header('X-Callback-Url', 'Same as `callbackUrl`.'),
        TRACEPARENT,
      ],
      requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
      responses: {
        202: json(ref('Accepted'), 'Stored durably; it will run'),
        200: json({ oneOf: [ref('Request'), ref('Accepted')] }, 'With `wait`: the finished request. Otherwise nothing new was created (an idempotent replay, or the business key’s active request)'),
        400: error('Bad input'),
        404: error('Unknown pipeline'),
        409: error('A request with this business key is active'),
        413: error('Body too large'),
        415: error('Not JSON'),
        422: error('X-Business-Key disagrees with the payload (CONVEYOR_ERR_BUSINESS_KEY_MISMATCH), an Idempotency-Key reused with another body, or the callback URL is refused by the outbound rule (CONVEYOR_ERR_OUTBOUND_REFUSED)'),
        ...COMMON,
      },
    },
  },
  '/api/pipelines/{id}/requests/bulk': {
    post: {
      summary: 'Submit many requests: NDJSON in, one result line out per input line, in order',
      tags: ['requests'],
      ...secured('submit'),
      parameters: [
        pathParam('id', 'The pipeline id'),
        query('test', { type: 'string', enum: ['1', '0', 'true', 'false'] }, 'Test mode for every line.'),
        query('envelope', { type: 'string', enum: ['1', '0', 'true', 'false'] }, 'Lines are `{ payload, idempotencyKey?, businessKey?, callbackUrl? }`.'),
        header('Idempotency-Key', 'Line n gets the key `<header>:<n>`.'),
        header('X-Business-Key', 'The business key of every line without its own `businessKey`; a line whose payload disagrees answers CONVEYOR_ERR_BUSINESS_KEY_MISMATCH.'),
        TRACEPARENT,
      ],
      requestBody: { required: true, content: { 'application/x-ndjson': { schema: str } } },
      responses: {
        200: { description: 'One JSON line per input line', content: { 'application/x-ndjson': { schema: ref('BulkLine') } } },
        404: error('Unknown pipeline'),
        415: error('Not NDJSON'),
        ...COMMON,
      },
    },
  },
  '/api/requests': {
    get: {
      summary: 'Search requests, newest first (without `read`: only the caller\'s own requests)',
      tags: ['requests'],
      ...secured('read (or participant)'),
      parameters: [
        query('participant', str, 'Only requests where this actor id is a participant (without `read`: the caller\'s own id).'),
        query('pipeline', str, 'Pipeline id.'),
        query('status', REQUEST_STATUS, 'Request status.'),
        query('businessKey', str, 'Business key.'),
        query('test', { type: 'string', enum: ['1', '0', 'true', 'false'] }, 'Test requests only (1) or none (0).'),
        ...window,
      ],
      responses: { 200: json(page('RequestSummary'), 'A page'), 400: error('A bad parameter; `details.param` names it'), ...COMMON },
    },
  },
  '/api/requests/{id}': {
    get: {
      summary: 'A request: status, pinned version, context, current steps, error, and the actions the caller may take',
      tags: ['requests'],
      ...secured('read (or participant)'),
      parameters: [REQUEST_ID],
      responses: { 200: json(ref('Request'), 'The request'), 404: error('Unknown request'), ...COMMON },
    },
  },
  '/api/requests/{id}/steps': {
    get: {
      summary: 'The step log of one request: one item per attempt, in the order the steps started',
      tags: ['requests'],
      ...secured('read (or participant)'),
      parameters: [REQUEST_ID],
      responses: { 200: json(page('StepRun'), 'Every attempt'), 404: error('Unknown request'), ...COMMON },
    },
  },
  '/api/requests/{id}/steps/{runId}/polls': {
    get: {
      summary: 'The poll history of a polling wait (one step run however often it polls), oldest first',
      tags: ['requests'],
      ...secured('read'),
      parameters: [
        REQUEST_ID, pathParam('runId', 'The step run id'),
        { name: 'after', in: 'query', schema: int, description: 'Polls after this number (the previous page\'s nextCursor).' },
        { name: 'limit', in: 'query', schema: int, description: 'At most this many polls (1-1000). Default 1000.' },
      ],
      responses: { 200: json(page('Poll'), 'The polls'), 400: error('Bad after or limit'), 404: error('Unknown request or run'), ...COMMON },
    },
  },
  '/api/requests/{id}/audit': {
    get: {
      summary: 'Who did what to a request: actions, resumes, stops (refused ones too)',
      tags: ['requests'],
      ...secured('read (or participant)'),
      parameters: [REQUEST_ID],
      responses: { 200: json(page('AuditEntry'), 'The audit trail'), 404: error('Unknown request'), ...COMMON },
    },
  },
  '/api/actions': {
    get: {
      summary: 'The actions the caller may take now, across waiting requests (participant and role checked)',
      tags: ['operations'],
      security: [{ bearer: [] }],
      parameters: [query('pipeline', str, 'Pipeline id.'), query('limit', int, 'Requests per page (1-500).'), query('cursor', str, 'The previous page\'s `nextCursor`.')],
      responses: { 200: json(page('ActionItem'), 'A page'), 400: error('A bad parameter'), ...COMMON },
    },
  },
  '/api/requests/{id}/actions/{code}': {
    post: {
      summary: 'Take a user action on a waiting request (the action’s `allow` roles are checked)',
      tags: ['operations'],
      security: [{ bearer: [] }],
      parameters: [REQUEST_ID, pathParam('code', 'The action code')],
      requestBody: OPTIONAL_JSON(obj({ step: str, data: { type: 'object' } }, [])),
      responses: {
        200: json(ref('Request'), 'Taken; the request after it'),
        400: error('Bad body'),
        404: error('Unknown request, or one the caller may not see'),
        409: error('The action is not offered now'),
        422: error('Missing or unknown fields'),
        ...COMMON,
      },
    },
  },
  '/api/requests/{id}/resume': {
    post: {
      summary: 'Resume a request in error_stop: retry the failed step, optionally replacing the params it lists as `resumable`',
      tags: ['operations'],
      ...secured('operate'),
      parameters: [REQUEST_ID],
      requestBody: OPTIONAL_JSON(obj({ params: { type: 'object' }, maxSteps: { ...int, description: 'A larger step budget (needed after CONVEYOR_ERR_MAX_STEPS).' } }, [])),
      responses: {
        200: json(ref('Request'), 'Resumed'), 400: error('Bad body'), 404: error('Unknown request'), 409: error('Not in error_stop, or the budget is not larger'),
        422: error('A param the failed step does not list in `resumable` (CONVEYOR_ERR_PARAM_NOT_RESUMABLE)'), ...COMMON,
      },
    },
  },
  '/api/requests/{id}/stop': {
    post: {
      summary: 'Stop a request that has not ended',
      tags: ['operations'],
      ...secured('operate'),
      parameters: [REQUEST_ID],
      requestBody: OPTIONAL_JSON(obj({ reason: str }, [])),
      responses: { 200: json(ref('Request'), 'Stopped'), 404: error('Unknown request'), 409: error('Already ended'), ...COMMON },
    },
  },
  '/api/events/{name}': {
    post: {
      summary: 'An external event: wakes the requests waiting on this event and key',
      tags: ['operations'],
      ...secured('submit'),
      parameters: [pathParam('name', 'The event name'), header('traceparent', 'W3C trace context: the event is a span of the caller’s trace, linked from the wait steps it answers (when tracing is on).')],
      requestBody: { required: true, content: { 'application/json': { schema: obj({ key: { type: ['string', 'number'] }, data: {} }, ['key']) } } },
      responses: { 200: json(ref('EventResult'), 'Delivered'), 400: error('Bad body or name'), ...COMMON },
    },
  },
  '/api/steps': {
    get: {
      summary: 'Search the step log across requests, latest start first',
      tags: ['requests'],
      ...secured('read'),
      parameters: [query('pipeline', str, 'Pipeline id.'), query('step', str, 'Step id.'), query('status', RUN_STATUS, 'Attempt status.'), ...window],
      responses: { 200: json(page('StepRun'), 'A page'), 400: error('A bad parameter; `details.param` names it'), ...COMMON },
    },
  },
  '/api/pipelines': {
    get: {
      summary: 'The pipelines served, with their current version',
      tags: ['pipelines'],
      ...secured('read'),
      responses: { 200: json(page('PipelineSummary'), 'Every pipeline'), ...COMMON },
    },
  },
  '/api/sources': {
    get: {
      summary: "Broker sources (state in this process, counts since it started) and the latest messages they dead-lettered",
      tags: ['pipelines'],
      ...secured('read'),
      parameters: [
        query('pipeline', str, 'Only this pipeline'),
        query('limit', { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT }, 'How many rejects'),
      ],
      responses: {
        200: json(obj({ sources: { type: 'array', items: ref('Source') }, rejects: { type: 'array', items: ref('IntakeReject') } }), 'Sources and rejects'),
        400: error('A bad query parameter'),
        ...COMMON,
      },
    },
  },
  '/api/pipelines/{id}': {
    get: {
      summary: 'A pipeline: definition, stored versions, and its graph (nodes, labelled edges)',
      tags: ['pipelines'],
      ...secured('read'),
      parameters: [pathParam('id', 'The pipeline id')],
      responses: { 200: json(ref('Pipeline'), 'The pipeline'), 404: error('Unknown pipeline'), ...COMMON },
    },
  },
};

const dashboard = overviewOpenApi({ ref, obj, json, secured, common: COMMON });
const migrations = migrationsOpenApi({ ref, obj, json, secured, error, common: COMMON });

/** The OpenAPI document. */
export function buildOpenApi(version = '0.1.0'): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Conveyor',
      version,
      description: 'Request pipeline engine. Every `/api` route needs `Authorization: Bearer <key>`; roles: submit, read, operate (implies read), admin (anything).',
    },
    servers: [{ url: '/' }],
    components: { schemas: { ...schemas, ...dashboard.schemas, ...migrations.schemas }, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key, or a JWT (HS256 with CONVEYOR_JWT_SECRET; RS256/ES256 from CONVEYOR_JWT_JWKS_URL)' } } },
    paths: { ...paths, ...dashboard.paths, ...migrations.paths },
  };
}
