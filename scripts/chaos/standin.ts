/**
 * The campaign's remote module (`mix-http`), served from the campaign's own process so that
 * it survives every kill. It speaks the public HTTP module protocol:
 *
 * - most calls get `200 { data }` after 0–5 ms;
 * - a fraction (`asyncShare`) get `202`, and the result is posted to `callbackUrl` 20–300 ms
 *   later. A callback that cannot be delivered (the API is down, being killed) is retried
 *   until the API answers it, as a real service would; 409/410 mean the run no longer waits
 *   (it was committed by another delivery), and count as settled.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinStats {
  calls: number;
  /** Distinct idempotency keys (runs) called. */
  runs: number;
  sync: number;
  accepted: number;
  callbacksOk: number;
  /** 409/410: the run had already been settled by another delivery. */
  callbacksSettled: number;
  /** Deliveries of a callback that failed and were tried again. */
  callbackRetries: number;
  /** Callbacks still undelivered when the stand-in stopped. */
  callbacksPending: number;
  /** Callbacks given up for another status (a bug, or a bad token). */
  callbacksRefused: Record<string, number>;
}

export interface Standin {
  url: string;
  stats(): StandinStats;
  /** What happened to the callbacks of one idempotency key (run): each delivery's HTTP status, 0 when it was lost. */
  history(idempotencyKey: string): string[];
  close(): Promise<void>;
}

interface Call {
  stepId: string;
  idempotencyKey: string;
  params: { n?: unknown; tag?: unknown };
  callbackUrl: string | null;
}

const rand = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function startStandin(opts: { asyncShare?: number; port?: number } = {}): Promise<Standin> {
  const asyncShare = opts.asyncShare ?? 0.25;
  const keys = new Set<string>();
  const s = { calls: 0, sync: 0, accepted: 0, callbacksOk: 0, callbacksSettled: 0, callbackRetries: 0, callbacksRefused: {} as Record<string, number> };
  const pending = new Set<Promise<void>>();
  const histories = new Map<string, string[]>();
  const note = (key: string, what: string): void => {
    const h = histories.get(key) ?? [];
    h.push(`${new Date().toISOString().slice(11, 23)} ${what}`);
    histories.set(key, h);
  };
  let closing = false;

  const deliver = async (key: string, url: string, data: unknown): Promise<void> => {
    await sleep(rand(20, 300));
    for (let attempt = 0; !closing; attempt++) {
      let status: number;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ data }),
          signal: AbortSignal.timeout(10_000),
        });
        status = res.status;
        await res.arrayBuffer();
      } catch {
        status = 0; // refused or reset: the API is down
      }
      note(key, `callback ${status}`);
      if (status >= 200 && status < 300) return void s.callbacksOk++;
      if (status === 409 || status === 410) return void s.callbacksSettled++;
      if (status !== 0 && status !== 429 && status < 500) {
        s.callbacksRefused[status] = (s.callbacksRefused[status] ?? 0) + 1;
        return;
      }
      s.callbackRetries++;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let call: Call;
      try {
        call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Call;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"not JSON"}}');
        return;
      }
      s.calls++;
      keys.add(call.idempotencyKey);
      const data = { step: call.stepId, n: Number(call.params?.n), tag: call.params?.tag ?? null };
      if (call.callbackUrl && Math.random() < asyncShare) {
        s.accepted++;
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
        note(call.idempotencyKey, `call attempt ${String((call as { attempt?: unknown }).attempt)}: 202`);
        const p = deliver(call.idempotencyKey, call.callbackUrl, { ...data, via: 'callback' }).finally(() => pending.delete(p));
        pending.add(p);
        return;
      }
      note(call.idempotencyKey, 'call: 200');
      setTimeout(() => {
        s.sync++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { ...data, via: 'sync' } }));
      }, rand(0, 5));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mix`;
  return {
    url,
    stats: () => ({ ...s, runs: keys.size, callbacksPending: pending.size }),
    history: (key) => histories.get(key) ?? [],
    async close() {
      closing = true;
      await Promise.allSettled([...pending]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
