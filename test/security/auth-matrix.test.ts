import { expect } from 'chai';
import type Router from '@koa/router';
import { createApp } from '../../src/api/app';
import { KeyRing } from '../../src/api/auth';
import { startTestEngine, type TestEngine } from '../support/engine';

type Role = 'none' | 'submit' | 'read' | 'operate' | 'admin';
const ID = '01a20185-0000-7000-8000-000000000000';

/**
 * Every /api route and the roles that may call it. `any` means any valid key (the route checks
 * finer rules itself, e.g. an action's `allow` roles). The last test proves the table is complete.
 */
const MATRIX: Array<{ method: string; path: string; allowed: Role[] | 'any'; body?: unknown; stream?: true }> = [
  { method: 'POST', path: '/api/pipelines/hello/requests', allowed: ['submit', 'admin'], body: { name: 'x' } },
  { method: 'POST', path: '/api/pipelines/hello/requests/bulk', allowed: ['submit', 'admin'] },
  // Reads of requests are scoped by actor (issue 12 §2), not refused by role: a key without
  // `read` gets 404 for a request it does not take part in (test/people/scoping.test.ts).
  { method: 'GET', path: `/api/requests/${ID}`, allowed: 'any' },
  { method: 'GET', path: `/api/requests/${ID}/steps`, allowed: 'any' },
  { method: 'GET', path: `/api/requests/${ID}/audit`, allowed: 'any' },
  { method: 'GET', path: `/api/requests/${ID}/steps/${ID}/polls`, allowed: ['read', 'operate', 'admin'] },
  { method: 'GET', path: '/api/requests', allowed: 'any' },
  { method: 'GET', path: '/api/actions', allowed: 'any' },
  { method: 'GET', path: '/api/steps', allowed: ['read', 'operate', 'admin'] },
  { method: 'GET', path: '/api/pipelines', allowed: ['read', 'operate', 'admin'] },
  { method: 'GET', path: '/api/sources', allowed: ['read', 'operate', 'admin'] },
  { method: 'GET', path: '/api/pipelines/hello', allowed: ['read', 'operate', 'admin'] },
  { method: 'POST', path: `/api/requests/${ID}/resume`, allowed: ['operate', 'admin'], body: {} },
  { method: 'POST', path: `/api/requests/${ID}/stop`, allowed: ['operate', 'admin'], body: {} },
  { method: 'POST', path: `/api/requests/${ID}/migrate`, allowed: ['operate', 'admin'], body: { toVersion: 2 } },
  { method: 'POST', path: '/api/pipelines/hello/migrations', allowed: ['operate', 'admin'], body: { fromVersion: 1, plan: { toVersion: 1 } } },
  { method: 'GET', path: `/api/migrations/${ID}`, allowed: ['operate', 'admin'] },
  { method: 'GET', path: '/api/pipelines/hello/versions', allowed: ['read', 'operate', 'admin'] },
  { method: 'GET', path: '/api/pipelines/hello/diff', allowed: ['read', 'operate', 'admin'] },
  { method: 'POST', path: '/api/events/sale', allowed: ['submit', 'admin'], body: { key: 'k' } },
  { method: 'POST', path: `/api/requests/${ID}/actions/approve`, allowed: 'any', body: {} },
  { method: 'GET', path: '/api/me', allowed: 'any' },
  { method: 'GET', path: '/api/overview', allowed: ['read', 'operate', 'admin'] },
  // An event stream never ends: only its status and first bytes are read.
  { method: 'GET', path: '/api/live', allowed: ['read', 'operate', 'admin'], stream: true },
];

/** Status and error body of a call whose answer may be an endless stream. */
async function callOnce(url: string, key: string | null): Promise<{ status: number; text: string; body: { error?: { code: string } } }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {}, signal: abort.signal });
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, text: '(event stream)', body: {} };
  }
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { error?: { code: string } } };
}

/** Routes that are public on purpose (their own credential, or none needed). */
const PUBLIC = new Set(['POST /api/callbacks/:token']);

describe('auth: every /api route × every role', () => {
  let t: TestEngine;
  const keys: Record<Role, string | null> = { none: null, submit: '', read: '', operate: 'operate-key-0001', admin: '' };

  before(async () => {
    t = await startTestEngine({ extraKeys: `${keys.operate}:operate` });
    keys.submit = t.keys.submit;
    keys.read = t.keys.read;
    keys.admin = t.keys.admin;
  });
  after(() => t?.close());

  for (const route of MATRIX) {
    it(`${route.method} ${route.path.replace(ID, ':id')}: ${route.allowed === 'any' ? 'any key' : route.allowed.join(', ')}`, async () => {
      for (const role of ['none', 'submit', 'read', 'operate', 'admin'] as Role[]) {
        const res = route.stream ? await callOnce(`${t.url}${route.path}`, keys[role]) : await t.api<{ error?: { code: string } }>(route.method, route.path, {
          key: keys[role], ...(route.body === undefined ? { raw: '', headers: { 'content-type': 'application/x-ndjson' } } : { body: route.body }),
        });
        const allowed = role !== 'none' && (route.allowed === 'any' || route.allowed.includes(role));
        if (role === 'none') expect(res.status, `${role}: ${res.text}`).to.equal(401);
        else if (allowed) expect([401, 403], `${role} should pass auth: ${res.status} ${res.text}`).to.not.include(res.status);
        else {
          expect(res.status, `${role}: ${res.text}`).to.equal(403);
          expect(res.body.error?.code).to.equal('CONVEYOR_ERR_FORBIDDEN');
        }
      }
    });
  }

  it('answers 401 for unknown /api routes without a key, and 404 with one', async () => {
    expect((await t.api('GET', '/api/nothing-here', { key: null })).status).to.equal(401);
    expect((await t.api('GET', '/api/nothing-here')).status).to.equal(404);
    expect((await t.api('GET', '/healthz', { key: null })).status).to.equal(200);
  });

  it('covers every registered /api route (a new route must be added to this matrix)', () => {
    const app = createApp(t.engine, new KeyRing(t.engine.store, `${t.keys.admin}:admin`));
    const registered = new Set<string>();
    for (const mw of app.middleware as Array<{ router?: Router }>) {
      for (const layer of mw.router?.stack ?? []) {
        if (typeof layer.path !== 'string' || !layer.path.startsWith('/api')) continue;
        for (const m of layer.methods.filter((x) => x !== 'HEAD')) registered.add(`${m} ${layer.path}`);
      }
    }
    // Compare shapes: every `:param` (and every concrete id, name or code in the table) is one slot.
    const shape = (route: string): string => route.replaceAll(ID, ':p').replace(/\/(hello|sale|approve)(?=\/|$)/g, '/:p').replace(/:\w+/g, ':p');
    const covered = new Set([...MATRIX.map((r) => shape(`${r.method} ${r.path}`)), ...[...PUBLIC].map(shape)]);
    expect([...registered].filter((r) => !covered.has(shape(r)))).to.deep.equal([]);
    expect(registered.size).to.be.greaterThan(8);
  });
});
