/**
 * HTTP without a port: a request handed to a Koa app's `app.callback()` over an in-memory
 * connection (`duplexPair`, injected into an `http.Server` that never listens). The app sees
 * a real HTTP request (Node's parser, headers, chunked bodies, streams), so tests of the API's
 * shapes run it without a listener; tests of the transport itself keep a real port.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import type Koa from 'koa';

/**
 * Gives one end of the in-memory pair what HTTP code asks of a TCP socket: timeouts and
 * keep-alive switches (no-ops here) and a loopback address.
 */
function asSocket(end: Duplex): Socket {
  const socketish = end as Duplex & Record<string, unknown>;
  for (const name of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref']) socketish[name] = () => end;
  Object.assign(socketish, { remoteAddress: '127.0.0.1', remoteFamily: 'IPv4', remotePort: 0, localAddress: '127.0.0.1', localPort: 0, encrypted: false });
  return end as unknown as Socket;
}

/** One answer, as the test engine's `api` gives it before parsing. */
export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A function that sends one request to `app` in-process. `close()` frees the server object. */
export function inProcessClient(app: Koa): { send(method: string, path: string, headers: Record<string, string>, data?: string | Buffer): Promise<RawAnswer>; close(): void } {
  const handle = app.callback();
  const server = http.createServer((req, res) => void handle(req, res));
  const send = (method: string, path: string, headers: Record<string, string>, data?: string | Buffer): Promise<RawAnswer> =>
    new Promise((resolve, reject) => {
      const [client, serverSide] = duplexPair();
      server.emit('connection', asSocket(serverSide));
      const sized = data === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(data)) };
      const req = http.request({ method, path, headers: { host: 'in-process', ...sized }, createConnection: () => asSocket(client) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          client.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on('error', reject);
      req.end(data);
    });
  return { send, close: () => server.close() };
}
