/**
 * A whole Conveyor for a test: an engine on a fresh SQLite file (or the database named) and
 * its HTTP API on an ephemeral port of 127.0.0.1 (or, with `listen: false`, through
 * `app.callback()` without a port), with three API keys (admin, submit-only,
 * read-only) and a small client. `close()` undoes everything `startTestEngine` did.
 *
 * ```ts
 * const t = await startTestEngine({ env: { CRM_BASE_URL: crm.url } });
 * const r = await t.api('POST', '/api/pipelines/hello/requests', { body: { name: 'x' }, key: t.keys.submit });
 * await t.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import axios, { type AxiosRequestConfig } from 'axios';
import { createApp } from '../../src/api/app';
import { KeyRing } from '../../src/api/auth';
import { serve, type RunningServer } from '../../src/cli/server';
import { Engine, type EngineOptions } from '../../src/engine';
import { createLogger, type Logger } from '../../src/log/logger';
import { inProcessClient, type RawAnswer } from './in-process';
import { removeTmpDir, tmpDir } from './tmp';

/** The repository root: the real `pipelines/` and `modules/` live here. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Options of {@link startTestEngine}. */
export interface TestEngineOptions {
  /** @default `sqlite:<fresh temp dir>/conveyor.db` */
  databaseUrl?: string;
  /** @default the repository's `pipelines/` */
  pipelinesDir?: string;
  /** @default the repository's `modules/` */
  modulesDir?: string;
  /**
   * Environment variables set before the engine loads its modules (e.g. `CRM_BASE_URL`, which
   * `*.module.json` files substitute at load time), and restored by `close()`.
   */
  env?: Record<string, string>;
  /** @default a logger that prints nothing */
  logger?: Logger;
  /** More `key:role+role` entries for the key ring (named `env#4`, `env#5`, … in that order). */
  extraKeys?: string;
  /**
   * `false`: no port. `api()` goes through `app.callback()` in-process (test/support/in-process.ts),
   * for tests of the API's answers alone; `url` is not available, and remote modules cannot call
   * back. Keep the default for tests of the transport itself (sockets, timeouts, streams to a
   * client, callbacks). @default true
   */
  listen?: boolean;
  /** Any other engine option (`redisUrl`, `queueModules`, `supervisor`, …), passed through. */
  engine?: Omit<EngineOptions, 'databaseUrl' | 'pipelinesDir' | 'modulesDir' | 'logger'>;
}

/** One HTTP call of {@link TestEngine.api}. */
export interface ApiCallOptions {
  /** Sent as JSON (`content-type: application/json`). */
  body?: unknown;
  /** Sent as-is instead of `body`; the content type is `application/json` unless `headers` say otherwise. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** The bearer key; `null` sends no `Authorization` header. @default the admin key */
  key?: string | null;
}

/** What the API answered. `body` is parsed JSON when it parses, else the text (not checked against `T`). */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  /** The raw text of the body, for assertions on what the client really sees. */
  text: string;
  headers: Record<string, string>;
}

/** A running engine and API, as {@link startTestEngine} returns it. */
export interface TestEngine {
  engine: Engine;
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  keys: { admin: string; submit: string; read: string };
  api<T = unknown>(method: string, path: string, opts?: ApiCallOptions): Promise<ApiResponse<T>>;
  /** Row counts of `requests` and `step_runs`, as numbers whatever the driver returns. */
  countRows(): Promise<{ requests: number; stepRuns: number }>;
  /** Stops the API and the engine, restores the environment and removes the temp dir. Safe to call twice. */
  close(): Promise<void>;
}

/** The answer of a refused call: `{ error: { code, message, details? } }`. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** A winston logger that writes nothing: tests assert on the API and the store, not on logs. */
export function createSilentLogger(): Logger {
  const logger = createLogger('error');
  logger.silent = true;
  return logger;
}

/** Starts an engine with the real (or given) pipelines and modules, and serves its API. */
export async function startTestEngine(opts: TestEngineOptions = {}): Promise<TestEngine> {
  const saved = setEnv(opts.env ?? {});
  const dir = opts.databaseUrl === undefined ? tmpDir('e2e') : undefined;
  const keys = {
    admin: `test-admin-${randomBytes(8).toString('hex')}`,
    submit: `test-submit-${randomBytes(8).toString('hex')}`,
    read: `test-read-${randomBytes(8).toString('hex')}`,
  };
  let engine: Engine | undefined;
  let server: RunningServer | undefined;
  let inProcess: ReturnType<typeof inProcessClient> | undefined;
  let closed = false;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await server?.close();
      inProcess?.close();
      await engine?.stop();
    } finally {
      restoreEnv(saved);
      if (dir) removeTmpDir(dir);
    }
  };

  try {
    engine = await Engine.create({
      cwd: REPO_ROOT,
      ...opts.engine,
      databaseUrl: opts.databaseUrl ?? `sqlite:${path.join(dir!, 'conveyor.db')}`,
      pipelinesDir: opts.pipelinesDir ?? path.join(REPO_ROOT, 'pipelines'),
      modulesDir: opts.modulesDir ?? path.join(REPO_ROOT, 'modules'),
      logger: opts.logger ?? createSilentLogger(),
    });
    await engine.start();
    const ring = new KeyRing(engine.store, `${keys.admin}:admin,${keys.submit}:submit,${keys.read}:read${opts.extraKeys ? `,${opts.extraKeys}` : ''}`);
    if (opts.listen === false) inProcess = inProcessClient(createApp(engine, ring));
    else server = await serve(engine, '127.0.0.1', 0, () => {}, { keys: ring });
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }

  const started = engine;
  const url = server?.url;
  const api = async <T = unknown>(method: string, route: string, call: ApiCallOptions = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = {};
    const key = call.key === undefined ? keys.admin : call.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let data: string | Buffer | undefined;
    if (call.raw !== undefined) data = call.raw;
    else if (call.body !== undefined) data = JSON.stringify(call.body);
    if (data !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, call.headers ?? {});
    const res = inProcess ? await inProcess.send(method, route, { accept: AXIOS_ACCEPT, ...headers }, data) : await overPort(`${url}${route}`, method, headers, data);
    const text = res.text;
    let body: unknown = text;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: the text is the body
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    return { status: res.status, body: body as T, text, headers: out };
  };

  const countRows = async (): Promise<{ requests: number; stepRuns: number }> => {
    const [r] = await started.store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM requests');
    const [s] = await started.store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM step_runs');
    return { requests: Number(r?.n), stepRuns: Number(s?.n) };
  };

  return {
    engine: started,
    get url(): string {
      if (url === undefined) throw new Error('this test engine has no port (listen: false): use api()');
      return url;
    },
    keys, api, countRows, close,
  };
}

/** The `Accept` header axios sends; the in-process client sends the same. */
const AXIOS_ACCEPT = 'application/json, text/plain, */*';

/** One call over the real port, with axios. */
async function overPort(url: string, method: string, headers: Record<string, string>, data: string | Buffer | undefined): Promise<RawAnswer> {
  const config: AxiosRequestConfig = {
    method,
    url,
    headers,
    data,
    // Send exactly these bytes: axios would otherwise re-encode a string that is not valid JSON.
    transformRequest: [(d: unknown) => d],
    validateStatus: () => true,
    // Keep the text: the tests look at exactly what a client receives.
    responseType: 'text',
    transformResponse: [(d: unknown) => d],
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
    maxRedirects: 0,
    timeout: 30_000,
  };
  const res = await axios.request<string>(config);
  return { status: res.status, headers: res.headers as RawAnswer['headers'], text: typeof res.data === 'string' ? res.data : String(res.data ?? '') };
}

function setEnv(env: Record<string, string>): Record<string, string | undefined> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  return saved;
}

function restoreEnv(saved: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}
