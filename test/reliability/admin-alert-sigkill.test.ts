/**
 * Admin alerts are durable (docs/operations-security.md): the alert row is written in the
 * transaction that commits the `error_stop`. Here the engine that noticed the error is killed
 * with SIGKILL while the notification provider (the notify stand-in, through the
 * `admin-alert` module) still refuses its tries; after a restart on the same database the
 * alert is delivered, once, and the request is still halted in `error_stop`.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { startNotifyStandin, type NotifyState } from '../../scripts/notify-standin';
import type { Standin } from '../../scripts/standin-kit';
import { readSqlite, startChildEngine } from '../support/child-engine';
import { cleanupTmpDirs, tmpDir } from '../support/tmp';
import { sleep, until } from '../intake/helpers';

const ROOT = path.resolve(__dirname, '..', '..');

describe('admin alerts survive SIGKILL of the engine that noticed the error', function () {
  this.timeout(120_000);
  const children: ChildProcess[] = [];
  const key = `alert-${randomBytes(8).toString('hex')}`;
  let notify: Standin<NotifyState>;
  let dir: string;

  before(async () => {
    notify = await startNotifyStandin({ port: 0, host: '127.0.0.1' });
    dir = tmpDir('alert-kill');
    for (const d of ['modules', 'pipelines']) fs.mkdirSync(path.join(dir, d));
    const src = JSON.stringify(path.join(ROOT, 'src'));
    fs.writeFileSync(path.join(dir, 'modules', 'alert-boom.module.ts'),
      `import { defineModule, NonRetryableError } from ${src};\nexport default defineModule({ name: 'alert-boom', async handle() { throw new NonRetryableError('the step broke'); } });\n`);
    fs.writeFileSync(path.join(dir, 'modules', 'admin-alert.module.ts'), `export { default } from ${JSON.stringify(path.join(ROOT, 'modules', 'admin-alert.module'))};\n`);
    fs.writeFileSync(path.join(dir, 'pipelines', 'alert-kill.pipeline.json'), JSON.stringify({ id: 'alert-kill', start: 'boom', steps: { boom: { subsystem: 'alert-boom' } } }));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await notify?.close();
    cleanupTmpDirs();
  });

  const startEngine = () => startChildEngine({
    DATABASE_URL: `sqlite:${path.join(dir, 'c.db')}`, CONVEYOR_API_KEYS: `${key}:admin`,
    CONVEYOR_PIPELINES_DIR: path.join(dir, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(dir, 'modules'),
    CONVEYOR_ADMIN_MODULE: 'admin-alert', NOTIFY_BASE_URL: notify.url, CONVEYOR_ADMIN_EMAIL: 'ops@example.test',
    CONVEYOR_ADMIN_RETRIES: '50', CONVEYOR_ADMIN_BACKOFF_MS: '500', CONVEYOR_ADMIN_SWEEP_MS: '100', CONVEYOR_ADMIN_TIMEOUT_MS: '3000',
  }, children);
  const read = <T>(sql: string, params: unknown[] = []): T[] => readSqlite<T>(path.join(dir, 'c.db'), sql, params);

  it('an alert not yet delivered when its engine is killed is delivered after the restart', async () => {
    // The provider refuses every try until the first engine is dead.
    notify.fault({ path: '/v1/email', status: 503, times: 1_000_000 });
    const first = await startEngine();
    const r = await fetch(`${first.url}/api/pipelines/alert-kill/requests?wait=20`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}',
    });
    const request = (await r.json()) as { id: string; status: string };
    expect(request.status).to.equal('error_stop');
    const alerts = read<{ channel: string; status: string }>('SELECT channel, status FROM admin_alerts WHERE request_id = ?', [request.id]);
    expect(alerts, 'the alert row, committed with the error_stop').to.deep.equal([{ channel: 'module:admin-alert', status: 'pending' }]);
    await until('the first engine to try', async () => (notify.state.calls['/v1/email'] ?? 0) >= 1, 20_000);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    expect(notify.state.delivered, 'nothing delivered before the kill').to.have.length(0);
    expect(read<{ status: string }>('SELECT status FROM admin_alerts WHERE request_id = ?', [request.id])[0]!.status).to.equal('pending');

    notify.reset(); // the provider works again
    await sleep(100);
    const second = await startEngine();
    try {
      const [mail] = await until('the alert e-mail', async () => (notify.state.delivered.length > 0 ? notify.state.delivered : undefined), 45_000, 100);
      expect(mail!.to).to.deep.equal(['ops@example.test']);
      expect(mail!.title).to.equal(`ERROR_STOP: alert-kill ${request.id}`);
      expect(mail!.body).to.include('the step broke');
      expect(mail!.idempotencyKey).to.match(new RegExp(`^admin-alert:${request.id}:`));
      const row = await until('the row to settle', async () => {
        const [a] = read<{ status: string; delivered_at: number | null }>('SELECT status, delivered_at FROM admin_alerts WHERE request_id = ?', [request.id]);
        return a && a.status === 'delivered' ? a : undefined;
      }, 10_000);
      expect(row.delivered_at).to.be.a('number');
      expect(notify.state.delivered).to.have.length(1);
      expect(read<{ status: string }>('SELECT status FROM requests WHERE id = ?', [request.id])[0]!.status, 'nothing continued by itself').to.equal('error_stop');
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((resolve) => second.child.once('exit', resolve));
    }
  });
});
