/**
 * The participants table on real MariaDB (a fresh database for the suite): rows written by the
 * group commit in the same transaction as the steps, through both MySQL write paths (one
 * commit, and the bulk path a batch of several requests takes), and the scoped search paging
 * through them.
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { createMysqlDatabase } from '../ops/support';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requestClient } from '../workflow/support';

describe('people: participants on MariaDB', function () {
  this.timeout(120_000);
  let db: Awaited<ReturnType<typeof createMysqlDatabase>>;
  let t: TestEngine;
  let c: ReturnType<typeof requestClient>;

  before(async () => {
    db = await createMysqlDatabase();
    t = await startTestEngine({
      databaseUrl: db.url,
      pipelinesDir: path.join(__dirname, 'fixtures', 'pipelines'),
      extraKeys: 'alice=alice-key-mysql01:submit,bob=bob-key-mysql0001:submit,triage=triage-key-mysql1:triage',
    });
    c = requestClient(t);
  });
  after(async () => {
    await t?.close();
    await db?.drop();
  });

  const rows = async (id: string): Promise<string[]> =>
    (await t.engine.store.query<{ role: string; actor_id: string }>('SELECT role, actor_id FROM request_participants WHERE request_id = ? ORDER BY role, actor_id', [id]))
      .map((r) => `${r.role}:${r.actor_id}`);

  it('writes each request\'s participants with its steps, many requests at once, and scopes the search to them', async () => {
    // Twelve at once: their commits share group-commit batches (the bulk write path).
    const ids = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const who = i % 3 === 0 ? 'bob' : 'alice';
      const res = await t.api<{ id: string }>('POST', '/api/pipelines/ticket/requests', {
        key: who === 'bob' ? 'bob-key-mysql0001' : 'alice-key-mysql01', body: { customer: { id: who, phone: '+7 000' }, watchers: i === 1 ? ['bob', 'bob'] : [] },
      });
      expect(res.status, res.text).to.equal(202);
      return res.body.id;
    }));
    for (const id of ids) await c.waitingAt(id, 'open');
    await Promise.all(ids.map(async (id) => {
      const res = await c.act(id, 'assign', 'triage-key-mysql1', { agent: `agent-${id.slice(-4)}` });
      expect(res.status, res.text).to.equal(200);
    }));
    for (const [i, id] of ids.entries()) {
      await c.waitingAt(id, 'work');
      const who = i % 3 === 0 ? 'bob' : 'alice';
      const agent = `agent-${id.slice(-4)}`;
      const expected = [`agent:${agent}`, `customer:${who}`, `offered:${agent}`, `offered:${who}`, 'offered:role:triage', ...(i === 1 ? ['watcher:bob', 'offered:bob'] : [])].sort();
      expect(await rows(id), `request ${i}`).to.deep.equal(expected);
    }
    const commits = t.engine.committer.stats;
    expect(commits.items, 'some batches held several commits').to.be.greaterThan(commits.batches);

    // bob: his four tickets and the one he watches, newest first, two per page, each once.
    const mine = ids.filter((_, i) => i % 3 === 0 || i === 1);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Array<{ id: string }>; nextCursor: string | null } } =
        await t.api('GET', `/api/requests?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: 'bob-key-mysql0001' });
      expect(page.status).to.equal(200);
      seen.push(...page.body.items.map((r) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    // Ids are time-ordered, so newest first is descending id order (the cursor's tie-break too).
    expect(seen).to.deep.equal([...mine].sort().reverse());
  });
});
