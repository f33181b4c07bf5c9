import type { Server } from 'node:http';
import { createApp } from '../api/app';
import { KeyRing } from '../api/auth';
import type { Engine } from '../engine';

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * The API keys to accept. Tests pass their own ring (`new KeyRing(store, 'key:role,…')`).
   * @default a ring over `CONVEYOR_API_KEYS` and the stored keys
   */
  keys?: KeyRing;
}

/** Serves the API of `engine` on host:port; creates the first admin key when none exists. */
export async function serve(engine: Engine, host: string, port: number, print: (line: string) => void, opts: ServeOptions = {}): Promise<RunningServer> {
  const keys = opts.keys ?? new KeyRing(engine.store);
  const created = await keys.ensureAdminKey();
  if (created) {
    print('No API key was configured, so an admin key was created. It is shown only this once:');
    print(`  ${created}`);
    print('Use it as: Authorization: Bearer <key>   (or set CONVEYOR_API_KEYS="key:admin,...")');
  }
  const app = createApp(engine, keys);
  const server = app.listen(port, host);
  server.headersTimeout = 15_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  // Remote modules call back here unless a public URL (e.g. a load balancer) was configured.
  if (!process.env.CONVEYOR_PUBLIC_URL) engine.callbacks.baseUrl = `http://${host}:${actualPort}`;
  return {
    server,
    url: `http://${host}:${actualPort}`,
    // Requests in progress get a moment to finish; idle keep-alive connections go at once.
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    }),
  };
}
