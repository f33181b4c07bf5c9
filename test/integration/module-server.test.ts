import { expect } from 'chai';
import type { Server } from 'node:http';
import path from 'node:path';
import { createLogger } from '../../src/log/logger';
import { loadModules, type RegisteredModule } from '../../src/module/registry';
import { defineModule, NonRetryableError } from '../../src';
import { createModuleServer, listenModuleServer } from '../../src/transports/module-server';
import { startTestEngine } from '../support/engine';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'module-server');

describe('conveyor module-server: TypeScript modules over the HTTP module protocol', () => {
  let server: Server;
  let url: string;

  before(async () => {
    const hello = loadModules(path.join(__dirname, '..', '..', 'modules')).registry.get('hello')!;
    const picky: RegisteredModule = {
      name: 'picky', transport: 'event', source: 'test',
      def: defineModule<{ bad?: string }>({ name: 'picky', async handle({ params }) {
        if (params.bad === 'hard') throw new NonRetryableError('bad input');
        if (params.bad === 'soft') throw new Error('try later');
        return { ok: true };
      } }) as RegisteredModule['def'],
    };
    ({ server, url } = await listenModuleServer(createModuleServer([hello, picky], createLogger('error')), '127.0.0.1', 0));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const call = (name: string, params: Record<string, unknown>) =>
    fetch(`${url}/modules/${name}`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: 'r', pipeline: 'p', stepId: 's', attempt: 1, idempotencyKey: 'k', test: false, params, context: {} }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

  it('answers 200 {data} with the module output', async () => {
    expect(await call('hello', { name: 'Ada' })).to.deep.equal({ status: 200, body: { data: { greeting: 'Hello, Ada' } } });
  });

  it('answers 422 for a NonRetryableError and 500 for any other failure', async () => {
    const hard = await call('picky', { bad: 'hard' });
    expect(hard.status).to.equal(422);
    expect(hard.body.error).to.deep.include({ code: 'CONVEYOR_ERR_NON_RETRYABLE', message: 'bad input' });
    const soft = await call('picky', { bad: 'soft' });
    expect(soft.status).to.equal(500);
    expect(soft.body.error).to.deep.include({ message: 'try later' });
  });

  it('answers 404 for a module it does not host and 400 for a body that is not the protocol', async () => {
    expect((await call('nobody', {})).status).to.equal(404);
    const bad = await fetch(`${url}/modules/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' });
    expect(bad.status).to.equal(400);
  });

  it('serves an engine step end to end through a *.module.json', async () => {
    const t = await startTestEngine({
      pipelinesDir: path.join(FIXTURES, 'pipelines'), modulesDir: path.join(FIXTURES, 'modules'), env: { HELLO_SERVER_URL: url },
    });
    try {
      const res = await t.api<{ status: string; context: Record<string, unknown> }>('POST', '/api/pipelines/remote-hello/requests?wait=5', { body: { name: 'Grace' } });
      expect(res.status).to.equal(200);
      expect(res.body.context.greet).to.deep.equal({ greeting: 'Hello, Grace' });
      const runs = await t.engine.store.query<{ transport: string }>('SELECT transport FROM step_runs');
      expect(runs.map((r) => r.transport)).to.deep.equal(['http']);
    } finally {
      await t.close();
    }
  });
});
