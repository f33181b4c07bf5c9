/**
 * Hostile inputs for every route, generated from a seed. Each case is hostile by construction
 * (a defect that a correct server must refuse), so the oracle can be strict:
 *
 * - `reject`: a 4xx with `{ error: { code, message } }`;
 * - `read`: a read whose filter value is hostile but well-formed text (SQL metacharacters,
 *   unicode): a 4xx as above, or a 200 with no items (nothing stored matches it; a 200 with
 *   items would mean the value was interpreted, not compared);
 * - `bulk`: NDJSON where every line is hostile: a 4xx, or a 200 whose every line is an error.
 *
 * Nothing may change state, whatever the class.
 */
import type { RawRequest } from './raw-http';

export type Expect = 'reject' | 'read' | 'bulk';

export interface FuzzCase {
  n: number;
  route: string;
  family: string;
  /** A short description of the input, for reports. */
  what: string;
  req: RawRequest;
  expect: Expect;
  /** For `read`: a 200 must list no items (the filter matches nothing stored). */
  emptyItems?: boolean;
}

/** What the cases aim at: a running API with some real requests. */
export interface FuzzTarget {
  key: string;
  pipeline: string;
  /** A request waiting at an action step (`approve`). */
  waitingId: string;
  /** A request in `error_stop`. */
  errorStopId: string;
  /** A signed callback token for a run that does not exist. */
  callbackToken: string;
  event: string;
}

// ---- randomness ------------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  weighted<T extends { weight: number }>(xs: readonly T[]): T {
    let x = this.next() * xs.reduce((a, b) => a + b.weight, 0);
    for (const v of xs) if ((x -= v.weight) < 0) return v;
    return xs[xs.length - 1]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---- hostile values --------------------------------------------------------------------------

export const SQL_METACHARACTERS = [
  "' OR '1'='1",
  "' OR 1=1 --",
  '" OR ""="',
  "'; DROP TABLE requests; --",
  "1) OR (1=1",
  "' UNION SELECT id, payload, 1, 1 FROM requests --",
  '%',
  '%%',
  '_',
  '%_%',
  '\\',
  "\\'",
  '`',
  "admin'--",
  '1; SELECT SLEEP(5)',
  "' AND (SELECT COUNT(*) FROM api_keys) > 0 --",
  '?',
  '$1',
  ':id',
  '*/ OR /*',
  "') OR ('a'='a",
];

export const UNICODE_EDGES = [
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  'a\ud83dz', // half an emoji
  '\u202eevil\u202c', // right-to-left override
  'مرحبا بالعالم',
  'שלום\u200f',
  '\u0000', // NUL
  'nul\u0000inside',
  '\ufeffbom',
  '\uffff\ufffe',
  'e\u0301\u0301\u0301', // combining marks
  '\u200b\u200c\u200d', // zero-width
  '😀👩‍👩‍👧‍👦',
  '\u2028\u2029', // line/paragraph separators (valid JSON, not valid JS before ES2019)
  '𝕳𝖊𝖑𝖑𝖔',
];

export const TRAVERSALS = [
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '....//....//etc/passwd',
  '..\\..\\windows\\win.ini',
  '/etc/passwd',
  '%00',
  'x%00.json',
  'file:%2F%2F%2Fetc%2Fpasswd',
  '..',
  '.',
  '%2e',
  '%E0%A4%A', // truncated percent-encoding
  '%zz',
  '%',
  '%C0%AF', // overlong UTF-8 slash
  '%ED%A0%80', // a UTF-8-encoded lone surrogate
];

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD, as on the wire). */
export function pct(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

function hostileText(r: Rng): string {
  switch (r.int(0, 4)) {
    case 0:
      return r.pick(SQL_METACHARACTERS);
    case 1:
      return r.pick(UNICODE_EDGES);
    case 2:
      return `${r.pick(SQL_METACHARACTERS)}${r.pick(UNICODE_EDGES)}`;
    case 3:
      return r.pick(['a', 'é', '\u202e', "'"]).repeat(r.int(101, 3000));
    default:
      return decodeURIComponentSafe(r.pick(TRAVERSALS));
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A path segment that names nothing: raw traversal, encoded junk, SQL, unicode, or very long. */
function hostileSegment(r: Rng): string {
  switch (r.int(0, 3)) {
    case 0:
      return r.pick(TRAVERSALS);
    case 1:
      return pct(r.pick(SQL_METACHARACTERS));
    case 2:
      return pct(r.pick(UNICODE_EDGES));
    default:
      return pct('x'.repeat(r.int(300, 6000)));
  }
}

// ---- hostile bodies --------------------------------------------------------------------------

const MB = 1024 * 1024;

function nested(r: Rng, depth: number): string {
  const kind = r.int(0, 2);
  if (kind === 0) return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  if (kind === 1) return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2 === 0) {
      open += '{"k":';
      close = `}${close}`;
    } else {
      open += '[';
      close = `]${close}`;
    }
  }
  return `${open}0${close}`;
}

const FORBIDDEN = ['__proto__', 'constructor', 'prototype'];
const ESCAPED = { __proto__: ['\\u005f_proto__', '__\\u0070roto__', '\\u005f\\u005fproto\\u005f\\u005f'], constructor: ['\\u0063onstructor'], prototype: ['prot\\u006ftype'] } as const;

/** A JSON object with a forbidden key somewhere inside, maybe written with unicode escapes. */
function withForbiddenKey(r: Rng, base: Record<string, unknown>): string {
  const key = r.pick(FORBIDDEN);
  const written = r.chance(0.4) ? r.pick(ESCAPED[key as keyof typeof ESCAPED]) : key;
  const evil = `{"${written}": {"polluted": "yes", "isAdmin": true}}`;
  const depth = r.int(0, 5);
  let inner = evil;
  for (let i = 0; i < depth; i++) inner = r.chance(0.5) ? `{"n${i}": ${inner}}` : `[1, ${inner}]`;
  const text = JSON.stringify(base);
  return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"x": ${inner}}`;
}

/** A proper prefix of an object's JSON text: never valid JSON. */
function truncated(r: Rng, text: string): string {
  const last = text.lastIndexOf('}');
  return text.slice(0, r.int(1, Math.max(1, last - 1)));
}

/** Breaks valid JSON text in one of the usual ways. */
function malformed(r: Rng, text: string): string {
  const ways = [
    () => truncated(r, text),
    () => `${text}}`,
    () => `${text.slice(0, -1)},}`,
    () => text.replace(/"/g, "'"),
    () => `${text} trailing`,
    () => `/* comment */ ${text}`,
    () => text.replace(/:/, ''),
    () => `{"a": NaN, "b": Infinity}`,
    () => `{"a": undefined}`,
    () => `{"a": 0x10}`,
    () => `{"a": "unterminated}`,
    () => `{"a": "bad escape \\x41"}`,
    () => `{"a": "\t raw control char"}`,
    () => `{a: 1}`,
    () => text.slice(0, -1),
    () => `\u0000${text}`,
  ];
  for (let i = 0; i < 5; i++) {
    const out = r.pick(ways)();
    if (!parses(out)) return out;
  }
  return truncated(r, text);
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A valid body for the route: what a careful client would send. */
function validBody(route: string, r: Rng): Record<string, unknown> {
  if (route === 'event') return { key: `fz-${r.int(1, 1e9)}`, data: { v: hostileText(r) } };
  if (route === 'callback') return { data: { v: 1 } };
  if (route === 'action') return { data: {} };
  if (route === 'resume') return { params: { v: 1 } };
  if (route === 'stop') return { reason: 'fuzz' };
  return { k: `fz-${r.int(1, 1e9)}`, v: hostileText(r) };
}

// ---- routes ----------------------------------------------------------------------------------

interface Route {
  name: string;
  /** How often it is picked, relative to the others. */
  weight: number;
  method: 'GET' | 'POST';
  path: (t: FuzzTarget, seg?: string) => string;
  /** Takes a JSON object body. */
  body?: boolean;
  /** Whether a valid body with valid headers would change state (then only invalid bodies are sent). */
  mutates?: boolean;
  auth?: boolean;
}

const ROUTES: Route[] = [
  { name: 'submit', weight: 4, method: 'POST', path: (t, s) => `/api/pipelines/${s ?? t.pipeline}/requests`, body: true, mutates: true, auth: true },
  { name: 'bulk', weight: 2, method: 'POST', path: (t, s) => `/api/pipelines/${s ?? t.pipeline}/requests/bulk`, auth: true },
  { name: 'event', weight: 2, method: 'POST', path: (t, s) => `/api/events/${s ?? t.event}`, body: true, auth: true },
  { name: 'action', weight: 2, method: 'POST', path: (t, s) => `/api/requests/${s ?? t.waitingId}/actions/approve`, body: true, mutates: true, auth: true },
  { name: 'resume', weight: 1.5, method: 'POST', path: (t, s) => `/api/requests/${s ?? t.errorStopId}/resume`, body: true, mutates: true, auth: true },
  { name: 'stop', weight: 1.5, method: 'POST', path: (t, s) => `/api/requests/${s ?? t.errorStopId}/stop`, body: true, mutates: true, auth: true },
  { name: 'callback', weight: 2, method: 'POST', path: (t, s) => `/api/callbacks/${s ?? t.callbackToken}`, body: true },
  { name: 'get-request', weight: 1, method: 'GET', path: (t, s) => `/api/requests/${s ?? t.waitingId}`, auth: true },
  { name: 'get-steps', weight: 1, method: 'GET', path: (t, s) => `/api/requests/${s ?? t.waitingId}/steps`, auth: true },
  { name: 'get-audit', weight: 1, method: 'GET', path: (t, s) => `/api/requests/${s ?? t.waitingId}/audit`, auth: true },
  { name: 'get-pipeline', weight: 1, method: 'GET', path: (t, s) => `/api/pipelines/${s ?? t.pipeline}`, auth: true },
  { name: 'list-pipelines', weight: 0.5, method: 'GET', path: () => '/api/pipelines', auth: true },
  { name: 'search-requests', weight: 2, method: 'GET', path: () => '/api/requests', auth: true },
  { name: 'search-steps', weight: 2, method: 'GET', path: () => '/api/steps', auth: true },
  { name: 'metrics', weight: 0.5, method: 'GET', path: () => '/metrics', auth: true },
  { name: 'healthz', weight: 0.5, method: 'GET', path: () => '/healthz' },
  { name: 'readyz', weight: 0.5, method: 'GET', path: () => '/readyz' },
  { name: 'openapi', weight: 0.5, method: 'GET', path: () => '/openapi.json' },
];

const SEARCH = {
  'search-requests': { text: ['pipeline', 'businessKey'], strict: ['status', 'test', 'since', 'until', 'limit', 'cursor'] },
  'search-steps': { text: ['pipeline', 'step'], strict: ['status', 'since', 'until', 'limit', 'cursor'] },
} as const;

const JSON_CT: [string, string] = ['content-type', 'application/json'];
const WRONG_TYPES = ['text/plain', 'text/html', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/jsonx', 'json', 'text/json', 'application/javascript', 'image/png', '*/*'];

function auth(t: FuzzTarget): [string, string] {
  return ['authorization', `Bearer ${t.key}`];
}

/** Builds case `n` of the stream of `seed`. */
export function generateCase(seed: number, n: number, t: FuzzTarget): FuzzCase {
  const r = new Rng((seed * 1_000_003 + n * 7919) >>> 0);
  const route = r.weighted(ROUTES);
  const c = (family: string, what: string, req: RawRequest, expect: Expect = 'reject'): FuzzCase => ({ n, route: route.name, family, what, req, expect });
  const headers = (...extra: Array<[string, string | Buffer]>): Array<[string, string | Buffer]> => [...(route.auth ? [auth(t)] : []), ...extra];
  const post = (family: string, what: string, body: string | Buffer, hs: Array<[string, string | Buffer]> = [JSON_CT], extra: Partial<RawRequest> = {}, expect: Expect = 'reject'): FuzzCase =>
    c(family, what, { method: 'POST', path: route.path(t), headers: headers(...hs), body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body, ...extra }, expect);

  // Families that apply to every route.
  const roll = r.next();
  if (roll < 0.05) {
    const size = r.int(17, 60) * 1024;
    return c('long-header', `a ${size >> 10} KB header`, { method: route.method, path: route.path(t), headers: headers(['x-pad', 'p'.repeat(size)]) });
  }
  if (roll < 0.1) {
    const method = r.pick(['PUT', 'DELETE', 'PATCH', route.method === 'GET' ? 'POST' : 'GET']);
    return c('method', `${method} on a ${route.method} route`, { method, path: route.path(t), headers: headers() });
  }
  if (roll < 0.15 && route.auth) {
    const value = r.pick([
      () => `Bearer ${'k'.repeat(r.int(100, 8000))}`,
      () => Buffer.concat([Buffer.from('Bearer '), Buffer.from([0xff, 0xfe, 0xc3, 0x28])]),
      () => 'Bearer',
      () => `Basic ${Buffer.from(`admin:${t.key}`).toString('base64')}`,
      () => `Bearer ${pct(r.pick(SQL_METACHARACTERS))}`,
      () => `Bearer ${r.pick(SQL_METACHARACTERS)}`,
      () => `Token ${t.key}`,
      () => `Bearer ${t.key.slice(0, -1)}`,
    ])();
    const hs: Array<[string, string | Buffer]> = [['authorization', value]];
    return c('auth', 'a hostile Authorization header', { method: route.method, path: route.path(t), headers: route.method === 'POST' ? [...hs, JSON_CT] : hs, body: route.method === 'POST' ? Buffer.from('{"k":"x"}') : undefined });
  }

  if (route.name === 'search-requests' || route.name === 'search-steps') return searchCase(r, t, route, n);
  if (route.name === 'bulk') return bulkCase(r, t, route, n);

  const idRoutes = ['submit', 'event', 'action', 'resume', 'stop', 'callback', 'get-request', 'get-steps', 'get-audit', 'get-pipeline'];
  if (idRoutes.includes(route.name) && r.chance(route.body ? 0.2 : 0.9)) {
    // A hostile id with an otherwise valid call.
    const seg = hostileSegment(r);
    const body = route.body ? Buffer.from(JSON.stringify(validBody(route.name, r))) : undefined;
    return c('path', `${route.name} with id ${JSON.stringify(seg.slice(0, 40))}`, { method: route.method, path: route.path(t, seg), headers: headers(...(body ? [JSON_CT] : [])), body });
  }
  if (!route.body) {
    // GET routes without an id: hostile query strings on routes that take none, long headers above.
    const q = `?${pct(hostileText(r))}=${pct(hostileText(r))}`;
    return c('query', 'a hostile query on a read route', { method: 'GET', path: `${route.path(t)}${q}`, headers: headers() }, 'read');
  }

  const base = validBody(route.name, r);
  const text = JSON.stringify(base);
  const family = r.pick(['malformed', 'content-type', 'oversize', 'deep', 'forbidden-key', 'non-object', 'huge-string', 'unicode', 'invalid-utf8', ...(route.name === 'submit' ? ['idempotency-key', 'business-key', 'submit-query'] : [])]);
  switch (family) {
    case 'malformed':
      return post(family, 'malformed JSON', malformed(r, text));
    case 'content-type': {
      const ct = r.pick(WRONG_TYPES);
      return post(family, `content-type ${ct}`, text, r.chance(0.1) ? [] : [['content-type', ct]]);
    }
    case 'oversize': {
      const size = MB + r.int(1, MB);
      const big = `{"v":"${'o'.repeat(size)}"}`;
      return post(family, `a ${(size / MB).toFixed(1)} MiB body${r.chance(0.5) ? ', chunked' : ''}`, big, [JSON_CT], { chunked: r.chance(0.5) });
    }
    case 'deep': {
      const depth = r.chance(0.3) ? 10_000 : r.int(65, 3000);
      const doc = nested(r, depth);
      return post(family, `${depth} levels deep`, r.chance(0.5) ? doc : `{"key":"x","data":${doc}}`);
    }
    case 'forbidden-key':
      return post(family, 'a __proto__/constructor/prototype key', withForbiddenKey(r, base));
    case 'non-object':
      return post(family, 'a JSON value that is not an object', r.pick(['[]', '[{"k":1}]', '"text"', '42', 'null', 'true', '[[[]]]', '-0', '1e999']));
    case 'huge-string': {
      const huge = 'h'.repeat(r.int(200_000, 900_000));
      const doc = JSON.stringify({ ...base, huge });
      return post(family, `a ${(huge.length / 1000).toFixed(0)} KB string in a broken body`, r.chance(0.5) ? truncated(r, doc) : withForbiddenKey(r, { ...base, huge }));
    }
    case 'unicode': {
      const doc = JSON.stringify({ ...base, u: r.pick(UNICODE_EDGES), [r.pick(UNICODE_EDGES)]: r.pick(UNICODE_EDGES) });
      return post(family, 'unicode edge cases in a broken body', r.chance(0.5) ? malformed(r, doc) : withForbiddenKey(r, JSON.parse(doc) as Record<string, unknown>));
    }
    case 'invalid-utf8': {
      const bad = r.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf0, 0x28, 0x8c, 0x28], [0xc0, 0xaf], [0xe2, 0x82]]);
      const body = Buffer.concat([Buffer.from(`${text.slice(0, -1)},"bad":"`), Buffer.from(bad), Buffer.from('"}')]);
      return post(family, `bytes ${bad.map((b) => b.toString(16)).join(' ')} (not UTF-8) in a string`, body);
    }
    case 'idempotency-key': {
      const value = r.pick([
        () => `k${'\t'}tab`,
        () => 'k\x7fdel',
        () => 'k\x01ctl',
        () => 'k'.repeat(r.int(256, 5000)),
        () => Buffer.concat([Buffer.from('key-'), Buffer.from(r.pick(UNICODE_EDGES), 'utf8')]),
        () => Buffer.from([0x6b, 0xe9]),
      ])();
      return post(family, 'a bad Idempotency-Key', text, [JSON_CT, ['idempotency-key', value]]);
    }
    case 'business-key':
      return post(family, 'a bad X-Business-Key', text, [JSON_CT, ['x-business-key', r.chance(0.5) ? 'b'.repeat(r.int(256, 4000)) : Buffer.from(`bk-${r.pick(UNICODE_EDGES)}`, 'utf8')]]);
    default: {
      const [name, value] = r.pick([
        ['wait', r.pick(['abc', '-1', '3601', '1e3', '0x10', pct(r.pick(SQL_METACHARACTERS)), '1&wait=2'])],
        ['test', r.pick(['maybe', '2', 'yes', pct(r.pick(UNICODE_EDGES))])],
        ['mode', r.pick(['SEMI', 'a'.repeat(40), pct(r.pick(SQL_METACHARACTERS)), pct(r.pick(UNICODE_EDGES))])],
        ['callbackUrl', r.pick(['javascript:alert(1)', 'file:///etc/passwd', 'ftp://x', 'not a url', `http://${'a'.repeat(2100)}.com`])],
      ] as const);
      return c(family, `?${name}=${String(value).slice(0, 30)}`, { method: 'POST', path: `${route.path(t)}?${name}=${value}`, headers: headers(JSON_CT), body: Buffer.from(text) });
    }
  }
}

function searchCase(r: Rng, t: FuzzTarget, route: Route, n: number): FuzzCase {
  const spec = SEARCH[route.name as keyof typeof SEARCH];
  const req = (query: string): RawRequest => ({ method: 'GET', path: `${route.path(t)}?${query}`, headers: [auth(t)] });
  const kind = r.int(0, 3);
  if (kind <= 1) {
    // Free-text filters: compared, never interpreted.
    const param = r.pick(spec.text);
    const value = hostileText(r).slice(0, param === 'businessKey' ? 255 : 100);
    return { n, route: route.name, family: 'sql-text-filter', what: `${param}=${JSON.stringify(value.slice(0, 30))}`, req: req(`${param}=${pct(value)}`), expect: 'read', emptyItems: true };
  }
  if (kind === 2) {
    const param = r.pick(spec.strict);
    const value = r.chance(0.6) ? r.pick(SQL_METACHARACTERS) : r.pick([...UNICODE_EDGES, '-1', '1e3', 'NaN', '2025-13-45', 'eyJ0IjoxfQ', 'W251bGwsbnVsbF0']);
    return { n, route: route.name, family: 'sql-strict-filter', what: `${param}=${JSON.stringify(value.slice(0, 30))}`, req: req(`${param}=${pct(value)}`), expect: 'reject' };
  }
  const query = r.pick([
    () => `${pct(r.pick(SQL_METACHARACTERS))}=1`,
    () => `${r.pick(spec.text)}=a&${r.pick(spec.text)}=b`.replace(/^(\w+)=a&(?!\1)\w+=b$/, '$&&limit=1&limit=2'),
    () => `limit=1&limit=2`,
    () => `__proto__[polluted]=yes`,
    () => `constructor[prototype][polluted]=yes`,
    () => `status[]=running`,
    () => `${pct(r.pick(UNICODE_EDGES))}=${pct(r.pick(UNICODE_EDGES))}`,
    () => `pipeline=${'p'.repeat(r.int(101, 5000))}`,
  ])();
  return { n, route: route.name, family: 'search-params', what: query.slice(0, 60), req: req(query), expect: 'reject' };
}

function bulkCase(r: Rng, t: FuzzTarget, route: Route, n: number): FuzzCase {
  const nd: [string, string] = ['content-type', 'application/x-ndjson'];
  const hs = [auth(t), nd];
  const kind = r.int(0, 9);
  if (kind === 0) {
    const ct = r.pick(['application/json', ...WRONG_TYPES]);
    return { n, route: route.name, family: 'content-type', what: `bulk as ${ct}`, req: { method: 'POST', path: route.path(t), headers: [auth(t), ['content-type', ct]], body: Buffer.from('{"k":1}\n') }, expect: 'reject' };
  }
  if (kind === 1) {
    return { n, route: route.name, family: 'idempotency-key', what: 'bulk with a bad Idempotency-Key', req: { method: 'POST', path: route.path(t), headers: [...hs, ['idempotency-key', 'k\x01'.repeat(r.int(1, 200))]], body: Buffer.from('{"k":1}\n') }, expect: 'reject' };
  }
  if (kind === 2) {
    return { n, route: route.name, family: 'path', what: 'bulk to a hostile pipeline id', req: { method: 'POST', path: route.path(t, hostileSegment(r)), headers: hs, body: Buffer.from('{"k":1}\n') }, expect: 'reject' };
  }
  // Every line hostile: the answer is 200 with an error per line, and nothing stored.
  const lines: Array<string | Buffer> = [];
  const count = r.int(1, 20);
  for (let i = 0; i < count; i++) {
    const base = { k: `fz-${r.int(1, 1e9)}`, v: hostileText(r) };
    lines.push(
      r.pick([
        () => malformed(r, JSON.stringify(base)),
        () => withForbiddenKey(r, base),
        () => nested(r, r.chance(0.2) ? 10_000 : r.int(65, 500)),
        () => r.pick(['[]', '"s"', '1', 'null', 'true']),
        () => `{"v":"${'o'.repeat(MB + 10)}"}`,
        () => Buffer.concat([Buffer.from('{"k":"'), Buffer.from(r.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf]])), Buffer.from('"}')]), // not UTF-8
      ])(),
    );
  }
  const body = Buffer.concat(lines.flatMap((l) => [typeof l === 'string' ? Buffer.from(l, 'utf8') : l, Buffer.from('\n')]));
  return { n, route: route.name, family: 'bulk-lines', what: `${count} hostile NDJSON lines`, req: { method: 'POST', path: route.path(t), headers: hs, body, chunked: r.chance(0.3) }, expect: 'bulk' };
}
