import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger } from '../../src/log/logger';
import { startTestEngine, type TestEngine } from '../support/engine';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'secrets');
const SECRET = 'crm-token-S3CR3T-a1b2c3d4e5';
const PAYLOAD_PASSWORD = 'hunter2-payload-secret-77';

describe('secrets never reach the database or the logs', () => {
  let t: TestEngine;
  let dbDir: string;
  const lines: string[] = [];

  before(async () => {
    const logger = createLogger('debug');
    logger.clear();
    logger.add(new winston.transports.Stream({
      stream: new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } }),
    }));
    t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'),
      env: { CRM_TOKEN: SECRET }, logger,
    });
    dbDir = path.dirname((t.engine.store as unknown as { ds: { options: { database: string } } }).ds.options.database);
  });
  after(() => t?.close());

  it('resolves {{ secrets.X }} for the module, and stores and logs neither it nor secret-looking values', async () => {
    const res = await t.api<{ id: string; status: string; context: Record<string, { matched?: boolean; headerMatched?: boolean }> }>(
      'POST', '/api/pipelines/uses-secret/requests?wait=10', { body: { user: 'ann', password: PAYLOAD_PASSWORD, profile: { apiToken: 'payload-token-555' } } },
    );
    expect(res.status).to.equal(200);
    expect(res.body.status).to.equal('completed');
    // The module really received the secret...
    expect(res.body.context.call).to.include({ matched: true, headerMatched: true });
    // ...but the step log shows it masked.
    const steps = await t.api<{ items: Array<{ params: Record<string, unknown>; output: Record<string, unknown> }> }>('GET', `/api/requests/${res.body.id}/steps`);
    expect(steps.body.items[0]!.params).to.deep.include({ token: '[REDACTED]', header: 'Bearer [REDACTED]', user: 'ann' });
    expect(steps.body.items[0]!.output).to.deep.include({ apiKey: '[REDACTED]' });
    expect((steps.body.items[0]!.output.nested as Record<string, unknown>)).to.deep.equal({ password: '[REDACTED]', visible: 'fine' });

    await t.engine.committer.drain();
    const dbBytes = readdirSync(dbDir).filter((f) => f.startsWith('conveyor.db')).map((f) => readFileSync(path.join(dbDir, f)).toString('latin1')).join('\n');
    const log = lines.join('\n');
    expect(lines.length).to.be.greaterThan(2);
    for (const secret of [SECRET, PAYLOAD_PASSWORD, 'payload-token-555', 'module-made-key-98765', 'module-made-password-4321']) {
      expect(dbBytes.includes(secret), `database holds ${secret}`).to.equal(false);
      expect(log.includes(secret), `log holds ${secret}`).to.equal(false);
    }
    // The database does hold the request (the search is not vacuous).
    expect(dbBytes.includes(res.body.id)).to.equal(true);
    expect(log.includes(res.body.id)).to.equal(true);
  });
});
