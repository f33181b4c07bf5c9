/**
 * The engine's configuration, compiled once. {@link loadConfig} reads the environment at start,
 * checks every value and returns one typed {@link Config}; the composition root
 * (`src/engine.ts`) and the CLI (`src/cli/`) pass it down. A wrong value stops the start with
 * an error naming the variable, before anything is opened or changed.
 *
 * This module and `src/cli/` are the only places in `src/` that read `process.env` (eslint
 * `no-restricted-properties` keeps it so). The variables' names and defaults are a contract:
 * docs/reference.md#environment-variables lists them, and test/unit/config.test.ts checks the
 * table against {@link CONFIG_VARIABLES}.
 */
import { namesHeapGrowingFlag } from './heap';

/** The environment as `process.env` gives it. */
export type Env = Readonly<Record<string, string | undefined>>;

/** How JWT bearer tokens are verified (`CONVEYOR_JWT_*`, docs/people.md#actors), read once from the environment. */
export interface JwtConfig {
  /** HS256 shared secret (at least 32 characters). */
  secret?: string;
  /** Where the RS256/ES256 public keys are (a JWKS document). */
  jwksUrl?: string;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required `aud`, when set. */
  audience?: string;
  /** The claim that holds the actor's roles. @default 'roles' */
  rolesClaim: string;
  /** The least time between two fetches of the JWKS (an unknown `kid` fetches again after it). @default 30000 */
  jwksCooldownMs: number;
}

/** `CONVEYOR_ADMIN_*`: the `error_stop` alert's channels and timings; unset numbers keep the notifier's defaults. */
export interface AdminAlertConfig {
  /** `CONVEYOR_ADMIN_WEBHOOK`. @default none */
  webhookUrl?: string;
  /** `CONVEYOR_ADMIN_MODULE`. @default none */
  module?: string;
  /** Tries per channel (`CONVEYOR_ADMIN_RETRIES`). @default 5 */
  attempts?: number;
  /** Wait before the second try, doubled after each failure (`CONVEYOR_ADMIN_BACKOFF_MS`). @default 1000 */
  backoffMs?: number;
  /** Time limit of one try (`CONVEYOR_ADMIN_TIMEOUT_MS`). @default 10000 */
  timeoutMs?: number;
  /** How often due alerts are looked for (`CONVEYOR_ADMIN_SWEEP_MS`). @default 1000 */
  sweepMs?: number;
}

/** Every setting of an engine process, checked. */
export interface Config {
  /** `HOST`, `PORT`: the HTTP listen address. */
  host: string;
  port: number;
  /** `DATABASE_URL`. */
  databaseUrl: string;
  /** `REDIS_URL`: distributed mode when set. */
  redisUrl: string | undefined;
  /** `CONVEYOR_API_KEYS` as written (`name=key:role+role,…`); '' when unset. */
  apiKeys: string;
  /** `CONVEYOR_JWT_*`; undefined when neither a secret nor a JWKS URL is set. */
  jwt: JwtConfig | undefined;
  /** `CONVEYOR_PIPELINES_DIR`, `CONVEYOR_MODULES_DIR`. */
  pipelinesDir: string;
  modulesDir: string;
  /** `CONVEYOR_BODY_LIMIT`: the largest request body, in bytes. */
  bodyLimit: number;
  /** `CONVEYOR_QUEUE_MODULES`. */
  queueModules: string[];
  /** `CONVEYOR_QUEUE_LOCK_MS`. */
  queueLockMs: number;
  /** `CONVEYOR_HEARTBEAT_MS`: how often a distributed engine says it is alive (a key in Redis that expires after three beats). */
  heartbeatMs: number;
  /** `CONVEYOR_QUEUE_PREFIX`; undefined: bull's `bull`. */
  queuePrefix: string | undefined;
  /** `CONVEYOR_PUBLIC_URL`; undefined: `http://HOST:PORT`. */
  publicUrl: string | undefined;
  /** `CONVEYOR_CALLBACK_SECRET`; undefined: generated once, kept in the database. */
  callbackSecret: string | undefined;
  /** `CONVEYOR_SUBMIT_RATE` as written (`<max>/<duration>`). */
  submitRate: string | undefined;
  /** `CONVEYOR_RETENTION` in ms; undefined: keep everything. */
  retentionMs: number | undefined;
  /** `CONVEYOR_SHUTDOWN_DEADLINE_MS`. */
  shutdownDeadlineMs: number;
  /** `CONVEYOR_SQLITE_SYNCHRONOUS`; undefined: the URL's, else `NORMAL`. */
  sqliteSynchronous: 'NORMAL' | 'FULL' | undefined;
  /** `CONVEYOR_SQLITE_CACHE_MB`; undefined: 32. */
  sqliteCacheMb: number | undefined;
  /** `CONVEYOR_SQLITE_CHECKPOINT`; undefined: `THREAD`. */
  sqliteCheckpoint: 'THREAD' | 'COMMIT' | undefined;
  /**
   * `CONVEYOR_HEAP_GROWING_PERCENT`: how far V8 lets this process's heap grow past what the
   * last full collection kept, in percent (`--heap-growing-percent`); 0 leaves V8's own choice,
   * as does the flag given to node itself (`NODE_OPTIONS` or the command line).
   */
  heapGrowingPercent: number;
  /** `LOG_LEVEL`. */
  logLevel: string;
  /** `CONVEYOR_SWEEP_MS`, `CONVEYOR_LEASE_GRACE_MS`, `CONVEYOR_QUEUE_LEASE_MS`, `CONVEYOR_MAX_IN_FLIGHT`, `CONVEYOR_MAX_BACKLOG`; unset keeps the supervisor's defaults. */
  supervisor: { sweepIntervalMs?: number; leaseGraceMs?: number; queueLeaseMs?: number; maxInFlight?: number; maxBacklog?: number };
  /** `CONVEYOR_REQUEST_CALLBACK_*`; unset keeps the sender's defaults. */
  requestCallbacks: { secret?: string; attempts?: number; backoffMs?: number };
  /** `CONVEYOR_ADMIN_*`. */
  admin: AdminAlertConfig;
  /** `CONVEYOR_OUTBOUND_ALLOW` as written. */
  outboundAllow: string | undefined;
  /** `CONVEYOR_LIVE_INTERVAL_MS`. */
  liveIntervalMs: number;
  /** `CONVEYOR_METRICS_PORT`, `CONVEYOR_METRICS_HOST`; undefined when no port is set. */
  metrics: { host: string; port: number } | undefined;
  /** `CONVEYOR_MIGRATION_BATCH`, `_LEASE_MS`, `_POLL_MS`, `_PAUSE_MS`; unset keeps the runner's defaults. */
  migrations: { batchSize?: number; leaseMs?: number; pollMs?: number; pauseMs?: number };
}

/** A wrong value; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * The variables {@link loadConfig} reads, with their documented defaults (as
 * docs/reference.md writes them). test/unit/config.test.ts checks the docs against this list.
 */
export const CONFIG_VARIABLES: Readonly<Record<string, string>> = {
  PORT: '3000',
  HOST: '127.0.0.1',
  DATABASE_URL: 'sqlite:./data/conveyor.db',
  REDIS_URL: '',
  CONVEYOR_API_KEYS: '',
  CONVEYOR_JWT_SECRET: '',
  CONVEYOR_JWT_JWKS_URL: '',
  CONVEYOR_JWT_ISSUER: '',
  CONVEYOR_JWT_AUDIENCE: '',
  CONVEYOR_JWT_ROLES_CLAIM: 'roles',
  CONVEYOR_JWT_JWKS_COOLDOWN_MS: '30000',
  CONVEYOR_PIPELINES_DIR: './pipelines',
  CONVEYOR_MODULES_DIR: './modules',
  CONVEYOR_BODY_LIMIT: '1048576',
  CONVEYOR_QUEUE_MODULES: '',
  CONVEYOR_QUEUE_LOCK_MS: '30000',
  CONVEYOR_HEARTBEAT_MS: '10000',
  CONVEYOR_QUEUE_PREFIX: 'bull',
  CONVEYOR_PUBLIC_URL: '',
  CONVEYOR_CALLBACK_SECRET: '',
  CONVEYOR_SUBMIT_RATE: '',
  CONVEYOR_RETENTION: '',
  CONVEYOR_SHUTDOWN_DEADLINE_MS: '10000',
  CONVEYOR_SQLITE_SYNCHRONOUS: 'NORMAL',
  CONVEYOR_SQLITE_CACHE_MB: '32',
  CONVEYOR_SQLITE_CHECKPOINT: 'THREAD',
  CONVEYOR_HEAP_GROWING_PERCENT: '50',
  LOG_LEVEL: 'info',
  CONVEYOR_QUEUE_LEASE_MS: '600000',
  CONVEYOR_LEASE_GRACE_MS: '10000',
  CONVEYOR_SWEEP_MS: '1000',
  CONVEYOR_MAX_IN_FLIGHT: '4000',
  CONVEYOR_MAX_BACKLOG: '',
  CONVEYOR_REQUEST_CALLBACK_SECRET: '',
  CONVEYOR_REQUEST_CALLBACK_ATTEMPTS: '8',
  CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS: '1000',
  CONVEYOR_ADMIN_WEBHOOK: '',
  CONVEYOR_ADMIN_MODULE: '',
  CONVEYOR_ADMIN_RETRIES: '5',
  CONVEYOR_ADMIN_BACKOFF_MS: '1000',
  CONVEYOR_ADMIN_TIMEOUT_MS: '10000',
  CONVEYOR_ADMIN_SWEEP_MS: '1000',
  CONVEYOR_OUTBOUND_ALLOW: '',
  CONVEYOR_LIVE_INTERVAL_MS: '2000',
  CONVEYOR_METRICS_PORT: '',
  CONVEYOR_METRICS_HOST: '127.0.0.1',
  CONVEYOR_MIGRATION_BATCH: '200',
  CONVEYOR_MIGRATION_LEASE_MS: '15000',
  CONVEYOR_MIGRATION_POLL_MS: '1000',
  CONVEYOR_MIGRATION_PAUSE_MS: '0',
};

/**
 * The process environment, for the variables a definition names itself and that are read
 * when used, not at start: `${VAR}` in broker URLs and `*.module.json` files,
 * `{{ secrets.NAME }}` in templates, and `OTEL_*` for the tracing switch. Engine settings
 * come from {@link loadConfig}, never from here.
 */
export function processEnv(): Env {
  return process.env;
}

/** `a, b,,c` → `['a', 'b', 'c']`. */
export const parseList = (s: string | undefined): string[] => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

/** Reads variables of one environment, each check naming its variable when it fails. */
class Reader {
  constructor(private readonly env: Env) {}

  /** The value, or undefined when unset or empty. */
  str(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  /** An integer in [min, max]; `fallback` when unset. */
  int<T extends number | undefined>(name: string, min: number, max: number, fallback: T): number | T {
    const raw = this.str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw.trim());
    if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer ${min}-${max}, got "${raw}"`);
    return n;
  }

  /** A number of milliseconds above 0 (fractions allowed); `fallback` when unset. */
  ms<T extends number | undefined>(name: string, fallback: T): number | T {
    const raw = this.str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new ConfigError(`${name} must be a number of milliseconds above 0, got "${raw}"`);
    return n;
  }

  /** A number of 0 or more; undefined when unset. */
  atLeastZero(name: string): number | undefined {
    const raw = this.str(name);
    if (raw === undefined) return undefined;
    const n = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new ConfigError(`${name} must be a number of 0 or more, got "${raw}"`);
    return n;
  }

  /** One of `choices`, compared without case; undefined when unset. */
  oneOf<C extends string>(name: string, choices: readonly C[]): C | undefined {
    const raw = this.str(name);
    if (raw === undefined) return undefined;
    const v = raw.trim().toUpperCase();
    if ((choices as readonly string[]).includes(v)) return v as C;
    throw new ConfigError(`${name} must be ${choices.join(' or ')}, got "${raw}"`);
  }
}

const MAX_INT = 2_147_483_647;

/** `CONVEYOR_JWT_*`: undefined when neither a secret nor a JWKS URL is set. */
function jwtConfig(r: Reader): JwtConfig | undefined {
  const secret = r.str('CONVEYOR_JWT_SECRET');
  const jwksUrl = r.str('CONVEYOR_JWT_JWKS_URL');
  const jwksCooldownMs = r.int('CONVEYOR_JWT_JWKS_COOLDOWN_MS', 0, MAX_INT, 30_000);
  if (!secret && !jwksUrl) return undefined;
  if (secret && jwksUrl) throw new ConfigError('set CONVEYOR_JWT_SECRET or CONVEYOR_JWT_JWKS_URL, not both');
  if (secret && secret.length < 32) throw new ConfigError('CONVEYOR_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit secret)');
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) throw new ConfigError('CONVEYOR_JWT_JWKS_URL must be an http(s) URL');
  return {
    secret, jwksUrl,
    issuer: r.str('CONVEYOR_JWT_ISSUER'),
    audience: r.str('CONVEYOR_JWT_AUDIENCE'),
    rolesClaim: r.str('CONVEYOR_JWT_ROLES_CLAIM') ?? 'roles',
    jwksCooldownMs,
  };
}

function retentionMs(r: Reader): number | undefined {
  const raw = r.str('CONVEYOR_RETENTION');
  if (raw === undefined) return undefined;
  // As pipelines write durations (src/pipeline/duration.ts): a unit is required.
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw);
  const ms = m ? Math.round(Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']) : 0;
  if (!(ms > 0)) throw new ConfigError(`CONVEYOR_RETENTION must be a duration such as "30d" (got "${raw}")`);
  return ms;
}

function metricsListen(r: Reader): Config['metrics'] {
  const port = r.int('CONVEYOR_METRICS_PORT', 0, 65535, undefined);
  return port === undefined ? undefined : { host: r.str('CONVEYOR_METRICS_HOST') ?? '127.0.0.1', port };
}

/** Keeps only the keys whose value is set, so spreading the result keeps other defaults. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The timings and channels that tune other components; unset values keep their defaults. */
function tunings(r: Reader): Pick<Config, 'supervisor' | 'requestCallbacks' | 'admin' | 'migrations'> {
  return {
    migrations: defined({
      batchSize: r.atLeastZero('CONVEYOR_MIGRATION_BATCH'),
      leaseMs: r.atLeastZero('CONVEYOR_MIGRATION_LEASE_MS'),
      pollMs: r.atLeastZero('CONVEYOR_MIGRATION_POLL_MS'),
      pauseMs: r.atLeastZero('CONVEYOR_MIGRATION_PAUSE_MS'),
    }),
    supervisor: defined({
      sweepIntervalMs: r.ms('CONVEYOR_SWEEP_MS', undefined),
      leaseGraceMs: r.ms('CONVEYOR_LEASE_GRACE_MS', undefined),
      queueLeaseMs: r.ms('CONVEYOR_QUEUE_LEASE_MS', undefined),
      maxInFlight: r.int('CONVEYOR_MAX_IN_FLIGHT', 0, MAX_INT, undefined),
      maxBacklog: r.int('CONVEYOR_MAX_BACKLOG', 0, MAX_INT, undefined),
    }),
    requestCallbacks: defined({
      secret: r.str('CONVEYOR_REQUEST_CALLBACK_SECRET'),
      attempts: r.int('CONVEYOR_REQUEST_CALLBACK_ATTEMPTS', 1, MAX_INT, undefined),
      backoffMs: r.ms('CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS', undefined),
    }),
    admin: defined({
      webhookUrl: r.str('CONVEYOR_ADMIN_WEBHOOK'),
      module: r.str('CONVEYOR_ADMIN_MODULE'),
      attempts: r.int('CONVEYOR_ADMIN_RETRIES', 0, MAX_INT, undefined),
      backoffMs: r.int('CONVEYOR_ADMIN_BACKOFF_MS', 0, MAX_INT, undefined),
      timeoutMs: r.int('CONVEYOR_ADMIN_TIMEOUT_MS', 0, MAX_INT, undefined),
      sweepMs: r.int('CONVEYOR_ADMIN_SWEEP_MS', 0, MAX_INT, undefined),
    }),
  };
}

/** `CONVEYOR_HEAP_GROWING_PERCENT`, checked; 0 when `NODE_OPTIONS` already sets the flag (the operator's choice wins). */
function heapGrowingPercent(r: Reader, env: Env): number {
  const percent = r.int('CONVEYOR_HEAP_GROWING_PERCENT', 0, 1000, 50);
  return namesHeapGrowingFlag(env.NODE_OPTIONS ?? '') ? 0 : percent;
}

/**
 * Reads and checks the configuration. Throws a {@link ConfigError} naming the variable on the
 * first wrong value.
 */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  return {
    host: r.str('HOST') ?? '127.0.0.1',
    port: r.int('PORT', 0, 65535, 3000),
    databaseUrl: r.str('DATABASE_URL') ?? CONFIG_VARIABLES.DATABASE_URL!,
    redisUrl: r.str('REDIS_URL'),
    apiKeys: r.str('CONVEYOR_API_KEYS') ?? '',
    jwt: jwtConfig(r),
    pipelinesDir: r.str('CONVEYOR_PIPELINES_DIR') ?? './pipelines',
    modulesDir: r.str('CONVEYOR_MODULES_DIR') ?? './modules',
    bodyLimit: r.int('CONVEYOR_BODY_LIMIT', 1, MAX_INT, 1024 * 1024),
    queueModules: parseList(r.str('CONVEYOR_QUEUE_MODULES')),
    queueLockMs: r.int('CONVEYOR_QUEUE_LOCK_MS', 1, MAX_INT, 30_000),
    heartbeatMs: r.int('CONVEYOR_HEARTBEAT_MS', 100, MAX_INT, 10_000),
    queuePrefix: r.str('CONVEYOR_QUEUE_PREFIX'),
    publicUrl: r.str('CONVEYOR_PUBLIC_URL'),
    callbackSecret: r.str('CONVEYOR_CALLBACK_SECRET'),
    submitRate: r.str('CONVEYOR_SUBMIT_RATE'),
    retentionMs: retentionMs(r),
    shutdownDeadlineMs: r.int('CONVEYOR_SHUTDOWN_DEADLINE_MS', 0, MAX_INT, 10_000),
    sqliteSynchronous: r.oneOf('CONVEYOR_SQLITE_SYNCHRONOUS', ['NORMAL', 'FULL'] as const),
    sqliteCacheMb: r.int('CONVEYOR_SQLITE_CACHE_MB', 1, 65_536, undefined),
    sqliteCheckpoint: r.oneOf('CONVEYOR_SQLITE_CHECKPOINT', ['THREAD', 'COMMIT'] as const),
    heapGrowingPercent: heapGrowingPercent(r, env),
    logLevel: r.oneOf('LOG_LEVEL', ['ERROR', 'WARN', 'INFO', 'HTTP', 'VERBOSE', 'DEBUG', 'SILLY'] as const)?.toLowerCase() ?? 'info',
    ...tunings(r),
    outboundAllow: r.str('CONVEYOR_OUTBOUND_ALLOW'),
    liveIntervalMs: r.ms('CONVEYOR_LIVE_INTERVAL_MS', 2000),
    metrics: metricsListen(r),
  };
}
