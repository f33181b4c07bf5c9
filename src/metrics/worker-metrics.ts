/**
 * Prometheus metrics of a `conveyor worker` process: the module runs it did. A worker commits
 * nothing (the engine that takes the result does, and counts it in `conveyor_steps_total`),
 * so its counters are runs, retries of a stalled job included.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS } from './metrics';

/** Called by a queue worker after each module run. */
export type RunObserver = (module: string, outcome: 'completed' | 'failed', durationMs: number) => void;

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly runs: Counter<'module' | 'outcome'>;
  private readonly duration: Histogram<'module' | 'outcome'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.runs = new Counter({ name: 'conveyor_worker_runs_total', help: 'Module runs done by this worker process, by module and outcome.', labelNames: ['module', 'outcome'], registers });
    this.duration = new Histogram({
      name: 'conveyor_worker_run_duration_seconds',
      help: 'Duration of module runs in this worker process, by module and outcome.',
      labelNames: ['module', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The observer to hand to a `QueueWorker`. */
  readonly observe: RunObserver = (module, outcome, durationMs) => {
    this.runs.inc({ module, outcome });
    this.duration.observe({ module, outcome }, Math.max(0, durationMs) / 1000);
  };

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
