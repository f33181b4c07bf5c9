/**
 * A raw HTTP/1.1 client over a TCP socket, so the fuzzer can send what well-behaved clients
 * refuse to: any bytes in the path and in header values, any Content-Type or none, 60 KB
 * headers, chunked bodies without a length. Each call opens a connection, sends
 * `Connection: close`, and reads until the server closes it.
 */
import * as net from 'node:net';

export interface RawRequest {
  method: string;
  /** Sent exactly as given (already percent-encoded, or not: that is the point). */
  path: string;
  /** Header lines; values are written as latin1 bytes unless they are Buffers. */
  headers: Array<[string, string | Buffer]>;
  body?: Buffer;
  /** Send the body chunked, without a Content-Length. */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The connection failed or was cut before a whole answer came back. */
  error?: string;
  ms: number;
}

export function sendRaw(host: string, port: number, req: RawRequest, timeoutMs = 15_000): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks), error), ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server may answer (413) and close before the whole body is written: keep the answer.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return void (chunks.length > 0 ? undefined : setTimeout(() => finish(err.code), 50));
      finish(err.message);
    });
    socket.on('connect', () => {
      const head: Buffer[] = [Buffer.from(`${req.method} `, 'latin1'), Buffer.from(req.path, 'utf8'), Buffer.from(' HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n', 'latin1')];
      for (const [k, v] of req.headers) head.push(Buffer.from(`${k}: `, 'latin1'), typeof v === 'string' ? Buffer.from(v, 'latin1') : v, Buffer.from('\r\n', 'latin1'));
      const body = req.body;
      if (body && req.chunked) head.push(Buffer.from('transfer-encoding: chunked\r\n', 'latin1'));
      else if (body) head.push(Buffer.from(`content-length: ${body.length}\r\n`, 'latin1'));
      head.push(Buffer.from('\r\n', 'latin1'));
      socket.write(Buffer.concat(head));
      if (!body) return;
      if (!req.chunked) return void socket.write(body);
      const piece = 64 * 1024;
      for (let i = 0; i < body.length; i += piece) {
        const part = body.subarray(i, i + piece);
        socket.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`, 'latin1'), part, Buffer.from('\r\n', 'latin1')]));
      }
      socket.write('0\r\n\r\n');
    });
  });
}

function parseResponse(raw: Buffer, error?: string): Omit<RawResponse, 'ms'> {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, text: raw.toString('utf8'), error: error ?? 'no complete answer' };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status, headers, text: body.toString('utf8'), error: status === 0 ? (error ?? 'no status line') : undefined };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}
