/**
 * A local stand-in for the services marketplace platform of seed 003 (the system that owns
 * users, providers and the entities of its object constructor), for the `platform` module's
 * `registerExecutor` and `createEntity` operations. It records everything; nothing leaves the
 * machine.
 *
 * Endpoints (`Authorization: Bearer <key>` when the stand-in has a key; an `Idempotency-Key`
 * header makes a repeated call answer the first result):
 * - `POST /v1/orders/:code/executor` `{ userId, sandbox? }`: registers the user as the
 *   order's executor → `{ id, order, userId, registeredAt }`
 * - `POST /v1/entities` `{ type, fields, order?, sandbox? }`: creates an entity →
 *   `{ id, type }`
 *
 * A call with `sandbox: true` (a test request) is recorded with `sandbox: true`: the
 * platform's test mode. Controls: `GET /_state`, `POST /_reset`, `GET|POST /_faults`.
 * Run directly (`npx tsx scripts/platform-standin.ts`) it listens on `PLATFORM_PORT`
 * (default 8086).
 */
import { HttpError, requireString, runStandinMain, startStandin, type Json, type Route, type Standin, type StandinCall } from './standin-kit';

export interface PlatformRegistration {
  id: string;
  order: string;
  userId: string;
  sandbox: boolean;
  registeredAt: string;
}

export interface PlatformEntity {
  id: string;
  type: string;
  order: string | null;
  fields: Json;
  sandbox: boolean;
  createdAt: string;
}

export interface PlatformState {
  calls: Record<string, number>;
  /** Executor registrations, in order (a later one for an order replaces its executor). */
  registrations: PlatformRegistration[];
  entities: PlatformEntity[];
}

/** Starts the platform stand-in. `port: 0` picks a free port. */
export async function startPlatformStandin(opts: { port?: number; host?: string; apiKey?: string } = {}): Promise<Standin<PlatformState>> {
  const apiKey = opts.apiKey ?? process.env.PLATFORM_STANDIN_KEY ?? null;
  let seq = 0;
  const answered = new Map<string, unknown>();
  /** Checks the key and answers a repeated `Idempotency-Key` with the first answer. */
  const guarded = (work: (call: StandinCall, params: Record<string, string>) => unknown): Route => (call, params) => {
    if (apiKey && call.headers.authorization !== `Bearer ${apiKey}`) throw new HttpError(401, 'UNAUTHORIZED', 'a valid API key is required');
    const key = typeof call.headers['idempotency-key'] === 'string' ? `${call.path} ${call.headers['idempotency-key']}` : null;
    if (key && answered.has(key)) return answered.get(key);
    const out = work(call, params);
    if (key) answered.set(key, out);
    return out;
  };
  return startStandin<PlatformState>({
    host: opts.host ?? process.env.PLATFORM_HOST,
    port: opts.port ?? Number(process.env.PLATFORM_PORT ?? 8086),
    initial: () => ({ calls: {}, registrations: [], entities: [] }),
    onReset: () => {
      seq = 0;
      answered.clear();
    },
    routes: (state) => ({
      'POST /v1/orders/:code/executor': guarded(({ body }, params) => {
        const reg: PlatformRegistration = {
          id: `reg-${++seq}`, order: params.code!, userId: requireString(body, 'userId'), sandbox: body.sandbox === true, registeredAt: new Date().toISOString(),
        };
        state().registrations.push(reg);
        return reg;
      }),
      'POST /v1/entities': guarded(({ body }) => {
        const fields = body.fields;
        if (!fields || typeof fields !== 'object' || Array.isArray(fields)) throw new HttpError(400, 'INVALID_REQUEST', 'fields must be an object');
        const entity: PlatformEntity = {
          id: `ent-${++seq}`, type: requireString(body, 'type'), order: typeof body.order === 'string' ? body.order : null, fields: fields as Json,
          sandbox: body.sandbox === true, createdAt: new Date().toISOString(),
        };
        state().entities.push(entity);
        return { id: entity.id, type: entity.type };
      }),
    }),
  });
}

if (require.main === module) {
  runStandinMain('platform stand-in', () => startPlatformStandin(), (url) => `set PLATFORM_BASE_URL=${url}`);
}
