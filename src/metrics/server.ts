/**
 * `/metrics` of a process without the API (`conveyor engine`, `conveyor worker`), on its own
 * port (`CONVEYOR_METRICS_PORT`), so that Prometheus scrapes every process of a distributed
 * deployment. No key is asked: bind it to an address only the scraper reaches
 * (`CONVEYOR_METRICS_HOST`, default 127.0.0.1).
 */
import http from 'node:http';

/** What the server exposes: prom-client's registry text and content type. */
export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (and `GET /healthz`) on host:port; port 0 picks a free one. */
export async function serveMetrics(source: MetricsSource, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/healthz')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    source.render().then(
      (text) => void res.writeHead(200, { 'content-type': source.contentType }).end(text),
      (err: unknown) => void res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
    );
  });
  server.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
