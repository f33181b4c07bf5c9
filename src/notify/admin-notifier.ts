/**
 * Tells the administrator when a request stops on an error (seed 000 §7: "администратор
 * уведомляется"), through the channels configured:
 *
 * - a webhook: `CONVEYOR_ADMIN_WEBHOOK=https://…` receives `POST` with the alert as JSON;
 * - a module: `CONVEYOR_ADMIN_MODULE=admin-alert` runs that module (in-process, or a remote
 *   `*.module.json` over the HTTP module protocol) with the alert as its `params`.
 *
 * The alert is `{ requestId, pipeline, error, links: { self, steps, audit, resume, stop } }`.
 *
 * Alerts are durable: the commit that puts a request in `error_stop` also writes one
 * `admin_alerts` row per channel (the supervisor's `alertChannels`). The engine that committed
 * it tries at once; every engine's sweep (`CONVEYOR_ADMIN_SWEEP_MS`, default 1000) claims due
 * rows, so an alert whose engine died, even mid-try, is sent by another one or after a
 * restart. Each channel is tried `CONVEYOR_ADMIN_RETRIES` times (default 5), waiting
 * `CONVEYOR_ADMIN_BACKOFF_MS` (default 1000) doubled after each failure; then the row is
 * `failed` and the log says so. Delivery is at least once: a module gets a stable
 * idempotency key to drop a repeat.
 */
import type { AdminAlertConfig } from '../config';
import { newId } from '../ids';
import type { Bus } from '../bus/bus';
import type { ValidationIssue } from '../errors';
import type { Logger } from '../log/logger';
import type { RequestRecord } from '../model';
import type { ModuleRegistry } from '../module/registry';
import type { AlertClaim, AlertStore } from '../store/alert-store';
import { assertOutbound, createOutboundAgents } from '../transports/outbound-agent';
import type { OutboundPolicy } from '../transports/outbound';
import { moduleLogger, runModule } from '../transports/run-module';
import axios from 'axios';

/** What the administrator receives. */
export interface AdminAlert {
  requestId: string;
  pipeline: string;
  error: RequestRecord['error'];
  links: { self: string; steps: string; audit: string; resume: string; stop: string };
}

/** The notifier's channels and timings: `config.admin` (`CONVEYOR_ADMIN_*`, src/config.ts). */
export type AdminNotifierOptions = AdminAlertConfig;

export interface AdminNotifierDeps {
  bus: Bus;
  store: { getRequest(id: string): Promise<RequestRecord | undefined>; readonly alerts: AlertStore };
  registry: ModuleRegistry;
  logger: Logger;
  /** The API's public base URL, for the links (read when an alert is sent). */
  baseUrl(): string;
  /** The outbound rule: the webhook and module URLs are the operator's, limited only by a set list. */
  outbound?: OutboundPolicy;
}

/** Configuration problems, reported with the pipelines' so the engine refuses to start on them. */
export function checkAdminNotifier(registry: ModuleRegistry, o: AdminNotifierOptions): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (o.module && !registry.get(o.module)) issues.push({ source: 'CONVEYOR_ADMIN_MODULE', path: o.module, message: `unknown module "${o.module}"` });
  if (o.webhookUrl && !/^https?:\/\/[^\s]+$/.test(o.webhookUrl)) issues.push({ source: 'CONVEYOR_ADMIN_WEBHOOK', path: '', message: 'must be an http(s) URL' });
  return issues;
}

type Channel = { name: string; send(alert: AdminAlert, attempt: number, test: boolean, signal: AbortSignal): Promise<void> };

const SWEEP_LIMIT = 50;
const MAX_BACKOFF_MS = 600_000;

export class AdminNotifier {
  private readonly o: Required<Omit<AdminNotifierOptions, 'webhookUrl' | 'module'>> & Pick<AdminNotifierOptions, 'webhookUrl' | 'module'>;
  private readonly channels = new Map<string, Channel>();
  private off: (() => void) | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly pending = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly agents: ReturnType<typeof createOutboundAgents>;
  private readonly outbound: OutboundPolicy;

  constructor(
    private readonly d: AdminNotifierDeps,
    /** `config.admin` (`CONVEYOR_ADMIN_*`). */
    options: AdminNotifierOptions = {},
  ) {
    this.o = { attempts: 5, backoffMs: 1000, timeoutMs: 10_000, sweepMs: 1000, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.outbound = d.outbound ?? { set: false, hosts: [], cidrs: [] };
    this.agents = createOutboundAgents('module', this.outbound);
    const { webhookUrl, module } = this.o;
    if (webhookUrl) this.channels.set('webhook', { name: 'webhook', send: (alert, _attempt, _test, signal) => this.post(webhookUrl, alert, signal) });
    if (module) this.channels.set(`module:${module}`, { name: `module ${module}`, send: (alert, attempt, test, signal) => this.runAdminModule(module, alert, attempt, test, signal) });
  }

  /** Whether any channel is configured. */
  get enabled(): boolean {
    return this.channels.size > 0;
  }

  /** The channels an `error_stop` owes an alert on, as stored in `admin_alerts.channel`. */
  get channelNames(): string[] {
    return [...this.channels.keys()];
  }

  start(): void {
    if (!this.enabled || this.off) return;
    this.off = this.d.bus.on('RequestFinished', (e) => {
      if (e.status !== 'error_stop') return;
      const now = Date.now();
      this.track(this.d.store.alerts.claimForRequest(e.requestId, this.channelNames, now, now + this.leaseMs()).then((claims) => this.deliverAll(claims)));
    });
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepMs);
  }

  /** Stops listening and abandons waiting tries; a row in flight is retried by another engine once its lease ends. */
  async stop(): Promise<void> {
    this.off?.();
    this.off = undefined;
    clearInterval(this.sweeper);
    this.stopping.abort();
    await Promise.allSettled([...this.pending]);
    this.agents.httpAgent.destroy();
    this.agents.httpsAgent.destroy();
  }

  /** Claims due alerts of any request (retries, and those a dead engine owed). */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopping.signal.aborted) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const claims = await this.d.store.alerts.claimDue(this.channelNames, now, now + this.leaseMs(), SWEEP_LIMIT);
      this.track(this.deliverAll(claims));
    } catch (err) {
      this.d.logger.warn('admin alert sweep failed', { error: (err as Error).message });
    } finally {
      this.sweeping = false;
    }
  }

  /** Long enough for one try; if this process dies mid-try, another takes the alert after it. */
  private leaseMs(): number {
    return this.o.timeoutMs + 5_000;
  }

  private track(p: Promise<unknown>): void {
    const t: Promise<void> = p.then(() => undefined, (err: unknown) => {
      this.d.logger.warn('admin alert not settled', { error: (err as Error).message });
    }).finally(() => this.pending.delete(t));
    this.pending.add(t);
  }

  private async deliverAll(claims: AlertClaim[]): Promise<void> {
    await Promise.all(claims.map((c) => this.deliver(c)));
  }

  private async deliver(c: AlertClaim): Promise<void> {
    const channel = this.channels.get(c.channel);
    if (!channel || this.stopping.signal.aborted) return;
    const request = await this.d.store.getRequest(c.requestId).catch(() => undefined);
    const base = `${this.d.baseUrl()}/api/requests/${c.requestId}`;
    const alert: AdminAlert = {
      requestId: c.requestId,
      pipeline: c.pipelineId,
      error: request?.error ?? null,
      links: { self: base, steps: `${base}/steps`, audit: `${base}/audit`, resume: `${base}/resume`, stop: `${base}/stop` },
    };
    const attempt = c.attempts + 1;
    const fields = { requestId: c.requestId, pipeline: c.pipelineId, channel: channel.name, attempt };
    let error: string | null = null;
    try {
      await channel.send(alert, attempt, request?.test ?? false, AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.o.timeoutMs)]));
    } catch (err) {
      error = (err as Error).message.slice(0, 1000);
    }
    // Stopping mid-try: leave the row leased; another engine (or the next start) tries again.
    if (error !== null && this.stopping.signal.aborted) return;
    const now = Date.now();
    const outcome = error === null ? 'delivered' : attempt >= this.o.attempts ? 'failed' : 'retry';
    const nextDue = now + Math.min(MAX_BACKOFF_MS, this.o.backoffMs * 2 ** (attempt - 1));
    if (!(await this.d.store.alerts.settle(c, { outcome, error, nextDue, now }))) {
      this.d.logger.warn('admin alert lease lost; another engine took it over', fields);
      return;
    }
    if (outcome === 'delivered') this.d.logger.info('admin alert delivered', fields);
    else if (outcome === 'failed') this.d.logger.error('admin alert not delivered', { ...fields, error });
    else this.d.logger.warn('admin alert failed; will retry', { ...fields, error, retryAt: new Date(nextDue).toISOString() });
  }

  private async post(url: string, body: unknown, signal: AbortSignal): Promise<void> {
    if (this.outbound.set) assertOutbound('module', this.outbound, url);
    const res = await axios.post(url, body, {
      ...this.agents, proxy: false, signal, maxRedirects: 0, validateStatus: () => true, responseType: 'text',
      headers: { 'content-type': 'application/json', 'user-agent': 'conveyor-admin-notifier' },
    });
    if (res.status < 200 || res.status >= 300) throw new Error(`the webhook answered ${res.status}`);
  }

  private async runAdminModule(name: string, alert: AdminAlert, attempt: number, test: boolean, signal: AbortSignal): Promise<void> {
    const mod = this.d.registry.get(name);
    if (!mod) throw new Error(`module "${name}" is not loaded`);
    const call = {
      requestId: alert.requestId, pipeline: alert.pipeline, stepId: 'admin-alert', runId: newId(), attempt,
      idempotencyKey: `admin-alert:${alert.requestId}:${alert.error?.runId ?? ''}`, test, module: name,
      params: alert as unknown as Record<string, unknown>, context: {}, timeoutMs: this.o.timeoutMs,
    };
    if (mod.def) {
      const outcome = await runModule(mod.def, call, moduleLogger(this.d.logger, { module: name, requestId: alert.requestId }), signal);
      if (!outcome.ok) throw new Error(outcome.error.message);
      return;
    }
    if (!mod.url) throw new Error(`module "${name}" has neither code nor a URL in this process`);
    const { runId: _runId, module: _module, timeoutMs: _timeoutMs, ...protocol } = call;
    await this.post(mod.url, { ...protocol, callbackUrl: null }, signal);
  }
}
