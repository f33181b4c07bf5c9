/**
 * A source whose broker cannot be reached (README "Sources", docs/brokers.md): the engine
 * starts anyway, logs ONE warning for the cause rather than one per attempt, retries with
 * backoff, shows the state in `GET /api/sources`, and consumes once the broker is there.
 * The "broker" here is a loopback port that nothing listens on, then a TCP relay on that
 * same port to the real RabbitMQ.
 */
import * as net from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import winston from 'winston';
import { startTestEngine, type TestEngine } from '../support/engine';
import { requireAmqp } from '../support/services';
import { cleanupTmpDirs } from '../support/tmp';
import { until } from '../intake/helpers';
import { FIXTURE_MODULES, openAmqp, unique, writePipelines } from './helpers';

interface Source { pipeline: string; state: string; lastError: string | null; failures: number; nextAttemptAt: string | null; url: string }

/** A port on 127.0.0.1 that was free a moment ago (nothing listens on it now). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('broker source: broker unreachable', function () {
  this.timeout(60_000);
  let t: TestEngine | undefined;
  let relay: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  const queue = unique('t.unreach');
  let amqpUrl: string;

  before(async () => {
    amqpUrl = await requireAmqp();
  });

  after(async () => {
    await t?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
    const amqp = await openAmqp(amqpUrl);
    const ch = await amqp.conn.createChannel();
    for (const q of [queue, `${queue}.dead`]) await ch.deleteQueue(q).catch(() => undefined);
    await amqp.close();
    cleanupTmpDirs();
  });

  it('starts, warns once, shows reconnecting with the cause in GET /api/sources, then consumes when the broker appears', async () => {
    const port = await closedPort();
    const lines: Array<{ level: string; message: string }> = [];
    const logger = winston.createLogger({
      level: 'debug',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: new Writable({ write: (chunk: Buffer, _e, cb) => { lines.push(JSON.parse(chunk.toString()) as { level: string; message: string }); cb(); } }) })],
    });
    const id = unique('src-unreach');
    t = await startTestEngine({
      pipelinesDir: writePipelines([{ id, start: 'work', sources: [{ kind: 'amqp', name: 'catalog', queue }], steps: { work: { subsystem: 'in-work' } } }]),
      modulesDir: FIXTURE_MODULES,
      env: { AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}` },
      logger,
      engine: { sources: { reconnectMs: 20, maxReconnectMs: 100 } },
    });
    // The engine answers while the source keeps failing.
    const source = async (): Promise<Source> => (await t!.api<{ sources: Source[] }>('GET', '/api/sources')).body.sources.find((s) => s.pipeline === id)!;
    const failing = await until('six failed attempts', async () => {
      const s = await source();
      return s.failures >= 6 ? s : undefined;
    }, 30_000, 50);
    expect(failing.state).to.equal('reconnecting');
    expect(failing.lastError).to.match(/ECONNREFUSED/);
    expect(failing.nextAttemptAt).to.be.a('string');
    expect(failing.url).to.equal(`amqp://guest:***@127.0.0.1:${port}`);
    const warnings = lines.filter((l) => l.level === 'warn' && l.message.includes(id));
    expect(warnings.map((l) => l.message)).to.deep.equal([
      `source ${id}/catalog: cannot reach amqp://guest:***@127.0.0.1:${port} (ECONNREFUSED); retrying with backoff, at most every 100 ms`,
    ]);

    // The broker appears on that port: a relay to the real RabbitMQ.
    const target = new URL(amqpUrl);
    relay = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5672), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay!.listen(port, '127.0.0.1', resolve));
    const consuming = await until('the source to consume', async () => {
      const s = await source();
      return s.state === 'consuming' ? s : undefined;
    }, 30_000, 50);
    expect(consuming).to.include({ failures: 0, nextAttemptAt: null, lastError: null });
    expect(lines.filter((l) => l.level === 'warn' && l.message.includes(id))).to.have.length(1);
    expect(lines.filter((l) => l.level === 'info' && l.message === `source ${id}/catalog: connected again to amqp://guest:***@127.0.0.1:${port}`)).to.have.length(1);
  });
});
