/**
 * The component schemas of the OpenAPI document (`openapi.ts`): the JSON shapes the routes
 * answer with, and the small helpers both files build them with.
 */
export type Schema = Record<string, unknown>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
export const str: Schema = { type: 'string' };
export const int: Schema = { type: 'integer' };
export const bool: Schema = { type: 'boolean' };
export const time: Schema = { type: 'string', format: 'date-time' };
export const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: 'null' }] });
export const obj = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({ type: 'object', properties, required });
export const page = (item: string): Schema => obj({ items: { type: 'array', items: ref(item) }, nextCursor: nullable(str) });
export const REQUEST_STATUS: Schema = { type: 'string', enum: ['buffered', 'running', 'waiting', 'completed', 'stopped', 'error_stop'] };
export const RUN_STATUS: Schema = { type: 'string', enum: ['pending', 'dispatched', 'waiting', 'completed', 'failed', 'cancelled'] };

export const schemas: Record<string, Schema> = {
  Source: obj(
    {
      pipeline: str, name: str, kind: { type: 'string', enum: ['amqp', 'nats'] }, url: { type: 'string', description: 'Password masked.' },
      queue: str, stream: str, subject: str, durable: str, prefetch: int, maxBuffered: int,
      state: {
        type: 'string', enum: ['connecting', 'consuming', 'paused', 'reconnecting', 'stopped', 'not-running-here'],
        description: '`paused`: the backlog is over maxBuffered. `reconnecting`: the broker was lost or cannot be reached (see lastError, failures, nextAttemptAt).',
      },
      stored: int, duplicates: int, rejected: int, inFlight: int, backlog: nullable(int), lastError: nullable(str),
      failures: { type: 'integer', description: 'Failed connection attempts in a row; 0 once connected.' },
      nextAttemptAt: { ...nullable(time), description: 'When the next connection attempt is due, while reconnecting.' },
    },
    ['pipeline', 'name', 'kind', 'url', 'prefetch', 'maxBuffered', 'state', 'stored', 'duplicates', 'rejected', 'inFlight', 'backlog', 'lastError', 'failures', 'nextAttemptAt'],
  ),
  IntakeReject: obj({ id: str, pipeline: str, source: str, messageId: nullable(str), code: str, reason: str, at: time }),
  Error: obj({ error: obj({ code: str, message: str, details: {} }, ['code', 'message']) }),
  RequestError: obj({ stepId: str, runId: str, attempt: int, code: str, message: str, details: {} }, ['stepId', 'code', 'message']),
  Accepted: obj({ id: str, status: REQUEST_STATUS, links: obj({ self: str, steps: str }) }),
  RequestSummary: obj({
    id: str, pipeline: str, version: int, status: REQUEST_STATUS, businessKey: nullable(str), mode: nullable(str), test: bool,
    stepCount: int, error: nullable(ref('RequestError')), createdAt: time, updatedAt: time, finishedAt: nullable(time),
  }),
  CurrentStep: obj({ stepId: str, runId: str, attempt: int, status: RUN_STATUS, since: nullable(time) }),
  OfferedAction: obj({
    stepId: str, runId: str, code: str, label: nullable(str),
    fields: { type: 'array', items: obj({ name: str, required: bool, label: nullable(str) }) },
  }),
  Request: obj(
    {
      id: str, pipeline: str, version: int, status: REQUEST_STATUS, businessKey: nullable(str), mode: nullable(str), test: bool,
      vars: { type: 'object', description: 'The process variables, as the steps\' `assign` left them.' },
      context: { type: 'object', description: 'payload, request, and each completed step\'s latest output (`vars` is shown above).' }, currentSteps: { type: 'array', items: ref('CurrentStep') }, error: nullable(ref('RequestError')),
      createdAt: time, updatedAt: time, finishedAt: nullable(time),
      actions: { type: 'array', items: ref('OfferedAction'), description: 'The actions the caller may take now (role and visibility checked).' },
    },
    ['id', 'pipeline', 'version', 'status', 'businessKey', 'mode', 'test', 'vars', 'context', 'currentSteps', 'error', 'createdAt', 'updatedAt', 'finishedAt'],
  ),
  StepRun: obj({
    id: str, requestId: str, stepId: str, attempt: int, status: RUN_STATUS, kind: str, module: nullable(str),
    transport: nullable({ type: 'string', enum: ['event', 'http', 'queue', 'engine'] }),
    params: { description: 'The rendered params, secrets masked.' }, output: {}, error: {},
    assigned: { ...nullable({ type: 'object' }), description: 'The process variables this run\'s `assign` set.' }, causedBy: nullable(str),
    startedAt: time, finishedAt: nullable(time), durationMs: nullable(int),
    endedBy: { ...nullable({ type: 'string', enum: ['event', 'poll', 'action', 'timeout'] }), description: 'How a wait or action step ended.' },
    polls: { ...int, description: 'A polling wait: how many polls this run made (see its poll history).' },
    lastPollAt: nullable(time),
  }),
  Poll: obj({ n: int, startedAt: time, finishedAt: time, durationMs: int, output: {}, error: {} }),
  PipelineSummary: obj({ id: str, version: int, hash: str, description: nullable(str), start: str, steps: int, intake: {} }),
  Pipeline: obj({
    id: str, version: int, hash: str, description: nullable(str),
    versions: { type: 'array', items: obj({ version: int, hash: str, createdAt: time }) },
    definition: { description: 'The pipeline as written (JSON).' },
    graph: obj({
      start: str,
      nodes: {
        type: 'array',
        items: obj({
          id: str, kind: str, subsystem: str, description: str,
          join: { type: 'string', enum: ['all'], description: 'a join: waits until every step in its prev has arrived' },
          mark: { type: 'string', description: 'what the step does, in a few words: its module, "wait: event sale", "action: approve, reject", "join: all"' },
        }, ['id', 'kind', 'mark']),
      },
      edges: {
        type: 'array',
        items: obj({
          from: str, to: str,
          via: { type: 'string', description: 'why the edge is taken: next, condition[i].success[j]…, action:<code>, onError, onTimeout, loop, onExhausted' },
          label: { type: 'string', description: 'the condition as text, "otherwise" for next beside conditions, "action <code>", "error", "timeout"' },
        }, ['from', 'to', 'via']),
      },
      mermaid: { type: 'string', description: 'the graph as a Mermaid flowchart, as conveyor graph prints it' },
    }, ['start', 'nodes', 'edges', 'mermaid']),
  }),
  AuditEntry: obj({
    id: str, requestId: str, actor: { type: 'string', description: 'The actor id (a key name, a token `sub`, or a delegated actor).' },
    via: nullable({ type: 'string', description: 'What the call came through: `key:<name>` or `jwt:<issuer>`.' }), action: str, outcome: str, details: {}, createdAt: time,
  }, ['id', 'requestId', 'actor', 'via', 'action', 'outcome', 'details', 'createdAt']),
  ActionItem: obj({
    requestId: str, pipeline: str, stepId: str, code: str, label: nullable(str),
    fields: { type: 'array', items: obj({ name: str, required: bool, label: nullable(str) }) },
  }),
  EventResult: obj({ event: str, key: str, woken: int, requests: { type: 'array', items: str } }),
  BulkLine: {
    oneOf: [
      obj({ line: int, id: str, status: REQUEST_STATUS, outcome: str }, ['line', 'id', 'status']),
      obj({ line: int, error: obj({ code: str, message: str }) }),
    ],
  },
  Health: obj({ status: { const: 'ok' } }),
  Readiness: obj({
    status: { type: 'string', enum: ['ready', 'unready'] },
    checks: obj({ database: { type: 'string', enum: ['ok', 'failed'] }, redis: { type: 'string', enum: ['ok', 'failed', 'not used'] } }),
  }),
};
