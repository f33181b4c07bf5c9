/**
 * Where the test MariaDB, Redis, RabbitMQ and NATS (JetStream) live.
 *
 * Lookup order for each URL: the environment (`TEST_MYSQL_URL`, `TEST_REDIS_URL`,
 * `TEST_AMQP_URL`, `TEST_NATS_URL`), then
 * `.tmp/services.env` as written by `scripts/services.sh`, then the local defaults. An
 * empty value (`TEST_MYSQL_URL=`) means "not available on this machine".
 *
 * Tests that need a service call {@link requireMysql} / {@link requireRedis} /
 * {@link requireAmqp} / {@link requireNats} in a `before`
 * hook: these fail loudly instead of skipping, so a missing service is never mistaken for a
 * passing suite.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { connect as amqpConnect } from 'amqplib';
import { connect as natsConnect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createConnection } from 'mysql2/promise';

/** Default MariaDB URL when neither the environment nor `.tmp/services.env` names one. */
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';
/** Default Redis URL when neither the environment nor `.tmp/services.env` names one. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Default RabbitMQ URL when neither the environment nor `.tmp/services.env` names one. */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** Default NATS URL when neither the environment nor `.tmp/services.env` names one. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** The file `scripts/services.sh` writes its connection settings to. */
export const SERVICES_ENV_FILE = path.resolve(__dirname, '..', '..', '.tmp', 'services.env');

const CONNECT_TIMEOUT_MS = 3000;
const HINT = 'Start the test services with `bash scripts/services.sh` (it writes .tmp/services.env).';

type ServiceKey = 'TEST_MYSQL_URL' | 'TEST_REDIS_URL' | 'TEST_AMQP_URL' | 'TEST_NATS_URL';

/** The MariaDB/MySQL URL for tests, or `undefined` when explicitly disabled. */
export function mysqlUrl(): string | undefined {
  return resolveUrl('TEST_MYSQL_URL', DEFAULT_MYSQL_URL);
}

/** The Redis URL for tests, or `undefined` when explicitly disabled. */
export function redisUrl(): string | undefined {
  return resolveUrl('TEST_REDIS_URL', DEFAULT_REDIS_URL);
}

/** The RabbitMQ URL for tests, or `undefined` when explicitly disabled. */
export function amqpUrl(): string | undefined {
  return resolveUrl('TEST_AMQP_URL', DEFAULT_AMQP_URL);
}

/** The NATS URL for tests, or `undefined` when explicitly disabled. */
export function natsUrl(): string | undefined {
  return resolveUrl('TEST_NATS_URL', DEFAULT_NATS_URL);
}

let mysqlCheck: Promise<string> | undefined;
let redisCheck: Promise<string> | undefined;
let amqpCheck: Promise<string> | undefined;
let natsCheck: Promise<string> | undefined;

/**
 * Resolves to the MariaDB URL once a connection and a `SELECT 1` have succeeded; rejects with
 * a message naming the URL and how to start the services otherwise. The check runs once per
 * process.
 */
export function requireMysql(): Promise<string> {
  mysqlCheck ??= checkMysql();
  return mysqlCheck;
}

/**
 * Resolves to the Redis URL once the server has answered `PING`; rejects with a message
 * naming the URL and how to start the services otherwise. The check runs once per process.
 */
export function requireRedis(): Promise<string> {
  redisCheck ??= checkRedis();
  return redisCheck;
}

/** Resolves to the RabbitMQ URL once a connection opened (guest/guest); rejects with a hint otherwise. */
export function requireAmqp(): Promise<string> {
  amqpCheck ??= checkService('RabbitMQ', amqpUrl(), async (url) => {
    const connection = await amqpConnect(url, { timeout: CONNECT_TIMEOUT_MS });
    await connection.close();
  });
  return amqpCheck;
}

/** Resolves to the NATS URL once the server answered with JetStream enabled; rejects with a hint otherwise. */
export function requireNats(): Promise<string> {
  natsCheck ??= checkService('NATS (JetStream)', natsUrl(), async (url) => {
    const nc = await natsConnect({ servers: url, timeout: CONNECT_TIMEOUT_MS, reconnect: false });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
    } finally {
      await nc.close();
    }
  });
  return natsCheck;
}

async function checkService(service: string, url: string | undefined, probe: (url: string) => Promise<void>): Promise<string> {
  if (url === undefined) throw unavailable(service, url);
  try {
    await probe(url);
  } catch (error) {
    throw unavailable(service, url, error);
  }
  return url;
}

function resolveUrl(key: ServiceKey, fallback: string): string | undefined {
  const value = process.env[key] ?? readServicesEnv()[key] ?? fallback;
  return value === '' ? undefined : value;
}

/** Parses `.tmp/services.env` (`KEY=VALUE` lines, `#` comments); empty when absent. */
function readServicesEnv(): Partial<Record<string, string>> {
  let text: string;
  try {
    text = fs.readFileSync(SERVICES_ENV_FILE, 'utf8');
  } catch {
    return {};
  }
  const entries: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    const [, key, raw] = match;
    entries[key] = raw.trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return entries;
}

function unavailable(service: string, url: string | undefined, cause?: unknown): Error {
  const problem = url === undefined ? 'no URL is configured' : `it is not reachable at ${url}`;
  const reason = cause instanceof Error ? ` (${cause.message})` : '';
  return new Error(`${service} is required by this test, but ${problem}${reason}. ${HINT}`, { cause });
}

function checkMysql(): Promise<string> {
  return checkService('MariaDB', mysqlUrl(), async (url) => {
    const connection = await createConnection({ uri: url, connectTimeout: CONNECT_TIMEOUT_MS });
    try {
      await connection.query('SELECT 1');
    } finally {
      await connection.end();
    }
  });
}

function checkRedis(): Promise<string> {
  return checkService('Redis', redisUrl(), (url) => pingRedis(new URL(url)));
}

/** Sends an inline `PING` and expects `+PONG`; no Redis client needed. */
function pingRedis(url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    let reply = '';
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail(new Error(`no answer within ${CONNECT_TIMEOUT_MS}ms`)));
    socket.on('error', fail);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (!reply.includes('\r\n')) return;
      socket.end();
      if (reply.startsWith('+PONG')) resolve();
      else reject(new Error(`unexpected reply to PING: ${reply.trim()}`));
    });
  });
}
