/**
 * The configuration compiled once (src/config.ts): every variable's default, good values,
 * each bad value with its message; the docs' environment table against the variables the
 * module reads; and a start that refuses a bad value, naming it, before it opens anything.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type Config } from '../../src/config';
import { REPO_ROOT } from '../support/engine';
import { removeTmpDir, tmpDir } from '../support/tmp';

describe('configuration (src/config.ts)', () => {
  it('gives every documented default when nothing is set', () => {
    const c = loadConfig({});
    expect(c).to.deep.equal({
      host: '127.0.0.1', port: 3000, databaseUrl: 'sqlite:./data/conveyor.db', redisUrl: undefined, apiKeys: '', jwt: undefined,
      pipelinesDir: './pipelines', modulesDir: './modules', bodyLimit: 1_048_576, queueModules: [], queueLockMs: 30_000, heartbeatMs: 10_000,
      queuePrefix: undefined, publicUrl: undefined, callbackSecret: undefined, submitRate: undefined, retentionMs: undefined,
      shutdownDeadlineMs: 10_000, sqliteSynchronous: undefined, sqliteCacheMb: undefined, sqliteCheckpoint: undefined, heapGrowingPercent: 50, logLevel: 'info', supervisor: {}, requestCallbacks: {}, admin: {},
      outboundAllow: undefined, liveIntervalMs: 2000, metrics: undefined, migrations: {},
    } satisfies Config);
  });

  it('treats an empty value as unset', () => {
    const empty = Object.fromEntries(Object.keys(CONFIG_VARIABLES).map((k) => [k, '']));
    expect(loadConfig(empty)).to.deep.equal(loadConfig({}));
  });

  const good: Array<[Record<string, string>, Partial<Config>]> = [
    [{ PORT: '8080', HOST: '0.0.0.0' }, { port: 8080, host: '0.0.0.0' }],
    [{ PORT: '0' }, { port: 0 }],
    [{ DATABASE_URL: 'mysql://u:p@127.0.0.1:3306/db', REDIS_URL: 'redis://127.0.0.1:6379' }, { databaseUrl: 'mysql://u:p@127.0.0.1:3306/db', redisUrl: 'redis://127.0.0.1:6379' }],
    [{ CONVEYOR_API_KEYS: 'ops=abcdefgh:admin' }, { apiKeys: 'ops=abcdefgh:admin' }],
    [{ CONVEYOR_PIPELINES_DIR: 'p', CONVEYOR_MODULES_DIR: 'm' }, { pipelinesDir: 'p', modulesDir: 'm' }],
    [{ CONVEYOR_BODY_LIMIT: '2048' }, { bodyLimit: 2048 }],
    [{ CONVEYOR_QUEUE_MODULES: ' a, b,,c ' }, { queueModules: ['a', 'b', 'c'] }],
    [{ CONVEYOR_QUEUE_LOCK_MS: '2000', CONVEYOR_QUEUE_PREFIX: 'test' }, { queueLockMs: 2000, queuePrefix: 'test' }],
    [{ CONVEYOR_HEARTBEAT_MS: '2000' }, { heartbeatMs: 2000 }],
    [{ CONVEYOR_PUBLIC_URL: 'https://x.example', CONVEYOR_CALLBACK_SECRET: 's' }, { publicUrl: 'https://x.example', callbackSecret: 's' }],
    [{ CONVEYOR_SUBMIT_RATE: '100/1s' }, { submitRate: '100/1s' }],
    [{ CONVEYOR_RETENTION: '30d' }, { retentionMs: 30 * 86_400_000 }],
    [{ CONVEYOR_RETENTION: '1.5h' }, { retentionMs: 5_400_000 }],
    [{ CONVEYOR_SHUTDOWN_DEADLINE_MS: '5000' }, { shutdownDeadlineMs: 5000 }],
    [{ CONVEYOR_SQLITE_SYNCHRONOUS: 'full' }, { sqliteSynchronous: 'FULL' }],
    [{ CONVEYOR_SQLITE_CACHE_MB: '256' }, { sqliteCacheMb: 256 }],
    [{ CONVEYOR_SQLITE_CHECKPOINT: 'commit' }, { sqliteCheckpoint: 'COMMIT' }],
    [{ CONVEYOR_HEAP_GROWING_PERCENT: '100' }, { heapGrowingPercent: 100 }],
    [{ CONVEYOR_HEAP_GROWING_PERCENT: '0' }, { heapGrowingPercent: 0 }],
    // The flag given to node itself is the operator's choice: the engine leaves it alone.
    [{ NODE_OPTIONS: '--max-old-space-size=512 --heap-growing-percent=30' }, { heapGrowingPercent: 0 }],
    [{ NODE_OPTIONS: '--max-old-space-size=512' }, { heapGrowingPercent: 50 }],
    [{ LOG_LEVEL: 'WARN' }, { logLevel: 'warn' }],
    [{ CONVEYOR_SWEEP_MS: '250', CONVEYOR_LEASE_GRACE_MS: '1000', CONVEYOR_QUEUE_LEASE_MS: '10000' }, { supervisor: { sweepIntervalMs: 250, leaseGraceMs: 1000, queueLeaseMs: 10_000 } }],
    [{ CONVEYOR_MAX_IN_FLIGHT: '2000' }, { supervisor: { maxInFlight: 2000 } }],
    [{ CONVEYOR_MAX_IN_FLIGHT: '0' }, { supervisor: { maxInFlight: 0 } }],
    [{ CONVEYOR_MAX_BACKLOG: '500' }, { supervisor: { maxBacklog: 500 } }],
    [{ CONVEYOR_MAX_BACKLOG: '0' }, { supervisor: { maxBacklog: 0 } }],
    [{ CONVEYOR_REQUEST_CALLBACK_SECRET: 'k', CONVEYOR_REQUEST_CALLBACK_ATTEMPTS: '3', CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS: '10' }, { requestCallbacks: { secret: 'k', attempts: 3, backoffMs: 10 } }],
    [
      { CONVEYOR_ADMIN_WEBHOOK: 'http://127.0.0.1:9/a', CONVEYOR_ADMIN_MODULE: 'admin-alert', CONVEYOR_ADMIN_RETRIES: '0', CONVEYOR_ADMIN_BACKOFF_MS: '10', CONVEYOR_ADMIN_TIMEOUT_MS: '3000', CONVEYOR_ADMIN_SWEEP_MS: '20' },
      { admin: { webhookUrl: 'http://127.0.0.1:9/a', module: 'admin-alert', attempts: 0, backoffMs: 10, timeoutMs: 3000, sweepMs: 20 } },
    ],
    [{ CONVEYOR_OUTBOUND_ALLOW: '127.0.0.0/8' }, { outboundAllow: '127.0.0.0/8' }],
    [{ CONVEYOR_LIVE_INTERVAL_MS: '150' }, { liveIntervalMs: 150 }],
    [{ CONVEYOR_METRICS_PORT: '0' }, { metrics: { host: '127.0.0.1', port: 0 } }],
    [
      { CONVEYOR_MIGRATION_BATCH: '10', CONVEYOR_MIGRATION_LEASE_MS: '1500', CONVEYOR_MIGRATION_POLL_MS: '100', CONVEYOR_MIGRATION_PAUSE_MS: '0' },
      { migrations: { batchSize: 10, leaseMs: 1500, pollMs: 100, pauseMs: 0 } },
    ],
    [{ CONVEYOR_METRICS_PORT: '9100', CONVEYOR_METRICS_HOST: '0.0.0.0' }, { metrics: { host: '0.0.0.0', port: 9100 } }],
    [
      { CONVEYOR_JWT_SECRET: 'x'.repeat(32), CONVEYOR_JWT_ISSUER: 'iss', CONVEYOR_JWT_AUDIENCE: 'aud', CONVEYOR_JWT_ROLES_CLAIM: 'groups', CONVEYOR_JWT_JWKS_COOLDOWN_MS: '0' },
      { jwt: { secret: 'x'.repeat(32), jwksUrl: undefined, issuer: 'iss', audience: 'aud', rolesClaim: 'groups', jwksCooldownMs: 0 } },
    ],
    [{ CONVEYOR_JWT_JWKS_URL: 'https://idp.example/jwks' }, { jwt: { secret: undefined, jwksUrl: 'https://idp.example/jwks', issuer: undefined, audience: undefined, rolesClaim: 'roles', jwksCooldownMs: 30_000 } }],
  ];
  for (const [env, expected] of good) {
    it(`reads ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`, () => {
      expect(loadConfig(env)).to.deep.include(expected);
    });
  }

  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT must be an integer 0-65535, got "abc"'],
    [{ PORT: '70000' }, 'PORT must be an integer 0-65535, got "70000"'],
    [{ PORT: '80.5' }, 'PORT must be an integer 0-65535, got "80.5"'],
    [{ CONVEYOR_BODY_LIMIT: '1mb' }, 'CONVEYOR_BODY_LIMIT must be an integer 1-2147483647, got "1mb"'],
    [{ CONVEYOR_BODY_LIMIT: '0' }, 'CONVEYOR_BODY_LIMIT must be an integer 1-2147483647, got "0"'],
    [{ CONVEYOR_QUEUE_LOCK_MS: '-1' }, 'CONVEYOR_QUEUE_LOCK_MS must be an integer 1-2147483647, got "-1"'],
    [{ CONVEYOR_HEARTBEAT_MS: '50' }, 'CONVEYOR_HEARTBEAT_MS must be an integer 100-2147483647, got "50"'],
    [{ CONVEYOR_SHUTDOWN_DEADLINE_MS: 'soon' }, 'CONVEYOR_SHUTDOWN_DEADLINE_MS must be an integer 0-2147483647, got "soon"'],
    [{ CONVEYOR_RETENTION: '30' }, 'CONVEYOR_RETENTION must be a duration such as "30d" (got "30")'],
    [{ CONVEYOR_RETENTION: '0d' }, 'CONVEYOR_RETENTION must be a duration such as "30d" (got "0d")'],
    [{ CONVEYOR_SQLITE_SYNCHRONOUS: 'OFF' }, 'CONVEYOR_SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "OFF"'],
    [{ CONVEYOR_SQLITE_CACHE_MB: '0' }, 'CONVEYOR_SQLITE_CACHE_MB must be an integer 1-65536, got "0"'],
    [{ CONVEYOR_HEAP_GROWING_PERCENT: '-5' }, 'CONVEYOR_HEAP_GROWING_PERCENT must be an integer 0-1000, got "-5"'],
    [{ CONVEYOR_HEAP_GROWING_PERCENT: '1.5x' }, 'CONVEYOR_HEAP_GROWING_PERCENT must be an integer 0-1000, got "1.5x"'],
    [{ CONVEYOR_SQLITE_CHECKPOINT: 'never' }, 'CONVEYOR_SQLITE_CHECKPOINT must be THREAD or COMMIT, got "never"'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be ERROR or WARN or INFO or HTTP or VERBOSE or DEBUG or SILLY, got "loud"'],
    [{ CONVEYOR_SWEEP_MS: '0' }, 'CONVEYOR_SWEEP_MS must be a number of milliseconds above 0, got "0"'],
    [{ CONVEYOR_MAX_IN_FLIGHT: 'lots' }, 'CONVEYOR_MAX_IN_FLIGHT must be an integer 0-2147483647, got "lots"'],
    [{ CONVEYOR_MAX_IN_FLIGHT: '-1' }, 'CONVEYOR_MAX_IN_FLIGHT must be an integer 0-2147483647, got "-1"'],
    [{ CONVEYOR_MAX_BACKLOG: 'some' }, 'CONVEYOR_MAX_BACKLOG must be an integer 0-2147483647, got "some"'],
    [{ CONVEYOR_LEASE_GRACE_MS: 'x' }, 'CONVEYOR_LEASE_GRACE_MS must be a number of milliseconds above 0, got "x"'],
    [{ CONVEYOR_QUEUE_LEASE_MS: '-5' }, 'CONVEYOR_QUEUE_LEASE_MS must be a number of milliseconds above 0, got "-5"'],
    [{ CONVEYOR_REQUEST_CALLBACK_ATTEMPTS: '0' }, 'CONVEYOR_REQUEST_CALLBACK_ATTEMPTS must be an integer 1-2147483647, got "0"'],
    [{ CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS: 'never' }, 'CONVEYOR_REQUEST_CALLBACK_BACKOFF_MS must be a number of milliseconds above 0, got "never"'],
    [{ CONVEYOR_ADMIN_RETRIES: 'many' }, 'CONVEYOR_ADMIN_RETRIES must be an integer 0-2147483647, got "many"'],
    [{ CONVEYOR_ADMIN_BACKOFF_MS: '1.5' }, 'CONVEYOR_ADMIN_BACKOFF_MS must be an integer 0-2147483647, got "1.5"'],
    [{ CONVEYOR_ADMIN_TIMEOUT_MS: '-1' }, 'CONVEYOR_ADMIN_TIMEOUT_MS must be an integer 0-2147483647, got "-1"'],
    [{ CONVEYOR_ADMIN_SWEEP_MS: 'x' }, 'CONVEYOR_ADMIN_SWEEP_MS must be an integer 0-2147483647, got "x"'],
    [{ CONVEYOR_LIVE_INTERVAL_MS: '0' }, 'CONVEYOR_LIVE_INTERVAL_MS must be a number of milliseconds above 0, got "0"'],
    [{ CONVEYOR_METRICS_PORT: 'nine' }, 'CONVEYOR_METRICS_PORT must be an integer 0-65535, got "nine"'],
    [{ CONVEYOR_MIGRATION_BATCH: 'lots' }, 'CONVEYOR_MIGRATION_BATCH must be a number of 0 or more, got "lots"'],
    [{ CONVEYOR_MIGRATION_PAUSE_MS: '-1' }, 'CONVEYOR_MIGRATION_PAUSE_MS must be a number of 0 or more, got "-1"'],
    [{ CONVEYOR_JWT_SECRET: 'short' }, 'CONVEYOR_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit secret)'],
    [{ CONVEYOR_JWT_SECRET: 'x'.repeat(32), CONVEYOR_JWT_JWKS_URL: 'https://a/jwks' }, 'set CONVEYOR_JWT_SECRET or CONVEYOR_JWT_JWKS_URL, not both'],
    [{ CONVEYOR_JWT_JWKS_URL: 'ftp://a/jwks' }, 'CONVEYOR_JWT_JWKS_URL must be an http(s) URL'],
    [{ CONVEYOR_JWT_JWKS_COOLDOWN_MS: 'x' }, 'CONVEYOR_JWT_JWKS_COOLDOWN_MS must be an integer 0-2147483647, got "x"'],
  ];
  for (const [env, message] of bad) {
    it(`refuses ${Object.entries(env).map(([k, v]) => `${k}=${v.length > 20 ? `${v.slice(0, 8)}…` : v}`).join(' ')}`, () => {
      expect(() => loadConfig(env)).to.throw(ConfigError, message).with.property('message', message);
    });
  }

  describe('docs/reference.md "The engine" table', () => {
    /** Engine variables read where they are used, not compiled at start (src/config.ts `processEnv`), or by a module. */
    const READ_WHEN_USED = [
      'AMQP_URL', 'NATS_URL', 'CONVEYOR_SECRET_<NAME>', '<NAME>', 'CONVEYOR_ADMIN_EMAIL', 'CONVEYOR_TRACING',
      'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_SERVICE_NAME', 'OTEL_TRACES_SAMPLER',
    ];
    const rows = (): Array<{ names: string[]; defaults: string }> => {
      const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'reference.md'), 'utf8');
      const section = doc.slice(doc.indexOf('### The engine'), doc.indexOf('### The command-line tool'));
      return section.split('\n').filter((l) => /^\| `/.test(l)).map((l) => {
        const cells = l.split(' | ');
        return { names: [...cells[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!), defaults: cells[cells.length - 1]!.replace(/ \|$/, '') };
      });
    };

    it('lists every variable the config reads, and no other engine variable', () => {
      const documented = rows().flatMap((r) => r.names);
      expect(documented.filter((n) => !READ_WHEN_USED.includes(n)).sort()).to.deep.equal(Object.keys(CONFIG_VARIABLES).sort());
    });

    it('gives the defaults the config applies', () => {
      for (const { names, defaults } of rows()) {
        const parts = defaults.split(', ');
        names.forEach((name, i) => {
          const dflt = CONFIG_VARIABLES[name];
          if (!dflt) return;
          const cell = parts.length === names.length ? parts[i]! : defaults;
          expect(cell, `${name}'s default`).to.include(`\`${dflt}\``);
        });
      }
    });
  });

  describe('a start with a bad value', function () {
    this.timeout(60_000);
    let dir: string;
    before(() => {
      dir = tmpDir('config-start');
    });
    after(() => removeTmpDir(dir));

    it('exits 1 naming the variable, before it opens the database', async () => {
      const db = path.join(dir, 'never.db');
      const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
        execFile(process.execPath, [path.join(REPO_ROOT, 'bin', 'conveyor.js'), 'start'], {
          cwd: REPO_ROOT, timeout: 50_000,
          env: { ...process.env, PORT: 'abc', DATABASE_URL: `sqlite:${db}`, REDIS_URL: '', CONVEYOR_API_KEYS: 'config-test-key:admin' },
        }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
      });
      expect(r.code).to.equal(1);
      expect(r.stderr.trim()).to.equal('conveyor: PORT must be an integer 0-65535, got "abc"');
      expect(r.stdout).to.equal('');
      expect(existsSync(db), 'the database was not created').to.equal(false);
    });
  });
});
