/**
 * A business key's hand-over when its request ends (`onConflict: 'queue'`): the key goes to
 * the oldest request queued for it. On SQLite the hand-overs of one event-loop turn are one
 * transaction; on MariaDB one by one (the unique index decides between processes). Both give
 * the same answers: each ended request's key to its oldest live waiter (a waiter stopped
 * meanwhile only loses its hold), a key kept under `reuse` when nobody waits, nothing for a
 * request still active.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { expect } from 'chai';
import type { RequestRecord } from '../../src/model';
import { GroupCommitter } from '../../src/store/group-commit';
import type { Hold } from '../../src/store/rows';
import { SqlStore } from '../../src/store/store';
import { createMysqlDatabase } from '../support/mysql-db';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';

const T0 = 1_700_000_000_000;
let seq = 0;

function record(key: string): RequestRecord {
  const at = T0 + ++seq;
  return {
    id: `kh-${String(seq).padStart(6, '0')}-${randomBytes(3).toString('hex')}`, pipelineId: 'p', version: 1, status: 'buffered', businessKey: key, idempotencyKey: null,
    mode: null, test: false, payload: {}, error: null, joins: {}, stepCount: 0, rev: 0, releaseAt: null, createdAt: at, updatedAt: at, finishedAt: null,
  };
}

for (const dialect of ['sqlite', 'mysql'] as const) {
  describe(`business key hand-over when a request ends (${dialect})`, function () {
    this.timeout(30_000);
    let store: SqlStore;
    let drop: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      let url = `sqlite:${path.join(tmpDir('key-handover'), 'kh.db')}`;
      if (dialect === 'mysql') {
        const db = await createMysqlDatabase('conveyor_kh');
        url = db.url;
        drop = db.drop;
      }
      store = await SqlStore.open(url);
    });

    afterEach(async () => {
      await store.close();
      await drop?.();
      drop = undefined;
      cleanupTmpDirs();
    });

    const insert = async (key: string, hold: Hold, holds: boolean): Promise<RequestRecord> => {
      const r = record(key);
      expect(await new GroupCommitter(store).insertKeyed({ record: r, hold, activeKey: holds ? key : null, callbackUrl: null })).to.equal(true);
      return r;
    };
    const row = async (id: string) => (await store.query<{ status: string; hold: string | null; active_key: string | null; release_at: unknown }>('SELECT status, hold, active_key, release_at FROM requests WHERE id = ?', [id]))[0]!;
    const end = (id: string, status = 'completed') => store.query(`UPDATE requests SET status = '${status}' WHERE id = ?`, [id]);

    it('the keys of requests ending in one turn go to their oldest live waiters; kept and active keys stay', async () => {
      // K1: holder + two waiters (the older one promoted). K2: holder + a waiter stopped
      // meanwhile + a live one (the live one promoted). K3: holder, nobody waits, kept under
      // reuse. K4: holder, nobody waits, not kept: the key is freed. K5: holder still running.
      const h1 = await insert('K1', null, true);
      const w1a = await insert('K1', 'key', false);
      const w1b = await insert('K1', 'key', false);
      const h2 = await insert('K2', null, true);
      const w2stopped = await insert('K2', 'key', false);
      const w2 = await insert('K2', 'key', false);
      const h3 = await insert('K3', null, true);
      const h4 = await insert('K4', null, true);
      const h5 = await insert('K5', null, true);
      for (const r of [h1, h2, h3, h4]) await end(r.id);
      await end(w2stopped.id, 'stopped');
      await store.query("UPDATE requests SET status = 'running' WHERE id = ?", [h5.id]);

      const keep = (key: string) => () => key === 'K3';
      const x = (store.intake as unknown as { x: { script: (f: unknown) => Promise<unknown> } }).x;
      const script = x.script.bind(x);
      let transactions = 0;
      x.script = (f: unknown) => (transactions++, script(f));
      const answers = await Promise.all([h1, h2, h3, h4, h5].map((r) => store.intake.handOverKey(r.id, keep(String(r.businessKey)), () => false)));
      expect(answers).to.deep.equal([
        { pipelineId: 'p', key: 'K1', promoted: w1a.id },
        { pipelineId: 'p', key: 'K2', promoted: w2.id },
        undefined,
        { pipelineId: 'p', key: 'K4' },
        undefined,
      ]);
      expect(transactions, 'SQLite: the five hand-overs of the turn in one transaction').to.equal(dialect === 'sqlite' ? 1 : 0);
      expect(await row(w1a.id)).to.include({ active_key: 'K1', hold: null });
      expect(Number((await row(w1a.id)).release_at)).to.be.greaterThan(T0);
      expect(await row(w1b.id)).to.include({ active_key: null, hold: 'key' });
      expect(await row(w2stopped.id)).to.include({ active_key: null, hold: null });
      expect(await row(w2.id)).to.include({ active_key: 'K2' });
      expect(await row(h1.id)).to.include({ active_key: null });
      expect(await row(h3.id), 'kept under reuse').to.include({ active_key: 'K3' });
      expect(await row(h4.id)).to.include({ active_key: null });
      expect(await row(h5.id), 'still running').to.include({ active_key: 'K5' });

      // The promoted waiter ends in turn: the next one takes the key; gated, it waits for the gate.
      await end(w1a.id);
      expect(await store.intake.handOverKey(w1a.id, () => false, () => true)).to.deep.equal({ pipelineId: 'p', key: 'K1', promoted: w1b.id });
      expect(await row(w1b.id)).to.deep.include({ active_key: 'K1', hold: 'gate', release_at: null });
    });
  });
}
