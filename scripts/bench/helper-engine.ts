/**
 * A second engine process for the bench's distributed scenarios with `engines: 2` (started by
 * `engine-scenario.ts`, never by hand): engine and worker roles on the scenario's MariaDB
 * database and Redis prefix, with the bench's fixtures. Every request that ends here is
 * published on the Redis channel given (`<id> <status>`), where the scenario counts it as it
 * counts its own. Prints `READY` once started; stops on SIGTERM.
 */
import * as path from 'node:path';
import Redis from 'ioredis';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log/logger';

interface HelperSpec { databaseUrl: string; redisUrl: string; queuePrefix: string; channel: string }

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as HelperSpec;
  const fixtures = path.join(__dirname, 'fixtures');
  const engine = await Engine.create({
    databaseUrl: spec.databaseUrl, redisUrl: spec.redisUrl, queuePrefix: spec.queuePrefix, queueModules: ['bench-qstep'],
    pipelinesDir: path.join(fixtures, 'pipelines'), modulesDir: path.join(fixtures, 'modules'), logger: createLogger('warn'),
  });
  const pub = new Redis(spec.redisUrl, { maxRetriesPerRequest: 2 });
  engine.bus.on('RequestFinished', ({ requestId, status }) => void pub.publish(spec.channel, `${requestId} ${status}`));
  await engine.start({ engine: true, worker: true });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    void engine.stop().finally(() => {
      pub.disconnect();
      process.exit(0);
    });
  });
  process.stdout.write('READY\n');
}

main().catch((err: unknown) => {
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
});
