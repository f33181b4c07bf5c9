/**
 * The plumbing shared by the local stand-ins of seed 000 and 003 (marketplace, LLM,
 * notification provider, payment provider): a plain `node:http` server with JSON bodies,
 * injectable faults, call counting and the control endpoints `GET /_state`, `POST /_reset`,
 * `GET|POST /_faults`. Each stand-in supplies its routes and its state; this file knows
 * nothing of what they mean. It follows `scripts/crm-standin.ts`, which predates it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A JSON object as a stand-in reads and answers it. */
export type Json = Record<string, unknown>;

/** An answer other than 200 that ends handling. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A pending injected fault: the next `times` calls to `path` wait `delayMs` and/or answer `status`. */
export interface Fault {
  path: string;
  status?: number;
  times: number;
  delayMs?: number;
}

/** One call as a route sees it. */
export interface StandinCall {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body (`{}` when empty). */
  body: Json;
}

/** A route: `METHOD /path`, where a path segment `:name` matches anything (`params.name`). */
export type Route = (call: StandinCall, params: Record<string, string>) => unknown;

/** What {@link startStandin} returns. */
export interface Standin<S> {
  /** `http://host:port`, no trailing slash. */
  url: string;
  port: number;
  /** The live state (the object the routes mutate). */
  readonly state: S;
  /** Back to the initial state; forgets faults. */
  reset(): void;
  /** Queues a fault without HTTP (tests). */
  fault(f: Omit<Fault, 'times'> & { times?: number }): void;
  close(): Promise<void>;
}

export interface StandinOptions<S extends { calls: Record<string, number> }> {
  /** @default 127.0.0.1 */
  host?: string;
  port: number;
  /** Makes a fresh state; called at start and on reset. */
  initial(): S;
  /** `'POST /api/products'` → handler. Handlers may be async and throw {@link HttpError}. */
  routes(state: () => S): Record<string, Route>;
  /** Called on reset, after the state was replaced (for caches kept outside the state). */
  onReset?(): void;
  /** Error body shape. @default `{ error: { code, message } }` */
  errorBody?(err: HttpError): unknown;
}

const MAX_BODY = 1024 * 1024;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => (size > MAX_BODY ? reject(new HttpError(413, 'BODY_TOO_LARGE', `body over ${MAX_BODY} bytes`)) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/** Parses a JSON object body; `__proto__` keys are dropped. */
export function parseJson(text: string): Json {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => (key === '__proto__' ? undefined : v));
  } catch (err) {
    throw new HttpError(400, 'INVALID_JSON', `malformed JSON body: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'INVALID_REQUEST', 'the body must be a JSON object');
  return value as Json;
}

function parseFault(body: Json): Fault {
  const { path, status, times, delayMs } = body;
  const int = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (typeof path !== 'string' || path === '') throw new HttpError(400, 'INVALID_REQUEST', 'path is required');
  if (status !== undefined && !int(status, 100, 599)) throw new HttpError(400, 'INVALID_REQUEST', 'status must be an HTTP status code');
  if (times !== undefined && !int(times, 1, 1_000_000)) throw new HttpError(400, 'INVALID_REQUEST', 'times must be a positive integer');
  if (delayMs !== undefined && !int(delayMs, 0, 600_000)) throw new HttpError(400, 'INVALID_REQUEST', 'delayMs must be an integer from 0 to 600000');
  if (status === undefined && delayMs === undefined) throw new HttpError(400, 'INVALID_REQUEST', 'give status, delayMs or both');
  const normalised = path.startsWith('/') ? path : `/${path}`;
  if (normalised.startsWith('/_')) throw new HttpError(400, 'INVALID_REQUEST', 'control endpoints cannot be faulted');
  return { path: normalised, status: status as number | undefined, times: (times as number | undefined) ?? 1, delayMs: delayMs as number | undefined };
}

/** Matches `/api/products/:id` against a path; returns the named segments, or undefined. */
function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const have = path.split('/');
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(have[i]!);
    else if (w !== have[i]) return undefined;
  }
  return params;
}

/** Starts a stand-in server. */
export async function startStandin<S extends { calls: Record<string, number> }>(o: StandinOptions<S>): Promise<Standin<S>> {
  const host = o.host ?? '127.0.0.1';
  let state = o.initial();
  let faults: Fault[] = [];
  const routes = o.routes(() => state);
  const table = Object.entries(routes).map(([key, handler]) => {
    const [method, pattern] = key.split(' ') as [string, string];
    return { method, pattern, handler };
  });
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, ms);
    timers.add(t);
  });
  const takeFault = (path: string): Fault | undefined => {
    const i = faults.findIndex((f) => f.path === path);
    if (i < 0) return undefined;
    const f = faults[i]!;
    f.times -= 1;
    if (f.times <= 0) faults.splice(i, 1);
    return { ...f };
  };
  const reset = (): void => {
    state = o.initial();
    faults = [];
    o.onReset?.();
  };
  const errorBody = o.errorBody ?? ((e: HttpError) => ({ error: { code: e.code, message: e.message } }));

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const text = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
    if (path === '/_state') return send(res, 200, state);
    if (path === '/_reset' && method === 'POST') {
      reset();
      return send(res, 200, { ok: true });
    }
    if (path === '/_faults') {
      if (method === 'GET') return send(res, 200, { faults });
      const fault = parseFault(parseJson(text));
      faults.push(fault);
      return send(res, 200, { ok: true, pending: faults.filter((f) => f.path === fault.path).length });
    }
    state.calls[path] = (state.calls[path] ?? 0) + 1;
    const candidates = table.map((r) => ({ r, params: match(r.pattern, path) })).filter((x) => x.params);
    if (candidates.length === 0) throw new HttpError(404, 'NOT_FOUND', `no such endpoint: ${path}`);
    const found = candidates.find((x) => x.r.method === method);
    if (!found) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `use ${candidates.map((x) => x.r.method).join(' or ')}`);
    const fault = takeFault(path);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.status !== undefined) return send(res, fault.status, errorBody(new HttpError(fault.status, 'INJECTED_FAULT', `injected fault: ${fault.status}`)));
    const body = parseJson(text);
    const out = await found.r.handler({ method, path, query: url.searchParams, headers: req.headers, body }, found.params!);
    send(res, 200, out);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) send(res, err.status, errorBody(err));
      else send(res, 500, errorBody(new HttpError(500, 'INTERNAL', 'internal error')));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    get state() {
      return state;
    },
    reset,
    fault: (f) => void faults.push({ ...f, times: f.times ?? 1 }),
    close: () => new Promise<void>((resolve, reject) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    }),
  };
}

/** Reads a string field or answers 400. */
export function requireString(body: Json, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v.trim() === '') throw new HttpError(400, 'INVALID_REQUEST', `${name} is required`);
  return v;
}

/** Reads a positive number field or answers 400. */
export function requireAmount(body: Json, name: string): number {
  const v = typeof body[name] === 'string' ? Number(body[name]) : body[name];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new HttpError(400, 'INVALID_REQUEST', `${name} must be a positive number`);
  return v;
}

/** Runs a stand-in as a script until SIGINT/SIGTERM. */
export function runStandinMain(name: string, start: () => Promise<{ url: string; close(): Promise<void> }>, hint: (url: string) => string): void {
  start()
    .then((s) => {
      console.log(`${name} listening on ${s.url} (${hint(s.url)})`);
      const stop = (): void => void s.close().then(() => process.exit(0), () => process.exit(1));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: unknown) => {
      console.error(`${name} failed to start: ${(err as Error).message}`);
      process.exit(1);
    });
}
