/**
 * The dashboard's files as the engine serves them: open (the page asks for a key itself),
 * only the listed files, with a Content-Security-Policy that allows no foreign script.
 */
import { expect } from 'chai';
import { DASHBOARD_CSP } from '../../src/dashboard/serve';
import type { TestEngine } from '../support/engine';
import { startOpsEngine } from './support';

describe('dashboard files', function () {
  this.timeout(30_000);
  let t: TestEngine;
  before(async () => {
    t = await startOpsEngine({ listen: false });
  });
  after(async () => t?.close());

  it('serves the login page at / without a key, with a strict CSP', async () => {
    const res = await t.api('GET', '/', { key: null });
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).to.equal(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).to.include("script-src 'self';");
    expect(res.text).to.include('id="login-form"');
    expect(res.text).to.include('src="/dashboard/vendor/mermaid.min.js"');
  });

  it('serves its script, its styles and mermaid from node_modules', async () => {
    expect((await t.api('GET', '/dashboard/app.js', { key: null })).headers['content-type']).to.equal('application/javascript; charset=utf-8');
    expect((await t.api('GET', '/dashboard/app.css', { key: null })).status).to.equal(200);
    const mermaid = await t.api('GET', '/dashboard/vendor/mermaid.min.js', { key: null });
    expect(mermaid.status).to.equal(200);
    expect(mermaid.text.length).to.be.greaterThan(1_000_000);
  });

  it('serves the overview scripts and uPlot (script and styles) from node_modules', async () => {
    for (const file of ['live.js', 'roles.js', 'overview.js']) {
      const res = await t.api('GET', `/dashboard/${file}`, { key: null });
      expect(res.headers['content-type'], file).to.equal('application/javascript; charset=utf-8');
    }
    const uplot = await t.api('GET', '/dashboard/vendor/uPlot.iife.min.js', { key: null });
    expect(uplot.status).to.equal(200);
    expect(uplot.text).to.include('uPlot');
    const css = await t.api('GET', '/dashboard/vendor/uPlot.min.css', { key: null });
    expect(css.headers['content-type']).to.equal('text/css; charset=utf-8');
    expect(css.text).to.include('.uplot');
  });

  it('serves nothing else', async () => {
    for (const path of ['/dashboard/serve.ts', '/dashboard/..%2Fengine.ts', '/dashboard/%2e%2e%2fpackage.json', '/dashboard/vendor/lodash.js', '/dashboard/vendor/..%2F..%2Fpackage.json', '/dashboard/constructor']) {
      const res = await t.api<{ error: { code: string } }>('GET', path, { key: null });
      expect(res.status, path).to.equal(404);
      expect(res.body.error.code, path).to.equal('CONVEYOR_ERR_NOT_FOUND');
    }
  });
});
