/**
 * A local stand-in for the Bitrix24 CRM used by the `bitrix-lead` example (seed 002), by the
 * demo and by the tests. It is a plain `node:http` server with in-memory data seeded from
 * fixtures, and it speaks just enough of the Bitrix REST shape (`POST /rest/<method>` with a
 * JSON body, answering `{ result }` or `{ error, error_description }`).
 *
 * Endpoints:
 * - `POST /rest/crm.contact.list` `{ filter: { EMAIL } }` → `{ result: Contact[], total }`
 * - `POST /rest/crm.deal.list` `{ filter: { CONTACT_ID, CLOSED? }, order?: { FIELD: 'ASC'|'DESC' } }`
 *   → `{ result: Deal[], total }` (open and closed deals unless `CLOSED` is given)
 * - `POST /rest/crm.deal.get` `{ id }` → `{ result: Deal }`, 400 when unknown
 * - `POST /rest/crm.lead.add` `{ fields }` → `{ result: newId }`
 * - `POST /rest/crm.lead.update` `{ id, fields }` → `{ result: true }`, 400 when unknown
 * - `POST /rest/crm.lead.get` `{ id }` → `{ result: Lead }`, 400 when unknown
 * - `POST /modules/remember-deal`: a Conveyor HTTP-protocol module (see DESIGN.md), deduplicated
 *   by `idempotencyKey`
 * - `GET /_state`: every collection, for tests; `POST /_reset`: back to the fixtures
 * - `POST /_faults` `{ path, status?, times?, delayMs? }`: the next `times` calls to `path`
 *   wait `delayMs` and/or answer `status`; `GET /_faults` lists the pending ones
 *
 * Malformed JSON answers 400, an unknown path 404, a wrong method 405, a body over 1 MiB 413.
 *
 * Run directly (`npx tsx scripts/crm-standin.ts` or `npm run crm`) it listens on `CRM_PORT`
 * (default 8081) and `CRM_HOST` (default 127.0.0.1).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// ---- data shapes ---------------------------------------------------------------------------

/** A Bitrix multi-field value (e-mail, phone). */
export interface CrmMultiField {
  VALUE: string;
  VALUE_TYPE: string;
}

/** A CRM contact, Bitrix-shaped: `EMAIL` is a multi-field list. */
export interface CrmContact {
  ID: string;
  NAME: string;
  LAST_NAME: string;
  EMAIL: CrmMultiField[];
}

/** A CRM deal. `CLOSED` is Bitrix's `'Y' | 'N'`. */
export interface CrmDeal {
  ID: string;
  TITLE: string;
  STAGE_ID: string;
  CONTACT_ID: string;
  OPPORTUNITY: string;
  CLOSED: 'Y' | 'N';
  DATE_CREATE: string;
}

/** A CRM lead: whatever fields were sent, plus the ones the CRM sets itself. */
export interface CrmLead {
  ID: string;
  DATE_CREATE: string;
  DATE_MODIFY: string;
  [field: string]: unknown;
}

/** One association stored by the `remember-deal` protocol endpoint. */
export interface RememberedDeal {
  idempotencyKey: string;
  requestId: string;
  pipeline?: string;
  stepId?: string;
  attempt?: number;
  test: boolean;
  contactId: string | null;
  dealId: string | null;
  at: string;
}

/** A pending injected fault. */
export interface CrmFault {
  path: string;
  /** Answer this status instead of handling the call. Without it the call is only delayed. */
  status?: number;
  /** Calls still to be affected. */
  times: number;
  delayMs?: number;
}

/** Everything the stand-in holds. `GET /_state` answers this object. */
export interface CrmState {
  contacts: CrmContact[];
  deals: CrmDeal[];
  leads: CrmLead[];
  remembered: RememberedDeal[];
  /** How many calls each path received (faulted ones included). */
  calls: Record<string, number>;
}

/** The handle {@link startCrmStandin} returns. */
export interface CrmStandin {
  /** `http://host:port`, no trailing slash: use it as `CRM_BASE_URL`. */
  url: string;
  port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
  /** Restores the fixtures, forgets remembered deals, call counts and pending faults. */
  reset(): void;
  /** The live state (the same object the server mutates). */
  readonly state: CrmState;
}

// ---- fixtures ------------------------------------------------------------------------------

/** The contacts the CRM knows at start. `new@example.com` is deliberately absent. */
export const FIXTURE_CONTACTS: readonly CrmContact[] = [
  { ID: '101', NAME: 'Ivan', LAST_NAME: 'Petrov', EMAIL: [{ VALUE: 'ivan@example.com', VALUE_TYPE: 'WORK' }] },
  { ID: '102', NAME: 'Olga', LAST_NAME: 'Smirnova', EMAIL: [{ VALUE: 'olga@example.com', VALUE_TYPE: 'WORK' }] },
  { ID: '103', NAME: 'Petr', LAST_NAME: 'Ivanov', EMAIL: [{ VALUE: 'petr@example.com', VALUE_TYPE: 'HOME' }] },
];

/**
 * The deals the CRM knows at start. Olga (102) has an old lost deal `4001` and a newer open
 * deal `5001`: a module that returns the first deal by id, instead of the most recent one,
 * takes the wrong route. Petr (103) has one closed, won deal `5002`. Ivan (101) has none.
 */
export const FIXTURE_DEALS: readonly CrmDeal[] = [
  {
    ID: '4001', TITLE: 'Olga: 2023 order', STAGE_ID: 'LOSE', CONTACT_ID: '102', OPPORTUNITY: '900.00',
    CLOSED: 'Y', DATE_CREATE: '2023-05-10T09:00:00+00:00',
  },
  {
    ID: '5001', TITLE: 'Olga: consulting', STAGE_ID: 'NEW', CONTACT_ID: '102', OPPORTUNITY: '15000.00',
    CLOSED: 'N', DATE_CREATE: '2024-03-01T10:00:00+00:00',
  },
  {
    ID: '5002', TITLE: 'Petr: hardware', STAGE_ID: 'WON', CONTACT_ID: '103', OPPORTUNITY: '42000.00',
    CLOSED: 'Y', DATE_CREATE: '2024-02-01T12:00:00+00:00',
  },
];

/** One lead exists at start, so `crm.lead.update` has something to update. New leads get 7002, 7003, … */
export const FIXTURE_LEADS: readonly CrmLead[] = [
  {
    ID: '7001', TITLE: 'Lead from ivan@example.com', NAME: 'Ivan', STATUS_ID: 'IN_PROCESS', SOURCE_ID: 'WEB',
    ASSIGNED_BY_ID: '1', CONTACT_ID: '101', EMAIL: [{ VALUE: 'ivan@example.com', VALUE_TYPE: 'WORK' }],
    DATE_CREATE: '2024-01-15T08:00:00+00:00', DATE_MODIFY: '2024-01-15T08:00:00+00:00',
  },
];

/** One example of the `bitrix-lead` pipeline: its payload and the route it must take. */
export interface BranchPayload {
  /** What the branch shows. */
  label: string;
  /** The body to submit to `POST /api/pipelines/bitrix-lead/requests`. */
  payload: { email: string; name?: string };
  /** The step ids that run, in order. */
  expectedRoute: string[];
  /** How the lead the request creates is linked (`CONTACT_ID`, `DEAL_ID`); `null` means not set. */
  expectedLink: { contactId: string | null; dealId: string | null };
  /** Whether the route passes `remember-deal` (an entry in `state.remembered`). */
  remembers: boolean;
}

/**
 * The four routes of `pipelines/bitrix-lead.pipeline.ts`, shared by the demo and the e2e tests.
 * - A: nobody known → defaults → a new lead.
 * - B: a known contact without deals → remember → a lead linked to the contact.
 * - C: a contact whose latest deal is open → load it → remember → a lead linked to contact and deal.
 * - D: a contact whose latest deal is closed → load it → a new lead linked to the contact only.
 */
export const BRANCH_PAYLOADS: Readonly<Record<'A' | 'B' | 'C' | 'D', BranchPayload>> = {
  A: {
    label: 'new person: no contact, no deal',
    payload: { email: 'new@example.com', name: 'New Person' },
    expectedRoute: ['bitrix-find-contact', 'get-bitrix-deal', 'bitrix-lead-set-default-values', 'bitrix-create-lead'],
    expectedLink: { contactId: null, dealId: null },
    remembers: false,
  },
  B: {
    label: 'known contact, no deal',
    payload: { email: 'ivan@example.com' },
    expectedRoute: ['bitrix-find-contact', 'get-bitrix-deal', 'remember-deal', 'bitrix-update-lead'],
    expectedLink: { contactId: '101', dealId: null },
    remembers: true,
  },
  C: {
    label: 'known contact, latest deal open',
    payload: { email: 'olga@example.com' },
    expectedRoute: ['bitrix-find-contact', 'get-bitrix-deal', 'get-bitrix-deal-by-id', 'remember-deal', 'bitrix-update-lead'],
    expectedLink: { contactId: '102', dealId: '5001' },
    remembers: true,
  },
  D: {
    label: 'known contact, latest deal closed',
    payload: { email: 'petr@example.com' },
    expectedRoute: ['bitrix-find-contact', 'get-bitrix-deal', 'get-bitrix-deal-by-id', 'bitrix-create-lead'],
    expectedLink: { contactId: '103', dealId: null },
    remembers: false,
  },
};

function freshState(): CrmState {
  return {
    contacts: structuredClone(FIXTURE_CONTACTS) as CrmContact[],
    deals: structuredClone(FIXTURE_DEALS) as CrmDeal[],
    leads: structuredClone(FIXTURE_LEADS) as CrmLead[],
    remembered: [],
    calls: {},
  };
}

// ---- HTTP plumbing -------------------------------------------------------------------------

const MAX_BODY = 1024 * 1024;

/** An answer that ends handling with a status and a Bitrix-style error body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

type Json = Record<string, unknown>;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(new HttpError(413, 'BODY_TOO_LARGE', `body over ${MAX_BODY} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function parseJson(text: string): Json {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    // Drop `__proto__` keys: fields are merged into stored objects with Object.assign.
    value = JSON.parse(text, (key, v: unknown) => (key === '__proto__' ? undefined : v));
  } catch (err) {
    throw new HttpError(400, 'INVALID_JSON', `malformed JSON body: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'INVALID_REQUEST', 'the body must be a JSON object');
  }
  return value as Json;
}

function asObject(v: unknown, what: string): Json {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'INVALID_REQUEST', `${what} must be an object`);
  return v as Json;
}

function requireId(body: Json): string {
  const id = body.id ?? body.ID;
  if ((typeof id === 'string' && id.trim() !== '') || (typeof id === 'number' && Number.isInteger(id))) return String(id);
  throw new HttpError(400, 'INVALID_REQUEST', 'ID is not defined or invalid');
}

function nowIso(): string {
  return new Date().toISOString();
}

/** Bitrix-ish filter matching: multi-fields (EMAIL, PHONE) by any VALUE, case-insensitive; others by string equality. */
function matches(item: Record<string, unknown>, filter: Json): boolean {
  for (const [rawKey, want] of Object.entries(filter)) {
    const key = rawKey.replace(/^=/, '');
    const have = item[key];
    const wanted = (Array.isArray(want) ? want : [want]).map((w) => String(w).toLowerCase());
    if (Array.isArray(have)) {
      const values = have.map((m) => String((m as CrmMultiField)?.VALUE ?? m).toLowerCase());
      if (!values.some((v) => wanted.includes(v))) return false;
    } else if (have === undefined || have === null) {
      return false;
    } else if (!wanted.includes(String(have).toLowerCase())) {
      return false;
    }
  }
  return true;
}

function list<T extends object>(items: T[], body: Json): { result: T[]; total: number } {
  const filter = asObject(body.filter, 'filter');
  const order = asObject(body.order, 'order');
  let found = items.filter((it) => matches(it as Record<string, unknown>, filter));
  const keys = Object.entries(order);
  // Bitrix's default order is by ID ascending.
  const sortKeys = keys.length > 0 ? keys : [['ID', 'ASC'] as [string, unknown]];
  found = [...found].sort((a, b) => {
    for (const [field, dir] of sortKeys) {
      const sign = String(dir).toUpperCase() === 'DESC' ? -1 : 1;
      const x = (a as Record<string, unknown>)[field];
      const y = (b as Record<string, unknown>)[field];
      const cmp = compare(x, y);
      if (cmp !== 0) return sign * cmp;
    }
    return 0;
  });
  const select = Array.isArray(body.select) ? body.select.map(String) : [];
  const result =
    select.length === 0 || select.includes('*')
      ? found.map((it) => structuredClone(it))
      : found.map((it) => Object.fromEntries(select.filter((f) => f in it).map((f) => [f, (it as Record<string, unknown>)[f]])) as T);
  return { result, total: result.length };
}

function compare(x: unknown, y: unknown): number {
  const nx = Number(x);
  const ny = Number(y);
  if (x !== '' && y !== '' && Number.isFinite(nx) && Number.isFinite(ny)) return nx - ny;
  return String(x ?? '').localeCompare(String(y ?? ''));
}

/** The part of a `remember-deal` protocol call this stand-in uses to find the contact and the deal. */
function rememberTargets(body: Json): { contactId: string | null; dealId: string | null } {
  const params = asObject(body.params, 'params');
  const context = asObject(body.context, 'context');
  const step = (id: string): Json => {
    const v = context[id];
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  };
  const idOf = (...candidates: unknown[]): string | null => {
    for (const c of candidates) {
      if ((typeof c === 'string' && c.trim() !== '') || (typeof c === 'number' && Number.isFinite(c))) return String(c);
    }
    return null;
  };
  const foundDeal = step('get-bitrix-deal').value;
  const foundDealId = foundDeal !== null && typeof foundDeal === 'object' ? (foundDeal as Json).ID : undefined;
  return {
    contactId: idOf(params.contactId, step('bitrix-find-contact').ID, step('get-bitrix-deal-by-id').CONTACT_ID),
    dealId: idOf(params.dealId, step('get-bitrix-deal-by-id').ID, foundDealId),
  };
}

// ---- the in-memory CRM ---------------------------------------------------------------------

/** The first id `crm.lead.add` hands out (the fixture lead is 7001). */
const FIRST_NEW_LEAD_ID = 7002;

/**
 * The stand-in's data and behaviour, without HTTP: Bitrix methods, the `remember-deal` module
 * and the fault queue. Methods throw {@link HttpError} for answers other than 200.
 */
class CrmBackend {
  state: CrmState = freshState();
  private faults: CrmFault[] = [];
  private nextLeadId = FIRST_NEW_LEAD_ID;
  /** idempotencyKey → the `data` answered the first time. */
  private rememberedByKey = new Map<string, Json>();

  /** The Bitrix REST methods this stand-in implements, by name. */
  readonly rest: Readonly<Record<string, (body: Json) => unknown>> = {
    'crm.contact.list': (body) => list(this.state.contacts, body),
    'crm.deal.list': (body) => list(this.state.deals, body),
    'crm.deal.get': (body) => ({ result: structuredClone(this.findById(this.state.deals, body)) }),
    'crm.lead.get': (body) => ({ result: structuredClone(this.findById(this.state.leads, body)) }),
    'crm.lead.add': (body) => this.addLead(body),
    'crm.lead.update': (body) => this.updateLead(body),
  };

  reset(): void {
    this.state = freshState();
    this.faults = [];
    this.nextLeadId = FIRST_NEW_LEAD_ID;
    this.rememberedByKey = new Map();
  }

  countCall(path: string): void {
    this.state.calls[path] = (this.state.calls[path] ?? 0) + 1;
  }

  pendingFaults(): CrmFault[] {
    return structuredClone(this.faults);
  }

  private findById<T extends { ID: string }>(items: T[], body: Json): T {
    const id = requireId(body);
    const item = items.find((it) => it.ID === id);
    if (!item) throw new HttpError(400, 'NOT_FOUND', 'Not found');
    return item;
  }

  private addLead(body: Json): { result: number } {
    const fields = asObject(body.fields, 'fields');
    if (Object.keys(fields).length === 0) throw new HttpError(400, 'INVALID_REQUEST', 'fields are required');
    const id = this.nextLeadId++;
    const at = nowIso();
    this.state.leads.push({ ...structuredClone(fields), ID: String(id), DATE_CREATE: at, DATE_MODIFY: at });
    // Real Bitrix answers the new id as a number.
    return { result: id };
  }

  private updateLead(body: Json): { result: true } {
    const lead = this.findById(this.state.leads, body);
    const fields = asObject(body.fields, 'fields');
    Object.assign(lead, structuredClone(fields), { ID: lead.ID, DATE_MODIFY: nowIso() });
    return { result: true };
  }

  /** `POST /modules/remember-deal`: the Conveyor HTTP module protocol, deduplicated by idempotencyKey. */
  rememberDeal(body: Json): { data: Json } {
    const key = body.idempotencyKey;
    const requestId = body.requestId;
    if (typeof key !== 'string' || key === '') throw new HttpError(400, 'INVALID_REQUEST', 'idempotencyKey is required');
    if (typeof requestId !== 'string' || requestId === '') throw new HttpError(400, 'INVALID_REQUEST', 'requestId is required');
    const previous = this.rememberedByKey.get(key);
    if (previous) return { data: structuredClone(previous) };

    const { contactId, dealId } = rememberTargets(body);
    if (contactId === null && dealId === null) {
      throw new HttpError(422, 'NOTHING_TO_REMEMBER', 'neither a contact nor a deal was found in params or context');
    }
    this.state.remembered.push({
      idempotencyKey: key,
      requestId,
      pipeline: typeof body.pipeline === 'string' ? body.pipeline : undefined,
      stepId: typeof body.stepId === 'string' ? body.stepId : undefined,
      attempt: typeof body.attempt === 'number' ? body.attempt : undefined,
      test: body.test === true,
      contactId,
      dealId,
      at: nowIso(),
    });
    const data = { remembered: true, contactId, dealId };
    this.rememberedByKey.set(key, data);
    return { data: structuredClone(data) };
  }

  /** `POST /_faults`: queues a fault for a path. */
  addFault(body: Json): { result: true; pending: number } {
    const fault = parseFault(body);
    this.faults.push(fault);
    return { result: true, pending: this.faults.filter((f) => f.path === fault.path).length };
  }

  /** Consumes one use of the first pending fault for `path`, if any. */
  takeFault(path: string): CrmFault | undefined {
    const i = this.faults.findIndex((f) => f.path === path);
    if (i < 0) return undefined;
    const fault = this.faults[i];
    fault.times -= 1;
    if (fault.times <= 0) this.faults.splice(i, 1);
    return { ...fault };
  }
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function parseFault(body: Json): CrmFault {
  const { path, status, times, delayMs } = body;
  if (typeof path !== 'string' || path === '') throw new HttpError(400, 'INVALID_REQUEST', 'path is required');
  if (status !== undefined && !isInt(status, 100, 599)) throw new HttpError(400, 'INVALID_REQUEST', 'status must be an HTTP status code');
  if (times !== undefined && !isInt(times, 1, 1_000_000)) throw new HttpError(400, 'INVALID_REQUEST', 'times must be a positive integer');
  if (delayMs !== undefined && !isInt(delayMs, 0, 600_000)) {
    throw new HttpError(400, 'INVALID_REQUEST', 'delayMs must be an integer from 0 to 600000');
  }
  if (status === undefined && delayMs === undefined) throw new HttpError(400, 'INVALID_REQUEST', 'give status, delayMs or both');
  const normalised = path.startsWith('/') ? path : `/${path}`;
  if (normalised.startsWith('/_')) throw new HttpError(400, 'INVALID_REQUEST', 'control endpoints cannot be faulted');
  return { path: normalised, status, times: times ?? 1, delayMs };
}

// ---- HTTP routing --------------------------------------------------------------------------

const REMEMBER_DEAL_PATH = '/modules/remember-deal';

/** Routes one HTTP call. `sleep` is cancelled (never resolves) once the server closes. */
async function route(
  crm: CrmBackend,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
  const method = req.method ?? 'GET';
  crm.countCall(path);
  const text = method === 'POST' ? await readBody(req) : '';

  // Control endpoints: never faulted.
  if (path === '/_state' || path === '/_faults' || path === '/_reset') return routeControl(crm, path, method, text, res);

  const restMethod = path.startsWith('/rest/') ? path.slice('/rest/'.length).replace(/\.json$/, '') : undefined;
  const handler = restMethod !== undefined && Object.hasOwn(crm.rest, restMethod) ? crm.rest[restMethod] : undefined;
  if (!handler && path !== REMEMBER_DEAL_PATH) throw new HttpError(404, 'ERROR_METHOD_NOT_FOUND', `no such endpoint: ${path}`);
  if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');

  // A delayed call still does its work afterwards, even if the client gave up: as a real,
  // slow CRM would. That is what makes a module's idempotency matter.
  const fault = crm.takeFault(path);
  if (fault?.delayMs) await sleep(fault.delayMs);
  if (fault?.status !== undefined) {
    return send(res, fault.status, { error: 'INJECTED_FAULT', error_description: `injected fault: ${fault.status}` });
  }
  const body = parseJson(text);
  send(res, 200, handler ? handler(body) : crm.rememberDeal(body));
}

function routeControl(crm: CrmBackend, path: string, method: string, text: string, res: http.ServerResponse): void {
  if (path === '/_state') {
    if (method !== 'GET') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use GET');
    return send(res, 200, crm.state);
  }
  if (path === '/_reset') {
    if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');
    crm.reset();
    return send(res, 200, { result: true });
  }
  if (method === 'GET') return send(res, 200, { result: crm.pendingFaults() });
  if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use GET or POST');
  send(res, 200, crm.addFault(parseJson(text)));
}

// ---- the server ----------------------------------------------------------------------------

/**
 * Starts the CRM stand-in.
 *
 * @param opts.port - the port to listen on; `0` picks a free one. @default `CRM_PORT` or 8081
 * @param opts.host - @default `CRM_HOST` or `127.0.0.1`
 * @returns the server's URL and port, `close()`, `reset()` and the live `state`.
 */
export async function startCrmStandin(opts: { port?: number; host?: string } = {}): Promise<CrmStandin> {
  const host = opts.host ?? process.env.CRM_HOST ?? '127.0.0.1';
  const port = opts.port ?? Number(process.env.CRM_PORT ?? 8081);
  const crm = new CrmBackend();
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const server = http.createServer((req, res) => {
    route(crm, req, res, sleep).catch((err: unknown) => {
      if (err instanceof HttpError) send(res, err.status, { error: err.error, error_description: err.description });
      else send(res, 500, { error: 'INTERNAL', error_description: 'internal error' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    reset: () => crm.reset(),
    get state() {
      return crm.state;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

if (require.main === module) {
  startCrmStandin()
    .then((crm) => {
      console.log(`CRM stand-in listening on ${crm.url} (set CRM_BASE_URL=${crm.url})`);
      const stop = (): void => {
        crm.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: unknown) => {
      console.error(`CRM stand-in failed to start: ${(err as Error).message}`);
      process.exit(1);
    });
}
