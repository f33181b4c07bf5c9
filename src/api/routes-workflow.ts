/**
 * Routes of long-running requests: external events, user actions, and the operator's resume
 * and stop (seed 000 §7–8). None of them can skip a step or ignore an error.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ApiEngine } from './ports';
import { ClientError, ErrorCodes } from '../errors';
import { isId, newId } from '../ids';
import type { RequestRecord } from '../model';
import { resultMessage } from '../supervisor/messages';
import { unresumableParams } from '../supervisor/resumable';
import type { Principal } from './auth';
import { holds, isPerson, requireRole } from './auth';
import { actorsOf } from './routes-people';
import { accessTo, fullRequestView, redactorFor, takeAction, unknownRequest } from './actions';
import { readJson } from '../http/body';
import { endSpan, startRemoteSpan, traceparentOf } from '../tracing/spans';

/** The most requests one event may wake at once. */
const MAX_WOKEN = 10_000;
/** How many of them are woken at once. */
const WAKE_CHUNK = 200;
/** The largest step budget an operator may give on resume. */
const MAX_STEP_BUDGET = 10_000_000;
/** The most polls one page of a poll history holds. */
const POLL_PAGE = 1000;

/** An optional JSON object body: an empty body is `{}`. */
async function optionalObject(ctx: Context): Promise<Record<string, unknown>> {
  if (Number(ctx.get('content-length') || 0) === 0 && !ctx.get('transfer-encoding')) return {};
  const body = await readJson(ctx);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ClientError(400, ErrorCodes.BAD_BODY, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

async function load(engine: ApiEngine, id: string) {
  const found = isId(id) ? await engine.getRequest(id) : undefined;
  if (!found) throw new ClientError(404, ErrorCodes.UNKNOWN_REQUEST, `unknown request "${id.slice(0, 64)}"`);
  return found;
}

/**
 * A resume may replace only the params its failed step lists in `resumable` (seed 000 §8: the
 * administrator fixes parameters, never the rules around them). Anything else is refused with
 * 422, audited, and nothing changes. The decision core refuses the same again, so a request
 * that moved on meanwhile cannot slip through.
 */
async function checkResumable(engine: ApiEngine, request: RequestRecord, params: Record<string, unknown> | undefined, principal: Principal): Promise<void> {
  if (!params || request.status !== 'error_stop' || !request.error) return;
  const pipeline = await engine.catalog.get(request.pipelineId, request.version);
  const step = pipeline.steps[request.error.stepId];
  const refused = unresumableParams(step, params);
  if (refused.length === 0) return;
  const resumable = step?.kind === 'module' ? step.resumable ?? [] : [];
  const message = `step "${request.error.stepId}" does not let resume replace ${refused.map((n) => `"${n}"`).join(', ')}`
    + (resumable.length > 0 ? ` (it may replace only ${resumable.map((n) => `"${n}"`).join(', ')})` : ' (it lists no resumable params)');
  const details = { stepId: request.error.stepId, refused, resumable };
  await engine.store.insertAudit({
    id: newId(), requestId: request.id, actor: principal.name, action: 'resume', outcome: 'invalid',
    details: { params, statusBefore: request.status, message }, createdAt: Date.now(),
  });
  engine.logger.warn('resume refused: params not resumable', { requestId: request.id, actor: principal.name, ...details });
  throw new ClientError(422, ErrorCodes.PARAM_NOT_RESUMABLE, message, details);
}

export function mountWorkflowRoutes(api: Router, engine: ApiEngine): void {
  mountEventRoute(api, engine);
  api.post('/requests/:id/actions/:code', async (ctx) => {
    const found = await load(engine, ctx.params.id!);
    const body = await optionalObject(ctx);
    if (body.data !== undefined && (typeof body.data !== 'object' || body.data === null || Array.isArray(body.data))) {
      throw new ClientError(400, ErrorCodes.BAD_BODY, '"data" must be an object of field values');
    }
    await takeAction(engine, {
      ...found, code: ctx.params.code!, stepId: typeof body.step === 'string' ? body.step : undefined,
      data: (body.data ?? {}) as Record<string, unknown>, principal: ctx.state.principal as Principal,
    });
    // The one who just acted sees the outcome, even if the request has moved out of its reach.
    ctx.body = await fullRequestView(engine, await load(engine, found.request.id), ctx.state.principal as Principal, { involved: true });
  });

  api.post('/requests/:id/resume', requireRole('operate'), operate(engine, 'resume'));
  api.post('/requests/:id/stop', requireRole('operate'), operate(engine, 'stop'));
  mountHistoryRoutes(api, engine);
}

/** An external event wakes the requests waiting for its name and key. */
function mountEventRoute(api: Router, engine: ApiEngine): void {
  api.post('/events/:name', requireRole('submit'), async (ctx) => {
    const name = ctx.params.name!;
    if (!/^[a-z0-9][a-z0-9._-]{0,99}$/i.test(name)) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'an event name is letters, digits, ".", "-", "_" (at most 100)');
    const body = await optionalObject(ctx);
    if (typeof body.key !== 'string' && typeof body.key !== 'number') throw new ClientError(400, ErrorCodes.BAD_BODY, 'an event is { "key": "<correlation key>", "data": { ... } }');
    const key = String(body.key);
    if (key.length > 255) throw new ClientError(400, ErrorCodes.BAD_BODY, 'key is at most 255 characters');
    // The event joins its caller's trace; the wait steps it answers link to its span.
    const span = startRemoteSpan(`conveyor.event ${name}`, ctx.get('traceparent') || undefined, { 'conveyor.event': name });
    const trace = traceparentOf(span);
    const principal = ctx.state.principal as Principal;
    let waiting = await engine.store.findWaitingForEvent(name, key, MAX_WOKEN);
    // A person (a token's or a delegated actor) without `read` wakes only the requests it may
    // see; a key acting for itself (a system's webhook) keeps its global `submit`.
    if (isPerson(principal) && !holds(principal, 'read')) {
      const mine = await engine.store.requestsOfActors(waiting.map((w) => w.requestId), actorsOf(engine, principal));
      waiting = waiting.filter((w) => mine.has(w.requestId));
    }
    const woken: string[] = [];
    // Many requests may wait on one key: wake them a chunk at a time, so their commits share
    // group-commit transactions instead of taking one round trip each.
    for (let i = 0; i < waiting.length; i += WAKE_CHUNK) {
      const results = await Promise.all(waiting.slice(i, i + WAKE_CHUNK).map(async (w) => {
        const run = await engine.store.getStepRun(w.id, w.requestId);
        if (!run) return undefined;
        const now = Date.now();
        const result = await engine.ask(resultMessage({
          requestId: w.requestId, runId: w.id, stepId: run.stepId, attempt: run.attempt, finishedAt: now, durationMs: now - run.startedAt,
          output: { event: name, key, data: body.data ?? null }, via: 'event', trace,
        }));
        return result === 'committed' ? w.requestId : undefined;
      }));
      for (const id of results) if (id) woken.push(id);
    }
    span?.setAttribute('conveyor.event.woken', woken.length);
    endSpan(span);
    engine.logger.info('event received', { event: name, key, woken: woken.length });
    ctx.body = { event: name, key, woken: woken.length, requests: woken };
  });
}

/** A polling wait's polls, and a request's audit. */
function mountHistoryRoutes(api: Router, engine: ApiEngine): void {
  // A polling wait is one step run; its polls are listed here, oldest first.
  api.get('/requests/:id/steps/:runId/polls', requireRole('read'), async (ctx) => {
    const found = await load(engine, ctx.params.id!);
    const run = found.runs.find((r) => r.id === ctx.params.runId);
    if (!run) throw new ClientError(404, ErrorCodes.UNKNOWN_STEP_RUN, `request ${found.request.id} has no step run "${String(ctx.params.runId).slice(0, 64)}"`);
    const after = Number(ctx.query.after ?? 0);
    const limit = Number(ctx.query.limit ?? POLL_PAGE);
    if (!Number.isInteger(after) || after < 0) throw new ClientError(400, ErrorCodes.BAD_PARAM, 'after must be a poll number (0 or more)');
    if (!Number.isInteger(limit) || limit < 1 || limit > POLL_PAGE) throw new ClientError(400, ErrorCodes.BAD_PARAM, `limit must be an integer from 1 to ${POLL_PAGE}`);
    const polls = await engine.store.listPolls(run.id, limit, after);
    const iso = (ms: number): string => new Date(ms).toISOString();
    ctx.body = {
      items: polls.map((p) => ({ n: p.n, startedAt: iso(p.startedAt), finishedAt: iso(p.finishedAt), durationMs: p.durationMs, output: p.output, error: p.error })),
      nextCursor: polls.length === limit ? String(polls[polls.length - 1]!.n) : null,
    };
  });

  // Scoped like the request itself: its participants read its audit too (redactions apply).
  api.get('/requests/:id/audit', async (ctx) => {
    const found = await load(engine, ctx.params.id!);
    const access = await accessTo(engine, found, ctx.state.principal as Principal);
    if (!access.canRead) throw unknownRequest(found.request.id);
    const items = await engine.store.listAudit(found.request.id);
    const mask = redactorFor(access, found.context);
    ctx.body = { items: items.map((a) => mask.value({ ...a, via: a.via ?? null, createdAt: new Date(a.createdAt).toISOString() })), nextCursor: null };
  });
}

/** An operator's resume or stop, audited whatever its outcome; 409 when it does not apply. */
const operate = (engine: ApiEngine, type: 'resume' | 'stop') => async (ctx: Context): Promise<void> => {
  const found = await load(engine, String(ctx.params.id));
  const body = await optionalObject(ctx);
  const principal = ctx.state.principal as Principal;
  let outcome: { type: 'resume'; params?: Record<string, unknown>; maxSteps?: number } | { type: 'stop'; reason?: string };
  if (type === 'resume') {
    if (body.params !== undefined && (typeof body.params !== 'object' || body.params === null || Array.isArray(body.params))) {
      throw new ClientError(400, ErrorCodes.BAD_BODY, '"params" must be an object: the step\'s params to replace');
    }
    const maxSteps = body.maxSteps;
    if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || (maxSteps as number) < 1 || (maxSteps as number) > MAX_STEP_BUDGET)) {
      throw new ClientError(400, ErrorCodes.BAD_BODY, `"maxSteps" must be an integer from 1 to ${MAX_STEP_BUDGET}: the request's new step budget`);
    }
    outcome = { type, params: body.params as Record<string, unknown> | undefined, maxSteps: maxSteps as number | undefined };
    await checkResumable(engine, found.request, outcome.params, principal);
  } else {
    outcome = { type, reason: typeof body.reason === 'string' ? body.reason.slice(0, 500) : undefined };
  }
  const result = await engine.ask({ ...outcome, requestId: found.request.id });
  await engine.store.insertAudit({
    id: newId(), requestId: found.request.id, actor: principal.actor, via: principal.via, action: type, outcome: result === 'committed' ? 'accepted' : 'conflict',
    details: { ...body, statusBefore: found.request.status }, createdAt: Date.now(),
  });
  if (result !== 'committed') {
    const budget = found.request.error?.code === ErrorCodes.MAX_STEPS;
    const why = type === 'resume'
      ? found.request.status !== 'error_stop' ? `only a request in error_stop can be resumed (it is ${found.request.status})`
        : budget ? `it used its ${found.request.stepCount} step runs: resume it with a larger "maxSteps"` : 'its error is not a step failure that can be retried'
      : `it has already ended (${found.request.status})`;
    throw new ClientError(409, ErrorCodes.NOT_APPLICABLE, `cannot ${type} request ${found.request.id}: ${why}`);
  }
  engine.logger.info(`request ${type === 'resume' ? 'resumed' : 'stopped'} by operator`, { requestId: found.request.id, actor: principal.actor, via: principal.via });
  ctx.body = await fullRequestView(engine, await load(engine, found.request.id), principal);
};
