/**
 * `GET /openapi.json` describes every route the Koa routers register (and nothing else), and
 * real answers match the documented schemas, status by status.
 */
import type Router from '@koa/router';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import type Koa from 'koa';
import { createApp } from '../../src/api/app';
import { KeyRing } from '../../src/api/auth';
import type { ApiResponse, TestEngine } from '../support/engine';
import { startOpsEngine } from './support';

interface Doc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
}

/** Every (METHOD path) the app's routers register, with Koa's `:param` written as OpenAPI's `{param}`. */
export function registeredRoutes(app: Koa): string[] {
  const routes = new Set<string>();
  for (const mw of app.middleware as Array<{ router?: Router }>) {
    for (const layer of mw.router?.stack ?? []) {
      for (const method of layer.methods) {
        if (method === 'HEAD') continue;
        routes.add(`${method} ${String(layer.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
      }
    }
  }
  return [...routes].sort();
}

describe('OpenAPI document', function () {
  this.timeout(60_000);
  let t: TestEngine;
  let doc: Doc;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);

  before(async () => {
    t = await startOpsEngine();
    const res = await t.api<Doc>('GET', '/openapi.json', { key: null });
    expect(res.status).to.equal(200);
    doc = res.body;
    ajv.addSchema(doc, 'openapi');
  });
  after(async () => t?.close());

  /** Checks that the answer's status is documented for the route and that its body matches the schema. */
  function conforms(method: string, path: string, res: ApiResponse): void {
    const op = doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${method} ${path} is documented`).to.not.equal(undefined);
    const documented = op!.responses[String(res.status)];
    expect(documented, `${method} ${path} documents status ${res.status} (body: ${res.text.slice(0, 200)})`).to.not.equal(undefined);
    const type = (res.headers['content-type'] ?? '').split(';')[0]!;
    const content = documented!.content;
    if (!content) return;
    expect(Object.keys(content), `${method} ${path} ${res.status} content type`).to.include(type);
    if (type !== 'application/json' && type !== 'application/x-ndjson') return;
    const pointer = `openapi#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/responses/${res.status}/content/${type.replace(/\//g, '~1')}/schema`;
    const validate = ajv.getSchema(pointer);
    expect(validate, pointer).to.not.equal(undefined);
    const bodies = type === 'application/x-ndjson' ? res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown) : [res.body];
    for (const body of bodies) {
      const ok = validate!(body);
      expect(ok, `${method} ${path} ${res.status}: ${ajv.errorsText(validate!.errors)}\n${JSON.stringify(body).slice(0, 600)}`).to.equal(true);
    }
  }

  it('describes every registered route, and no route that does not exist', () => {
    const app = createApp(t.engine, new KeyRing(t.engine.store, 'openapi-test-key:admin'));
    const registered = registeredRoutes(app);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect(registered.length).to.be.greaterThan(15);
    expect(registered.filter((r) => !documented.includes(r)), 'registered but not in src/api/openapi.ts').to.deep.equal([]);
    expect(documented.filter((r) => !registered.includes(r)), 'documented but not registered').to.deep.equal([]);
  });

  it('is an OpenAPI 3.1 document whose schemas compile', () => {
    expect((doc as unknown as { openapi: string }).openapi).to.equal('3.1.0');
    for (const name of Object.keys((doc as unknown as { components: { schemas: object } }).components.schemas)) {
      expect(ajv.getSchema(`openapi#/components/schemas/${name}`), name).to.be.a('function');
    }
  });

  it('matches the answers of the operations routes', async () => {
    conforms('GET', '/healthz', await t.api('GET', '/healthz', { key: null }));
    conforms('GET', '/readyz', await t.api('GET', '/readyz', { key: null }));
    conforms('GET', '/openapi.json', await t.api('GET', '/openapi.json', { key: null }));
    conforms('GET', '/metrics', await t.api('GET', '/metrics', { key: t.keys.read }));
    conforms('GET', '/metrics', await t.api('GET', '/metrics', { key: null }));
    conforms('GET', '/metrics', await t.api('GET', '/metrics', { key: t.keys.submit }));
  });

  it('matches the answers of submitting and reading requests', async () => {
    const submitted = await t.api<{ id: string }>('POST', '/api/pipelines/orders/requests', { body: { sku: 'a' }, key: t.keys.submit });
    conforms('POST', '/api/pipelines/{id}/requests', submitted);
    expect(submitted.status).to.equal(202);
    const waited = await t.api<{ id: string }>('POST', '/api/pipelines/orders/requests?wait=10', { body: { sku: 'b', flaky: true } });
    expect(waited.status).to.equal(200);
    conforms('POST', '/api/pipelines/{id}/requests', waited);
    conforms('POST', '/api/pipelines/{id}/requests', await t.api('POST', '/api/pipelines/orders/requests', { raw: '{bad' }));
    conforms('POST', '/api/pipelines/{id}/requests', await t.api('POST', '/api/pipelines/nope/requests', { body: {} }));
    conforms('POST', '/api/pipelines/{id}/requests', await t.api('POST', '/api/pipelines/orders/requests', { body: {}, key: t.keys.read }));
    conforms('POST', '/api/pipelines/{id}/requests', await t.api('POST', '/api/pipelines/orders/requests', { body: {}, key: null }));
    const bulk = await t.api('POST', '/api/pipelines/orders/requests/bulk', { raw: '{"sku":"c"}\n[1]\n{"sku":"d"}\n', headers: { 'content-type': 'application/x-ndjson' } });
    expect(bulk.status).to.equal(200);
    conforms('POST', '/api/pipelines/{id}/requests/bulk', bulk);

    const id = waited.body.id;
    conforms('GET', '/api/requests/{id}', await t.api('GET', `/api/requests/${id}`));
    conforms('GET', '/api/requests/{id}', await t.api('GET', '/api/requests/01a20187-df0f-7000-b8ea-bf397f8d5898'));
    conforms('GET', '/api/requests/{id}/steps', await t.api('GET', `/api/requests/${id}/steps`));
    conforms('GET', '/api/requests', await t.api('GET', '/api/requests?limit=2'));
    conforms('GET', '/api/requests', await t.api('GET', '/api/requests?limit=0'));
    conforms('GET', '/api/steps', await t.api('GET', '/api/steps?pipeline=orders&limit=3'));
    conforms('GET', '/api/steps', await t.api('GET', '/api/steps?status=nope'));
    conforms('GET', '/api/pipelines', await t.api('GET', '/api/pipelines'));
    conforms('GET', '/api/pipelines/{id}', await t.api('GET', '/api/pipelines/orders'));
    conforms('GET', '/api/pipelines/{id}', await t.api('GET', '/api/pipelines/refund'));
    conforms('GET', '/api/pipelines/{id}', await t.api('GET', '/api/pipelines/nope'));
    conforms('POST', '/api/callbacks/{token}', await t.api('POST', '/api/callbacks/not-a-token', { body: { data: {} }, key: null }));
  });

  it('matches the answers of the dashboard routes, the live event stream included', async () => {
    conforms('GET', '/api/me', await t.api('GET', '/api/me', { key: t.keys.read }));
    conforms('GET', '/api/overview', await t.api('GET', '/api/overview'));
    conforms('GET', '/api/overview', await t.api('GET', '/api/overview', { key: t.keys.submit }));
    conforms('GET', '/api/live', await t.api('GET', '/api/live', { key: t.keys.submit }));
    // The stream: status and content type as documented, and the first event's data against
    // the schema the document gives for it (x-conveyor-event-data).
    const abort = new AbortController();
    const res = await fetch(`${t.url}/api/live`, { headers: { authorization: `Bearer ${t.keys.read}` }, signal: abort.signal });
    let text = '';
    const reader = res.body!.getReader();
    while (!text.includes('\n\n', text.indexOf('event: overview'))) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    conforms('GET', '/api/live', { status: res.status, body: null, text: '', headers: { 'content-type': res.headers.get('content-type') ?? '' } });
    const event = /event: overview\ndata: (.*)\n\n/.exec(text);
    expect(event, text.slice(0, 300)).to.not.equal(null);
    const validate = ajv.getSchema('openapi#/paths/~1api~1live/get/responses/200/content/text~1event-stream/x-conveyor-event-data');
    expect(validate, 'the event schema').to.be.a('function');
    expect(validate!(JSON.parse(event![1]!)), ajv.errorsText(validate!.errors)).to.equal(true);
  });

  it('matches the answers of actions, resume, stop, events and the audit trail', async () => {
    const ring = new KeyRing(t.engine.store, 'openapi-approver-key:approver+read');
    const approverKey = await ring.create('approver', ['approver', 'read']);
    const waiting = await t.api<{ id: string }>('POST', '/api/pipelines/refund/requests?wait=1', { body: { amount: 10 } });
    const id = waiting.body.id;
    const view = await t.api<{ status: string; actions: unknown[] }>('GET', `/api/requests/${id}`, { key: approverKey });
    conforms('GET', '/api/requests/{id}', view);
    expect(view.body.status).to.equal('waiting');
    expect(view.body.actions).to.have.length(2);
    conforms('POST', '/api/requests/{id}/actions/{code}', await t.api('POST', `/api/requests/${id}/actions/approve`, { key: t.keys.read }));
    conforms('POST', '/api/requests/{id}/actions/{code}', await t.api('POST', `/api/requests/${id}/actions/approve`, { key: approverKey }));
    conforms('POST', '/api/requests/{id}/actions/{code}', await t.api('POST', `/api/requests/${id}/actions/approve`, { key: approverKey }));

    const stoppable = await t.api<{ id: string }>('POST', '/api/pipelines/refund/requests?wait=1', { body: { amount: 20 } });
    conforms('POST', '/api/requests/{id}/stop', await t.api('POST', `/api/requests/${stoppable.body.id}/stop`, { body: { reason: 'duplicate' } }));
    conforms('POST', '/api/requests/{id}/stop', await t.api('POST', `/api/requests/${stoppable.body.id}/stop`, { body: {} }));

    const failing = await t.api<{ id: string; status: string }>('POST', '/api/pipelines/orders/requests?wait=10', { body: { sku: 'x', failUntil: Date.now() + 300 } });
    expect(failing.body.status).to.equal('error_stop');
    await new Promise((r) => setTimeout(r, 350));
    conforms('POST', '/api/requests/{id}/resume', await t.api('POST', `/api/requests/${failing.body.id}/resume`, { body: {} }));
    conforms('POST', '/api/requests/{id}/resume', await t.api('POST', `/api/requests/${id}/resume`, { key: t.keys.read }));
    conforms('GET', '/api/requests/{id}/audit', await t.api('GET', `/api/requests/${failing.body.id}/audit`));

    conforms('POST', '/api/events/{name}', await t.api('POST', '/api/events/parcel-delivered', { body: { key: 'k-1', data: { at: 'now' } } }));
    conforms('POST', '/api/events/{name}', await t.api('POST', '/api/events/parcel-delivered', { body: { data: {} } }));
  });
});
