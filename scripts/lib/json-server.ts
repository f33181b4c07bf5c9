/**
 * A tiny JSON HTTP server for the local stand-ins (shop, search engine, ERP): routes by method
 * and a path pattern, JSON in and out, 400 on malformed JSON, 404 on unknown paths, 413 over
 * 1 MiB. Handlers throw {@link HttpError} to answer an error status.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface JsonRequest {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  headers: http.IncomingHttpHeaders;
}

export type JsonHandler = (req: JsonRequest) => unknown;
export type Routes = Array<[method: string, pattern: string, handler: JsonHandler]>;

export interface RunningJsonServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const LIMIT = 1024 * 1024;

function compile(pattern: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const re = new RegExp(`^${pattern.replace(/:([A-Za-z]+)/g, (_, n: string) => (names.push(n), '([^/]+)'))}$`);
  return { re, names };
}

/** Serves `routes` on host:port (0: any free port). */
export async function startJsonServer(routes: Routes, port: number, host = '127.0.0.1'): Promise<RunningJsonServer> {
  const table = routes.map(([method, pattern, handler]) => ({ method, handler, ...compile(pattern) }));
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= LIMIT) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        if (size > LIMIT) return send(413, { error: 'body too large' });
        const matches = table.map((r) => ({ r, m: r.re.exec(url.pathname) })).filter((x) => x.m);
        const hit = matches.find((x) => x.r.method === req.method);
        if (!hit) return send(matches.length > 0 ? 405 : 404, { error: matches.length > 0 ? 'method not allowed' : 'not found' });
        let body: unknown;
        try {
          body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
        } catch {
          return send(400, { error: 'malformed JSON' });
        }
        const params = Object.fromEntries(hit.r.names.map((n, i) => [n, decodeURIComponent(hit.m![i + 1]!)]));
        try {
          const out = await hit.r.handler({ method: req.method!, params, query: url.searchParams, body, headers: req.headers });
          send(200, out);
        } catch (err) {
          if (err instanceof HttpError) send(err.status, { error: err.message });
          else send(500, { error: 'internal error' });
        }
      })();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Runs `start()` when the file is executed directly, and closes it on SIGINT/SIGTERM. */
export function runMain(name: string, start: () => Promise<{ url: string; close(): Promise<void> }>): void {
  start().then(
    (s) => {
      console.log(`${name} listening on ${s.url}`);
      const stop = (): void => void s.close().then(() => process.exit(0), () => process.exit(1));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (err: unknown) => {
      console.error(`${name} failed to start: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
