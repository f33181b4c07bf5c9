import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createApp } from '../api/app';
import { KeyRing } from '../api/auth';
import type { Engine } from '../engine';
import { ErrorCodes } from '../errors';

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * The API keys to accept. Tests pass their own ring (`new KeyRing(store, 'key:role,…')`).
   * @default a ring over `CONVEYOR_API_KEYS` (`engine.config`) and the stored keys
   */
  keys?: KeyRing;
}

/** Serves the API of `engine` on host:port; creates the first admin key when none exists. */
export async function serve(engine: Engine, host: string, port: number, print: (line: string) => void, opts: ServeOptions = {}): Promise<RunningServer> {
  const keys = opts.keys ?? new KeyRing(engine.store, engine.config.apiKeys, engine.config.jwt);
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
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  // Remote modules call back here unless a public URL (e.g. a load balancer) was configured.
  if (!engine.config.publicUrl) engine.callbacks.baseUrl = `http://${host}:${actualPort}`;
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

/**
 * Node's HTTP parser refuses some requests before Koa sees them (headers over 16 KB, a
 * malformed request line). Its own answer has no body; this one is the API's JSON error.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const [status, reason, error] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', { code: ErrorCodes.HEADERS_TOO_LARGE, message: "the request headers are over the server's limit (16 KB by default)" }]
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', { code: ErrorCodes.BAD_REQUEST, message: 'the request did not arrive in time' }]
    : [400, 'Bad Request', { code: ErrorCodes.BAD_REQUEST, message: 'the HTTP request is malformed' }];
  const body = JSON.stringify({ error });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
