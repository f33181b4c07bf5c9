/**
 * Broker URLs (and AMQP queue, exchange and routing key names) as a pipeline writes them:
 * `${VAR}` and `${VAR:-default}` are taken from the environment (shell style), so one
 * definition runs against each deployment's broker.
 */
import { processEnv, type Env } from '../config';

export const DEFAULT_AMQP_URL = '${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}';
export const DEFAULT_NATS_URL = '${NATS_URL:-nats://127.0.0.1:4222}';

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands `${VAR}` / `${VAR:-default}`; throws naming the variable when one is unset and has no default. */
export function expandUrl(template: string, env: Env = processEnv()): string {
  return template.replace(VARIABLE, (_m, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is not set and "${template}" gives no default`);
  });
}

/** The URL without its password, for logs and `GET /api/sources`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/**
 * Why a (template) URL is not a broker URL of the kind, or `undefined` when it is. Checked
 * with the variables as they are now, so a typo shows at load rather than at the first message.
 */
export function urlProblem(template: string, kind: 'amqp' | 'nats', env: Env = processEnv()): string | undefined {
  let url: string;
  try {
    url = expandUrl(template, env);
  } catch (err) {
    return (err as Error).message;
  }
  const schemes = kind === 'amqp' ? ['amqp:', 'amqps:'] : ['nats:', 'tls:'];
  try {
    const u = new URL(url);
    if (!schemes.includes(u.protocol) || u.hostname === '') return `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL (got "${redactUrl(url)}")`;
  } catch {
    return `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL (got "${redactUrl(url)}")`;
  }
  return undefined;
}
