/**
 * Scheduled pipelines: cron triggers (`schedule: [{ cron, payload }]`) that create requests
 * by themselves. Every engine process watches every trigger; a tick still fires once:
 *
 * - the request's idempotency key is `schedule:<trigger>:<tick ms>`, so a second process
 *   submitting the same tick gets the same request back instead of a new one;
 * - the trigger's mark (its last fired tick, in `intake_marks`) is then moved forward with a
 *   conditional update, so the tick is not looked at again.
 *
 * Catch-up, for ticks that passed while no engine ran (the mark is behind by several ticks):
 * `latest` (default) fires the most recent missed tick once, `all` fires each missed tick
 * (the last 100 at most), `none` fires only a tick seen within a minute of its time.
 */
import { ClientError } from '../errors';
import type { Logger } from '../log/logger';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { CompiledTrigger } from '../pipeline/types';
import type { IntakeStore } from '../store/intake-store';
import { renderValue } from '../templates/render';
import { nextTick, prevTick, ticksBetween } from '../pipeline/cron';

/** Submits a request as the intake does (idempotently). */
export type TriggerSubmit = (input: { pipelineId: string; payload: Record<string, unknown>; idempotencyKey: string }) => Promise<unknown>;

/** `catchUp: 'none'` still fires a tick seen this late. */
const ON_TIME_MS = 60_000;
const MAX_CATCH_UP = 100;
const MAX_SLEEP_MS = 30_000;

export class TriggerScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: IntakeStore,
    private readonly catalog: PipelineCatalog,
    private readonly submit: TriggerSubmit,
    private readonly logger: Logger,
  ) {}

  private triggers(): Array<{ pipelineId: string; trigger: CompiledTrigger; mark: string }> {
    return this.catalog.list().flatMap(({ pipeline }) =>
      (pipeline.triggers ?? []).map((trigger) => ({ pipelineId: pipeline.id, trigger, mark: `trigger:${pipeline.id}:${trigger.id}` })),
    );
  }

  async start(): Promise<void> {
    const all = this.triggers();
    if (all.length === 0) return;
    // A trigger seen for the first time starts from now: history before it is not "missed".
    const now = Date.now();
    for (const t of all) await this.store.ensureMark(t.mark, now);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, Math.max(0, Math.min(delayMs, MAX_SLEEP_MS)));
  }

  private async tick(): Promise<void> {
    let wake = Number.POSITIVE_INFINITY;
    for (const t of this.triggers()) {
      if (this.stopped) return;
      const now = Date.now();
      try {
        await this.fireDue(t.pipelineId, t.trigger, t.mark, now);
      } catch (err) {
        this.logger.warn('scheduled trigger failed', { pipeline: t.pipelineId, trigger: t.trigger.id, error: (err as Error).message });
      }
      wake = Math.min(wake, nextTick(t.trigger.cron, now, t.trigger.timezone));
    }
    this.schedule(Number.isFinite(wake) ? wake - Date.now() : MAX_SLEEP_MS);
  }

  private async fireDue(pipelineId: string, trigger: CompiledTrigger, markId: string, now: number): Promise<void> {
    const mark = await this.store.ensureMark(markId, now);
    const latest = prevTick(trigger.cron, now, trigger.timezone);
    if (latest === undefined || latest <= mark) return;
    let due: number[];
    if (trigger.catchUp === 'all') due = ticksBetween(trigger.cron, mark, now, MAX_CATCH_UP, trigger.timezone);
    else if (trigger.catchUp === 'none') due = now - latest <= ON_TIME_MS ? [latest] : [];
    else due = [latest];
    for (const tick of due) {
      const iso = new Date(tick).toISOString();
      const payload = renderValue(trigger.payload, { trigger: { id: trigger.id, pipeline: pipelineId, tick: iso, cron: trigger.cron } }, () => undefined) as Record<string, unknown>;
      try {
        await this.submit({ pipelineId, payload, idempotencyKey: `schedule:${trigger.id}:${tick}` });
        this.logger.info('scheduled trigger fired', { pipeline: pipelineId, trigger: trigger.id, tick: iso });
      } catch (err) {
        // A refusal (a business key held with `reject`, a payload that changed for this tick) is final for this tick.
        if (!(err instanceof ClientError)) throw err;
        this.logger.warn('scheduled request refused', { pipeline: pipelineId, trigger: trigger.id, tick: iso, code: err.code, error: err.message });
      }
    }
    const skipped = trigger.catchUp === 'none' && due.length === 0;
    if (skipped) this.logger.warn('scheduled tick skipped (catchUp: none)', { pipeline: pipelineId, trigger: trigger.id, tick: new Date(latest).toISOString() });
    await this.store.advanceMark(markId, mark, latest);
  }
}
