/**
 * The dashboard overview API (docs/dashboard.md) on SQLite and on MariaDB: open counts per
 * pipeline, what ended in the last hour, per-minute throughput and error rate, the slowest
 * steps by nearest-rank p50 / p95, and the live stream (`GET /api/live`) sending a new
 * overview when something happens.
 */
import { expect } from 'chai';
import type { OverviewView } from '../../src/api/overview-view';
import type { TestEngine } from '../support/engine';
import { createMysqlDatabase, startOpsEngine, submitMix, type Mix } from './support';

/** Reads `overview` events from `GET /api/live` as they come. */
async function openLive(t: TestEngine, key: string): Promise<{ next(deadlineMs: number): Promise<OverviewView>; close(): void }> {
  const abort = new AbortController();
  const res = await fetch(`${t.url}/api/live`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(deadlineMs) {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const m = /event: overview\ndata: (.*)\n\n/.exec(buffer);
        if (m) {
          buffer = buffer.slice(m.index + m[0].length);
          return JSON.parse(m[1]!) as OverviewView;
        }
        if (Date.now() > deadline) throw new Error('no overview event in time');
        const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(1, deadline - Date.now())))]);
        if (chunk?.value) buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
    close: () => abort.abort(),
  };
}

for (const target of ['sqlite', 'mariadb'] as const) {
  describe(`dashboard overview API on ${target}`, function () {
    this.timeout(90_000);
    let t: TestEngine;
    let mix: Mix;
    let drop: (() => Promise<void>) | undefined;

    before(async () => {
      let databaseUrl: string | undefined;
      if (target === 'mariadb') {
        const db = await createMysqlDatabase();
        databaseUrl = db.url;
        drop = db.drop;
      }
      t = await startOpsEngine({ databaseUrl, env: { CONVEYOR_LIVE_INTERVAL_MS: '150' } });
      mix = await submitMix(t);
      await t.api('POST', '/api/pipelines/refund/requests?wait=1', { body: { amount: 5 } });
    });
    after(async () => {
      await t?.close();
      await drop?.();
    });

    const pipeline = (v: OverviewView, id: string) => v.pipelines.find((p) => p.id === id)!;

    it('counts open requests now and requests ended in the last hour, per pipeline', async () => {
      const r = await t.api<OverviewView>('GET', '/api/overview', { key: t.keys.read });
      expect(r.status).to.equal(200);
      expect(r.body.pipelines.map((p) => p.id)).to.deep.equal(['greet', 'orders', 'refund']);
      expect(pipeline(r.body, 'refund').open).to.deep.equal({ buffered: 0, running: 0, waiting: 1, error_stop: 0 });
      expect(pipeline(r.body, 'orders').open).to.include({ error_stop: mix.failed.length, waiting: 0 });
      const ordersDone = mix.standard.length + mix.express.length + mix.flaky.length + mix.test.length;
      expect(pipeline(r.body, 'orders').lastHour).to.deep.equal({ completed: ordersDone, error_stop: mix.failed.length, stopped: 0 });
      expect(pipeline(r.body, 'greet').lastHour).to.deep.equal({ completed: mix.greet.length, error_stop: 0, stopped: 0 });
    });

    it('gives 60 one-minute points whose sums match what arrived and ended, with the error rate', async () => {
      const { body } = await t.api<OverviewView>('GET', '/api/overview', { key: t.keys.read });
      expect(body.bucketSeconds).to.equal(60);
      expect(body.series).to.have.length(60);
      const sum = (k: 'created' | 'completed' | 'errorStop') => body.series.reduce((n, p) => n + p[k], 0);
      expect(sum('created')).to.equal(mix.all.length + 1);
      expect(sum('completed')).to.equal(mix.all.length - mix.failed.length);
      expect(sum('errorStop')).to.equal(mix.failed.length);
      const busy = body.series.filter((p) => p.errorRate !== null);
      expect(busy.length).to.be.at.least(1);
      const ended = busy.reduce((n, p) => n + p.completed + p.errorStop + p.stopped, 0);
      expect(busy.reduce((n, p) => n + p.errorRate! * (p.completed + p.errorStop + p.stopped), 0) / ended).to.be.closeTo(mix.failed.length / (mix.all.length), 1e-9);
      expect(body.series.filter((p) => p.errorRate === null).every((p) => p.completed + p.errorStop + p.stopped === 0)).to.equal(true);
    });

    it('ranks the slowest steps by p95, p50 and p95 by nearest rank', async () => {
      // Known durations for the five `ship-standard` attempts: p50 is the 3rd, p95 the 5th.
      const runs = await t.engine.store.query<{ id: string }>("SELECT id FROM step_runs WHERE step_id = 'ship-standard' AND duration_ms IS NOT NULL ORDER BY id", []);
      expect(runs.length).to.equal(mix.standard.length + mix.flaky.length + mix.test.length);
      const durations = [900, 100, 500, 300, 700];
      // The start moves back with the duration, so each row stays truthful (durationMs = finishedAt - startedAt).
      for (const [i, r] of runs.entries()) await t.engine.store.query('UPDATE step_runs SET duration_ms = ?, started_at = finished_at - ? WHERE id = ?', [durations[i], durations[i], r.id]);
      const { body } = await t.api<OverviewView>('GET', '/api/overview', { key: t.keys.read });
      expect(body.slowSteps[0]).to.deep.equal({ pipeline: 'orders', stepId: 'ship-standard', count: 5, p50Ms: 500, p95Ms: 900, maxMs: 900 });
      for (const s of body.slowSteps) expect(s.p50Ms).to.be.at.most(s.p95Ms).and.at.most(s.maxMs);
      expect(body.slowSteps.map((s) => s.p95Ms)).to.deep.equal([...body.slowSteps.map((s) => s.p95Ms)].sort((a, b) => b - a));
    });

    it('streams the overview at once, then again when a request arrives and ends', async () => {
      const live = await openLive(t, t.keys.read);
      try {
        const first = await live.next(10_000);
        expect(pipeline(first, 'greet').lastHour.completed).to.equal(mix.greet.length);
        const r = await t.api<{ status: string }>('POST', '/api/pipelines/greet/requests?wait=10', { body: { n: 99 } });
        expect(r.body.status).to.equal('completed');
        let seen = first;
        const deadline = Date.now() + 20_000;
        while (pipeline(seen, 'greet').lastHour.completed !== mix.greet.length + 1) seen = await live.next(deadline - Date.now());
        expect(seen.marker).to.not.equal(first.marker);
      } finally {
        live.close();
      }
    });

    it('tells the caller its roles, for the buttons the dashboard may show', async () => {
      expect((await t.api('GET', '/api/me', { key: t.keys.read })).body).to.deep.equal({
        name: 'env#3', actor: 'env#3', actorName: null, via: 'key:env#3', roles: ['read'], may: { submit: false, read: true, operate: false, admin: false, delegate: false },
      });
      expect((await t.api<{ may: object }>('GET', '/api/me', { key: t.keys.admin })).body.may).to.deep.equal({ submit: true, read: true, operate: true, admin: true, delegate: true });
    });
  });
}
