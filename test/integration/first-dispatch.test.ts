/**
 * `rate` at dispatch (issue "Integration", item 7): the claims of a pipeline's first dispatches
 * made in one event-loop turn go to the store together, in one transaction serialised on the
 * pipeline's gate mark, on SQLite and on MariaDB. What the claim promises: no span of `per`
 * holds more than `max` first dispatches, the claims are served in the order they were made, a
 * request that claimed before keeps its moment, and a refused one is told when a moment frees
 * up; two stores on one database (two processes) together never give more than `max`.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import type { RequestRecord } from '../../src/model';
import { GroupCommitter } from '../../src/store/group-commit';
import { SqlStore } from '../../src/store/store';
import { createMysqlDatabase } from '../support/mysql-db';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const NOW = 1_700_000_000_000;
let seq = 0;

function buffered(): RequestRecord {
  return {
    id: `fd-${String(++seq).padStart(6, '0')}-${randomBytes(3).toString('hex')}`, pipelineId: 'p', version: 1, status: 'buffered', businessKey: null, idempotencyKey: null,
    mode: null, test: false, payload: {}, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: NOW, createdAt: NOW, updatedAt: NOW, finishedAt: null,
  };
}

/** Counts the transactions the store's intake part runs (its executor's `script` calls). */
function countScripts(store: SqlStore): { n: number } {
  const x = (store.intake as unknown as { x: { script: (f: unknown) => Promise<unknown> } }).x;
  const counter = { n: 0 };
  const original = x.script.bind(x);
  x.script = (f: unknown) => {
    counter.n++;
    return original(f);
  };
  return counter;
}

for (const dialect of ['sqlite', 'mysql'] as const) {
  describe(`rate at dispatch: first-dispatch claims of one turn (${dialect})`, function () {
    this.timeout(30_000);
    let url = '';
    let dropDb: (() => Promise<void>) | undefined;
    const stores: SqlStore[] = [];

    beforeEach(async () => {
      if (dialect === 'sqlite') url = `sqlite:${path.join(tmpDir('first-dispatch'), 'fd.db')}`;
      else {
        const db = await createMysqlDatabase('conveyor_fd');
        url = db.url;
        dropDb = db.drop;
      }
    });

    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close();
      await dropDb?.();
      dropDb = undefined;
      cleanupTmpDirs();
    });

    const open = async (): Promise<SqlStore> => {
      const s = await SqlStore.open(url);
      stores.push(s);
      return s;
    };

    it('8 claims in one turn, max 5: the first 5 get the moment, in one transaction; the rest are told when to ask again', async () => {
      const store = await open();
      const reqs = Array.from({ length: 8 }, buffered);
      const committer = new GroupCommitter(store);
      await Promise.all(reqs.map((r) => committer.insertRequest(r)));
      const scripts = countScripts(store);
      const rate = { max: 5, perMs: 2000 };
      const answers = await Promise.all(reqs.map((r, i) => store.claimFirstDispatch('p', r.id, rate, NOW + i)));
      expect(scripts.n, 'one transaction for the turn').to.equal(1);
      const at = NOW + 7; // the latest `now` of the turn
      expect(answers.slice(0, 5)).to.deep.equal(Array(5).fill({ at }));
      expect(answers.slice(5)).to.deep.equal(Array(3).fill({ retryAt: at + 2000 }));
      const rows = await store.query<{ id: string; at: unknown }>("SELECT id, first_dispatch_at AS at FROM requests WHERE pipeline_id = 'p' AND first_dispatch_at IS NOT NULL ORDER BY id");
      expect(rows.map((r) => r.id)).to.deep.equal(reqs.slice(0, 5).map((r) => r.id));

      // A request that claimed keeps its moment (a start decided again); the window is full for
      // the others until the oldest moment leaves it.
      const again = await Promise.all([store.claimFirstDispatch('p', reqs[2]!.id, rate, at + 500), store.claimFirstDispatch('p', reqs[6]!.id, rate, at + 500)]);
      expect(again).to.deep.equal([{ at }, { retryAt: at + 2000 }]);
      const later = await Promise.all(reqs.slice(5).map((r) => store.claimFirstDispatch('p', r.id, rate, at + 2000)));
      expect(later).to.deep.equal(Array(3).fill({ at: at + 2000 }));
      expect(scripts.n).to.equal(3);
    });

    it('a claim or a release whose `now` predates a moment given meanwhile (it waited for the lock) takes that later moment', async () => {
      const store = await open();
      const reqs = Array.from({ length: 4 }, buffered);
      const committer = new GroupCommitter(store);
      for (const r of reqs) expect(await committer.insertKeyed({ record: { ...r, releaseAt: null }, hold: 'gate', activeKey: null, callbackUrl: null })).to.equal(true);
      const rate = { max: 10, perMs: 1000 };
      // Released in arrival order, two at a time; the second release read its clock first.
      const first = await store.intake.releaseRate('p', rate, undefined, NOW + 50, 2);
      const second = await store.intake.releaseRate('p', rate, undefined, NOW + 20, 2);
      expect([...first.ids, ...second.ids]).to.deep.equal(reqs.map((r) => r.id));
      const released = await store.query<{ at: unknown }>("SELECT release_at AS at FROM requests WHERE pipeline_id = 'p' ORDER BY created_at, id");
      expect(released.map((r) => Number(r.at))).to.deep.equal([NOW + 50, NOW + 50, NOW + 50, NOW + 50]);
      expect(await store.claimFirstDispatch('p', reqs[0]!.id, rate, NOW + 60)).to.deep.equal({ at: NOW + 60 });
      expect(await store.claimFirstDispatch('p', reqs[1]!.id, rate, NOW + 30)).to.deep.equal({ at: NOW + 60 });
    });

    it('claims of separate turns and a second store on the same database never give more than max in a window', async () => {
      const a = await open();
      const b = await open();
      const reqs = Array.from({ length: 12 }, buffered);
      const committer = new GroupCommitter(a);
      await Promise.all(reqs.map((r) => committer.insertRequest(r)));
      const rate = { max: 4, perMs: 10_000 };
      // Two "processes", each with its own turn of claims, at the same moment.
      const answers = await Promise.all(reqs.map((r, i) => (i % 2 === 0 ? a : b).claimFirstDispatch('p', r.id, rate, NOW)));
      const given = answers.filter((x) => 'at' in x);
      expect(given).to.have.length(4);
      expect(answers.filter((x) => 'retryAt' in x)).to.deep.equal(Array(8).fill({ retryAt: NOW + 10_000 }));
      const [n] = await a.query<{ n: unknown }>("SELECT COUNT(*) AS n FROM requests WHERE pipeline_id = 'p' AND first_dispatch_at IS NOT NULL");
      expect(Number(n!.n)).to.equal(4);
    });
  });
}
