import * as net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the OS picks it (listen on port 0), and
 * the server is closed before the port is returned. Another process may take it in between,
 * so prefer listening on port 0 directly when the code under test allows it.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected server address: ${String(address)}`));
        return;
      }
      server.close((error) => (error ? reject(error) : resolve(address.port)));
    });
  });
}
