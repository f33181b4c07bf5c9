/**
 * Live updates for the dashboard over Server-Sent Events (`GET /api/live`). One hub per app
 * reads the overview every `CONVEYOR_LIVE_INTERVAL_MS` (default 2000) while at least one
 * client listens, however many do, and sends `event: overview` to every client when it
 * changed (a request arrived, a step started, counts moved). A comment line every 15 s keeps
 * proxies from closing an idle stream. The hub reads the shared database, so in distributed
 * mode an `api` process reports what every engine did.
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { ApiEngine } from './ports';
import { overviewView, type OverviewView } from './overview-view';

const HEARTBEAT_MS = 15_000;

export class LiveHub {
  private readonly clients = new Set<PassThrough>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private last: { key: string; view: OverviewView } | undefined;
  private ticking = false;

  constructor(
    private readonly engine: ApiEngine,
    private readonly intervalMs = engine.config.liveIntervalMs,
  ) {}

  /** Answers `ctx` with an event stream that starts with the current overview. */
  async attach(ctx: Context): Promise<void> {
    const view = await this.read();
    const out = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('cache-control', 'no-store');
    ctx.set('x-accel-buffering', 'no');
    ctx.body = out;
    out.write(`retry: 3000\n${frame(view)}`);
    this.clients.add(out);
    const detach = (): void => {
      this.clients.delete(out);
      out.end();
      if (this.clients.size === 0) this.idle();
    };
    ctx.res.once('close', detach);
    out.once('error', detach);
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    this.heartbeat ??= setInterval(() => this.broadcast(': keep-alive\n\n'), HEARTBEAT_MS);
  }

  /** Ends every stream (the server is stopping). */
  close(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.idle();
  }

  private idle(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.timer = undefined;
    this.heartbeat = undefined;
    this.last = undefined;
  }

  private async read(): Promise<OverviewView> {
    const view = overviewView(this.engine, await this.engine.store.overview(Date.now()));
    this.last = { key: changeKey(view), view };
    return view;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    if (!this.engine.accepting) return this.close();
    this.ticking = true;
    try {
      const before = this.last?.key;
      const view = await this.read();
      if (this.last!.key !== before) this.broadcast(frame(view));
    } catch (err) {
      this.engine.logger.warn('live overview not read', { error: (err as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  private broadcast(text: string): void {
    for (const c of this.clients) c.write(text);
  }
}

const frame = (view: OverviewView): string => `event: overview\ndata: ${JSON.stringify(view)}\n\n`;
/** What counts as a change: everything but the clock (`generatedAt`, the window's start). */
const changeKey = (v: OverviewView): string => JSON.stringify({ ...v, generatedAt: null, since: null, series: v.series.map((p) => [p.created, p.completed, p.errorStop, p.stopped]) });
