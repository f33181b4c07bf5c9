/**
 * Shared pieces of the benchmark: scenario specs, the result shape a child process reports,
 * statistics, and a memory sampler.
 */

/**
 * The warm-up before anything is measured, the same in every scenario that runs requests (the
 * engine's and the bull chain): `concurrent` requests at once, then, before the 1-in-flight
 * phase, `oneAtATime` requests one after another; none of them is counted. The second part
 * is for the 1-in-flight latency: after the concurrent warm-up alone, V8 was still compiling
 * the supervisor's and the store's hot functions with TurboFan (`node --trace-opt`, embedded:
 * 56 and 38 optimizations in the first two hundred requests then run one at a time, 12 in
 * the fifth), so the measured 200 paid for compiles that a server running for a while has
 * long done.
 */
export const WARMUP = { concurrent: 500, oneAtATime: 500 } as const;

/** The warm-up of a scenario, in words (printed with the results). */
export const WARMUP_TEXT = `warm-up in every scenario (not counted): ${WARMUP.concurrent} requests at once, then ${WARMUP.oneAtATime} one at a time before the 1-in-flight phase`;

/** The marker before the one JSON line a bench child prints to report its result. */
export const RESULT_MARKER = 'BENCH_RESULT ';

export type EngineMode = 'embedded' | 'distributed';

/** One engine scenario, run in a child process of its own (so peak RSS is its own). */
export interface EngineSpec {
  kind: 'engine';
  name: string;
  mode: EngineMode;
  pipeline: 'bench-linear' | 'bench-cond' | 'bench-three';
  /** Requests in the measured batch. */
  requests: number;
  /** Requests run one at a time (submit, wait for the end, next) for the 1-in-flight latency; 0 skips. */
  sequential: number;
  /** SQLite `synchronous`. @default 'NORMAL' */
  sync?: 'NORMAL' | 'FULL';
  /** At most this many requests submitted and not yet finished; 0 submits the whole batch at once. */
  window?: number;
  /** Submit through the HTTP API instead of `engine.intake.submit`. */
  http?: boolean;
  /** Record a throughput/RSS sample every this many finished requests (the scale curve). */
  sampleEvery?: number;
  mysqlUrl?: string;
  redisUrl?: string;
  /**
   * Distributed only: engine processes sharing the database and Redis (this one, and
   * `engines - 1` started by it, `helper-engine.ts`). @default 1
   */
  engines?: number;
  /** Extra Node flags for the scenario's child process (e.g. a heap limit). */
  nodeArgs?: string[];
  /** Where SQLite files go. */
  tmpDir: string;
}

/** A baseline, also run in its own child process. */
export type BaselineSpec =
  | { kind: 'bull-chain'; name: string; requests: number; sequential: number; steps: number; concurrency: number; redisUrl: string }
  | { kind: 'sqlite-raw'; name: string; sync: 'NORMAL' | 'FULL'; seconds: number; tmpDir: string }
  | { kind: 'mysql-raw'; name: string; seconds: number; mysqlUrl: string };

export type Spec = EngineSpec | BaselineSpec;

/** Statements, rows written, KiB and (SQLite) pages written per step (see `scripts/bench/db-work.ts`). */
export interface DbWorkFigures {
  statements: number;
  rowsWritten: number;
  kib: number;
  pages?: number;
}

export interface ScaleSample {
  /** Requests finished so far. */
  done: number;
  /** Seconds since the batch began. */
  t: number;
  /** Requests/s over the window since the previous sample. */
  rate: number;
  rssMb: number;
  heapMb: number;
}

/** What a child reports. Absent fields do not apply to that kind. */
export interface Result {
  name: string;
  kind: Spec['kind'];
  requests?: number;
  stepsPerRequest?: number;
  seconds?: number;
  reqPerS?: number;
  stepsPerS?: number;
  /** End-to-end latency (submit → end) of the batch, ms. */
  p50Ms?: number;
  p99Ms?: number;
  /** One request in flight, ms. */
  seqP50Ms?: number;
  seqP99Ms?: number;
  /** Transactions per second (raw baselines). */
  txPerS?: number;
  peakRssMb: number;
  /** RSS once the engine has started, before any request. */
  baseRssMb?: number;
  /** CPU time (user + system, all threads) spent per request of the batch, µs. */
  cpuUsPerRequest?: number;
  /** The same, of the scenario's other engine processes together (`engines` > 1). */
  helperCpuUsPerRequest?: number;
  /** Main-thread (event loop) busy time per request of the batch, µs: what bounds throughput. */
  loopUsPerRequest?: number;
  /** Highest V8 heap use seen during the batch (sampled every 100 ms). */
  peakHeapMb?: number;
  /** Group commit: transactions written and items per transaction. */
  batches?: number;
  itemsPerBatch?: number;
  /** Database work per step of the batch, and of the one-in-flight phase (`scripts/bench/db-work.ts`). */
  work?: { batch: DbWorkFigures; sequential?: DbWorkFigures };
  /** The persisted verdict: completed requests and runs found in the database. */
  verified?: { requestsCompleted: number; runsCompleted: number; duplicateRuns: number; ok: boolean };
  samples?: ScaleSample[];
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** p50 and p99 of a list of latencies (ms). */
export function latencyStats(values: ArrayLike<number>): { p50: number; p99: number } {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Peak RSS of this process so far, MB (the kernel's high-water mark). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export const mb = (bytes: number): number => bytes / (1024 * 1024);

/** Prints a child's result on its own line, for the parent to pick up. */
export function report(result: Result): void {
  process.stdout.write(`\n${RESULT_MARKER}${JSON.stringify(result)}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
