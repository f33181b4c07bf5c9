/**
 * Waits that last days (issue 13 §1): a polling wait is one step run however often it polls.
 * Here the ERP stand-in keeps an order in one status for 1,100 reads, `order-to-erp` polls it
 * every millisecond, and the order still completes: the polls are counted on one run, kept in
 * its poll history, and never count toward the request's `maxSteps` (1000 by default). The
 * order reaches the ERP over RabbitMQ (`send-to-erp`), as in production.
 */
import { expect } from 'chai';
import type { ErpStandin } from '../../scripts/erp-standin';
import type { NotifyState } from '../../scripts/notify-standin';
import type { ShopStandin } from '../../scripts/shop-standin';
import type { Standin } from '../../scripts/standin-kit';
import { compilePipeline } from '../../src/pipeline/compile';
import { pollIntervalMs } from '../../src/supervisor/poll';
import { formatIssue } from '../../src/errors';
import type { TestEngine } from '../support/engine';
import { startErpWorld, type ErpWorld } from '../support/erp-world';
import { settle } from '../support/poll';

describe('long polling: a wait is one step run however often it polls', function () {
  this.timeout(180_000);

  describe('poll options', () => {
    const compile = (poll: Record<string, unknown>) => compilePipeline(
      { id: 'x', start: 'w', steps: { w: { kind: 'wait', poll: { subsystem: 'm', ...poll }, timeout: '7d' } } },
      { source: 'pipelines/x', modules: new Set(['m']) },
    );

    it('compiles every / backoff / maxEvery / maxPolls, and slows from every 10 s to every 10 min', () => {
      const { pipeline, issues } = compile({ every: '10s', backoff: 2, maxEvery: '10m', maxPolls: 5000 });
      expect(issues).to.deep.equal([]);
      const poll = (pipeline!.steps.w as { poll: Parameters<typeof pollIntervalMs>[0] }).poll;
      expect(poll).to.deep.include({ everyMs: 10_000, backoff: 2, maxEveryMs: 600_000, maxPolls: 5000, doneField: 'done' });
      expect([1, 2, 3, 6, 7, 100].map((n) => pollIntervalMs(poll, n))).to.deep.equal([10_000, 20_000, 40_000, 320_000, 600_000, 600_000]);
      const fixed = compile({ every: '300ms' }).pipeline!.steps.w as { poll: Parameters<typeof pollIntervalMs>[0] };
      expect([1, 50].map((n) => pollIntervalMs(fixed.poll, n))).to.deep.equal([300, 300]);
    });

    it('refuses a backoff below 1, a maxEvery below every, and a maxPolls that is not a positive integer', () => {
      expect(compile({ every: '10s', backoff: 0.5, maxEvery: '1s', maxPolls: 0 }).issues.map(formatIssue)).to.deep.equal([
        'pipelines/x: steps.w.poll.backoff: must be a factor from 1 to 100 (got 0.5)',
        'pipelines/x: steps.w.poll.maxEvery: must be at least "every"',
        'pipelines/x: steps.w.poll.maxPolls: must be a positive integer (got 0)',
      ]);
    });
  });

  describe('order-to-erp against an ERP that answers after 1,100 polls', () => {
    let world: ErpWorld;
    let shop: ShopStandin;
    let erp: ErpStandin;
    let notify: Standin<NotifyState>;
    let t: TestEngine;

    before(async () => {
      world = await startErpWorld({ label: 't.lp.erp', statusReads: 1100, pollEvery: '1ms', pollMaxEvery: '1ms' });
      ({ shop, erp, notify, t } = world);
    });
    after(() => world?.close());

    it('completes the order; each wait is one run whose polls are in its history, and none counts toward maxSteps', async () => {
      const order = { event: 'order.created', order_id: 'ORD-SLOW', user_id: 'U-1', items: [{ product_id: '1001', quantity: 1 }], total: 100, customer: { email: 'slow@example.com' } };
      const sent = await t.api<{ id: string }>('POST', '/api/pipelines/order-to-erp/requests', { body: order });
      expect(sent.status).to.equal(202);
      const id = sent.body.id;
      const view = await settle(async () => (await t.api<{ status: string; error: unknown }>('GET', `/api/requests/${id}`)).body, (v) => !['buffered', 'running', 'waiting'].includes(v.status), { timeoutMs: 150_000, everyMs: 250 });
      expect(view.status, JSON.stringify(view.error)).to.equal('completed');
      const erpOrder = [...erp.orders.values()].find((o) => o.orderId === 'ORD-SLOW')!;
      expect(erpOrder.status).to.equal('completed');
      expect(erpOrder.reads).to.be.greaterThan(2000);
      expect(shop.orders.get('ORD-SLOW')).to.include({ status: 'completed' });

      const steps = await t.api<{ items: Array<{ id: string; stepId: string; status: string; polls: number; endedBy: string; output: { status: string } }> }>('GET', `/api/requests/${id}/steps`);
      const waits = steps.body.items.filter((s) => s.stepId === 'follow-erp-status');
      // accepted (news at once), then processing after 1,100 reads, then completed after 1,100 more.
      expect(waits.map((w) => [w.status, w.endedBy, w.output.status])).to.deep.equal([
        ['completed', 'poll', 'accepted'], ['completed', 'poll', 'processing'], ['completed', 'poll', 'completed'],
      ]);
      expect(waits[1]!.polls).to.be.greaterThan(1000);
      expect(waits[2]!.polls).to.be.greaterThan(1000);
      // Every poll read the ERP: the document's status, or (before the ERP took the order from its queue) a 404.
      expect(waits.reduce((n, w) => n + w.polls, 0)).to.equal(erpOrder.reads! + (erp.misses.get('ORD-SLOW') ?? 0));
      // Every step run, polls aside: far below the default budget of 1000.
      expect(steps.body.items.length).to.be.lessThan(20);
      const [row] = await t.engine.store.query<{ step_count: unknown }>('SELECT step_count FROM requests WHERE id = ?', [id]);
      expect(Number(row!.step_count)).to.equal(steps.body.items.length);

      // The poll history, a page at a time: every poll, numbered, the last one done.
      const first = await t.api<{ items: Array<{ n: number; output: { status: string; changed: boolean } }>; nextCursor: string | null }>('GET', `/api/requests/${id}/steps/${waits[1]!.id}/polls`);
      expect(first.body.items).to.have.length(1000);
      expect(first.body.nextCursor).to.equal('1000');
      const rest = await t.api<{ items: Array<{ n: number; output: { status: string; changed: boolean } }>; nextCursor: string | null }>('GET', `/api/requests/${id}/steps/${waits[1]!.id}/polls?after=1000`);
      const all = [...first.body.items, ...rest.body.items];
      expect(all.map((p) => p.n)).to.deep.equal(Array.from({ length: waits[1]!.polls }, (_v, i) => i + 1));
      expect(all.at(-1)!.output).to.include({ status: 'processing', changed: true });
      expect(all.slice(0, -1).every((p) => p.output.status === 'accepted' && !p.output.changed)).to.equal(true);
      expect(notify.state.delivered.filter((m) => m.to.includes('slow@example.com')).map((m) => m.title)).to.deep.equal([
        'Order ORD-SLOW: accepted', 'Order ORD-SLOW: processing', 'Order ORD-SLOW: completed',
      ]);
    });

    it('refuses a resume body whose maxSteps is not a positive integer', async () => {
      const order = { event: 'order.created', order_id: 'ORD-BAD-RESUME', user_id: 'U-1', items: [{ product_id: '1001', quantity: 1 }], total: 100 };
      const sent = await t.api<{ id: string }>('POST', '/api/pipelines/order-to-erp/requests', { body: order });
      const r = await t.api<{ error: { code: string; message: string } }>('POST', `/api/requests/${sent.body.id}/resume`, { body: { maxSteps: 0 } });
      expect(r.status).to.equal(400);
      expect(r.body.error.code).to.equal('CONVEYOR_ERR_BAD_BODY');
      await t.api('POST', `/api/requests/${sent.body.id}/stop`, { body: {} });
    });
  });
});
