/**
 * Shared plumbing of the commands: argument parsing, output (`--json`), exit codes, and a
 * small client for the HTTP API (`CONVEYOR_URL`, `CONVEYOR_API_KEY`).
 */

import { ErrorCodes } from '../../errors';

/**
 * The same in every command: 0 done (a request: completed); 1 failed (refused, unreachable,
 * not found, invalid; a request: error_stop, stopped, or not ended); 2 the command line is wrong.
 */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

/** The exit code a request's status means: 0 only when it completed. */
export const requestExit = (status: string): number => (status === 'completed' ? EXIT.OK : EXIT.FAILED);

/** The API the client commands call: `--url`, else `CONVEYOR_URL`, else `http://HOST:PORT`. */
export function clientUrl(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}): string {
  const url = flags.url ?? env.CONVEYOR_URL ?? `http://${env.HOST || '127.0.0.1'}:${env.PORT || 3000}`;
  return url.replace(/\/+$/, '');
}

/** The API key the client commands send: `--key`, else `CONVEYOR_API_KEY`, else its alias `CONVEYOR_KEY`. */
export function clientKey(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}): string | undefined {
  return flags.key || env.CONVEYOR_API_KEY || env.CONVEYOR_KEY || undefined;
}

/** The option lines every client command shares, for its usage text. */
export const CLIENT_OPTIONS = `  --url <url>                 the API (default CONVEYOR_URL, else http://HOST:PORT, i.e. http://127.0.0.1:3000)
  --key <key>                 the API key (default CONVEYOR_API_KEY, or its alias CONVEYOR_KEY)`;

/** The valued options every client command shares. */
export const CLIENT_FLAGS = ['url', 'key'] as const;

/** Where a command writes; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  env: process.env,
};

/** A command line problem: printed with the command's usage, exit 2. */
export class UsageError extends Error {}

/** A failure to report: printed, exit 1. */
export class CommandError extends Error {}

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string>;
  /** Boolean switches that were given (`--json`, `--follow`, …). */
  switches: Set<string>;
}

/**
 * Parses `--name value`, `--name=value` and the given boolean `switches`; refuses an unknown
 * option, so a typo is an error and not a silently ignored filter.
 */
export function parseArgs(args: string[], valued: readonly string[], switches: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { positional: [], flags: {}, switches: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--') || a === '--') {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq === -1 ? undefined : eq);
    if (switches.includes(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      out.switches.add(name);
    } else if (valued.includes(name)) {
      const value = eq === -1 ? args[++i] : a.slice(eq + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      out.flags[name] = value;
    } else throw new UsageError(`unknown option --${name}`);
  }
  return out;
}

/** Takes every `--name value` / `--name=value` of a repeatable option out of `args`. */
export function takeRepeated(args: string[], name: string): { values: string[]; rest: string[] } {
  const values: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      values.push(v);
    } else if (a.startsWith(`--${name}=`)) values.push(a.slice(name.length + 3));
    else rest.push(a);
  }
  return { values, rest };
}

export function stepPairs(values: string[], option: string, check?: (value: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const [k, val] = [v.slice(0, eq), v.slice(eq + 1)];
    if (eq < 1 || !val || (check && !check(val))) throw new UsageError(`--${option} ${v}: expected ${option === 'map' ? 'OLD=NEW' : 'STEP=keep|rekey'}`);
    out[k] = val;
  }
  return out;
}

/** What the API answered. */
export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

/** A client for the HTTP API. */
export class ApiClient {
  readonly base: string;
  private readonly key: string | undefined;

  constructor(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}) {
    this.base = clientUrl(env, flags);
    this.key = clientKey(env, flags);
  }

  async call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer<T>> {
    if (!this.key) throw new CommandError('no API key: set CONVEYOR_API_KEY (or CONVEYOR_KEY, or pass --key)');
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CommandError(`cannot reach ${this.base} (${cause}); is the engine running? (CONVEYOR_URL)`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T };
  }

  /** Like {@link call}, but any answer other than 2xx is a {@link CommandError} that quotes the API's error. */
  async expectOk<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiAnswer<T>> {
    const res = await this.call<T>(method, path, body, headers);
    if (res.status >= 200 && res.status < 300) return res;
    throw new CommandError(describeFailure(method, path, res));
  }
}

/** `POST /api/requests/x/resume answered 409 CONVEYOR_ERR_NOT_APPLICABLE: cannot resume …` */
export function describeFailure(method: string, path: string, res: ApiAnswer): string {
  const e = (res.body as { error?: { code?: string; message?: string } } | null)?.error;
  const what = e ? `${e.code ?? ''}: ${e.message ?? ''}` : typeof res.body === 'string' ? res.body.slice(0, 300) : JSON.stringify(res.body);
  let hint = '';
  if (res.status === 404 && e?.code === ErrorCodes.NOT_FOUND) hint = ' (this server does not have that route: is it an older version?)';
  if (res.status === 401) hint = ' (check CONVEYOR_API_KEY or --key)';
  return `${method} ${path} answered ${res.status} ${what}${hint}`;
}

/** Runs a command body, turning its errors into messages and exit codes. */
export async function runCommand(io: Io, usage: string, body: () => Promise<number | void>): Promise<number> {
  try {
    return (await body()) ?? EXIT.OK;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`conveyor: ${e.message}\n\n${usage}`);
      return EXIT.USAGE;
    }
    io.err(`conveyor: ${(e as Error).message}`);
    return EXIT.FAILED;
  }
}

/** Pads a table's columns; the last column is left as it is. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}
