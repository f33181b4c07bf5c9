/**
 * `conveyor import <file.ndjson|file.csv> --pipeline <id>`: streams a file of payloads into a
 * pipeline through the bulk route, with a progress bar (rate, ETA), in flat memory:
 *
 * - the file is read as a stream and sent in batches (`--batch`, default 1000 lines), at most
 *   `--concurrency` batches (default 2) in flight; reading waits for them (backpressure);
 * - every line carries an idempotency key: `<prefix>:<line number>`, or `<prefix>:<value>`
 *   with `--id-column <name>`; the prefix defaults to `import:<file name>` (`--key-prefix`);
 * - a checkpoint file (`<file>.import-state.json`) records the last line such that every line
 *   up to it was stored. A new run resumes after it (`--no-resume` starts over). Lines sent
 *   twice (after a crash between a batch and its checkpoint) are idempotent replays, never
 *   duplicates;
 * - rejected lines go to `<file>.rejected.ndjson` with their reason.
 *
 * CSV files need a header row; a column named `a.b` becomes `{ a: { b } }` and empty cells are
 * left out. Values stay strings unless `--cast` (numbers and booleans). Exit code: 0 when
 * every line was stored, 1 when some were rejected or a batch kept failing, 2 on bad usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import axios from 'axios';
import { SingleBar } from 'cli-progress';
import { ErrorCodes } from '../../errors';
import { csvItems, ndjsonItems, type Item } from './import-read';
import { CLIENT_FLAGS, CLIENT_OPTIONS, clientKey, clientUrl, CommandError, EXIT, parseArgs, runCommand, UsageError, type Io } from './args';

export interface ImportOptions {
  file: string;
  pipeline: string;
  /** The API (`clientUrl`: CONVEYOR_URL, else http://HOST:PORT). */
  url: string;
  /** API key with the `submit` role (`clientKey`: CONVEYOR_API_KEY or CONVEYOR_KEY). */
  key: string;
  idColumn?: string;
  keyPrefix?: string;
  /** @default 1000 */
  batch?: number;
  /** @default 2 */
  concurrency?: number;
  /** @default true */
  resume?: boolean;
  test?: boolean;
  cast?: boolean;
  /** `bar` on a terminal, else `lines` (a status line every 5 s). */
  progress?: 'bar' | 'lines' | 'none';
}

export interface ImportSummary {
  lines: number;
  skipped: number;
  accepted: number;
  replayed: number;
  existing: number;
  rejected: number;
  seconds: number;
  rate: number;
  peakRssMb: number;
  resumedAfter: number;
}

interface Checkpoint {
  pipeline: string;
  keyPrefix: string;
  idColumn: string | null;
  doneThrough: number;
  updatedAt: string;
}

type LineAnswer = { line: number; id?: string; outcome?: string; error?: { code: string; message: string } };

const MAX_BATCH_TRIES = 8;

/** How often the checkpoint file is rewritten (ms); `CONVEYOR_IMPORT_CHECKPOINT_MS=0` writes it after every batch. */
const CHECKPOINT_MS = Number(process.env.CONVEYOR_IMPORT_CHECKPOINT_MS ?? 1000);

function readCheckpoint(file: string, expect: Omit<Checkpoint, 'doneThrough' | 'updatedAt'>): number {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Checkpoint;
    return c.pipeline === expect.pipeline && c.keyPrefix === expect.keyPrefix && c.idColumn === expect.idColumn ? Number(c.doneThrough) || 0 : 0;
  } catch {
    return 0;
  }
}

function writeCheckpoint(file: string, c: Checkpoint): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(c));
  fs.renameSync(tmp, file);
}

/** The progress shown while importing: a bar on a terminal, else a status line every 5 s, or nothing. */
class Progress {
  /** Bytes of the file read so far. */
  bytes = 0;
  private readonly bar?: SingleBar;
  private readonly ticker?: NodeJS.Timeout;

  constructor(mode: ImportOptions['progress'], size: number, private readonly started: number, private readonly s: ImportSummary, log: (line: string) => void) {
    this.bar = mode === 'bar'
      ? new SingleBar({
        format: 'importing |{bar}| {percentage}% | {lines} lines | {rate} lines/s | ETA {eta_formatted} | stored {ok} rejected {bad}',
        barsize: 24, hideCursor: true, etaBuffer: 50, stream: process.stderr,
      })
      : undefined;
    this.bar?.start(size, 0, this.tokens());
    this.ticker = mode === 'lines'
      ? setInterval(() => {
        const t = this.tokens();
        const pct = size > 0 ? Math.floor((this.bytes / size) * 100) : 100;
        const eta = t.rate && this.bytes > 0 ? Math.round(((size - this.bytes) / this.bytes) * ((Date.now() - started) / 1000)) : 0;
        log(`importing ${pct}% | ${String(t.lines)} lines | ${String(t.rate)} lines/s | ETA ${eta}s | stored ${String(t.ok)} rejected ${String(t.bad)}`);
      }, 5000)
      : undefined;
  }

  private tokens(): Record<string, unknown> {
    const s = this.s;
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    return { lines: s.lines, rate: Math.round((s.lines - s.skipped) / secs), ok: s.accepted + s.replayed + s.existing, bad: s.rejected };
  }

  update(): void {
    this.bar?.update(this.bytes, this.tokens());
  }

  stop(): void {
    clearInterval(this.ticker);
    this.update();
    this.bar?.stop();
  }
}

/**
 * Posts one batch to the bulk route until the server stored every line (or refused the
 * import): the answers, one a line. Every line carries its idempotency key, so sending a
 * batch again cannot duplicate it.
 */
async function postBatch(o: ImportOptions, items: Item[], body: string): Promise<LineAnswer[]> {
  for (let attempt = 1; ; attempt++) {
    let problem: string | undefined;
    try {
      const res = await axios.post(`${o.url.replace(/\/+$/, '')}/api/pipelines/${encodeURIComponent(o.pipeline)}/requests/bulk?envelope=1${o.test ? '&test=1' : ''}`, body, {
        headers: { authorization: `Bearer ${o.key}`, 'content-type': 'application/x-ndjson' },
        responseType: 'text',
        transformResponse: [(d: unknown) => d],
        validateStatus: () => true,
        timeout: 120_000,
        maxBodyLength: Infinity,
      });
      if (res.status === 200) {
        const answers = String(res.data).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as LineAnswer);
        if (answers.length === items.length && !answers.some((a) => a.error?.code === ErrorCodes.INTERNAL)) return answers;
        problem = 'the server could not store every line';
      } else if (res.status >= 400 && res.status < 500) {
        throw new Error(`the server refused the import: ${res.status} ${String(res.data).slice(0, 300)}`);
      } else problem = `the server answered ${res.status}`;
    } catch (err) {
      if (axios.isAxiosError(err)) problem = err.message;
      else throw err;
    }
    if (attempt >= MAX_BATCH_TRIES) throw new Error(`lines ${items[0]!.line}-${items[items.length - 1]!.line} could not be stored: ${problem}`);
    // Every line carries its idempotency key: sending the batch again cannot duplicate it.
    await new Promise((r) => setTimeout(r, Math.min(15_000, 500 * 2 ** (attempt - 1))));
  }
}

/** One run of an import: the file read into batches, their answers counted, the checkpoint kept. */
class ImportRun {
  readonly started = Date.now();
  readonly s: ImportSummary;
  private readonly keyPrefix: string;
  private readonly stateFile: string;
  private readonly rejectsFile: string;
  private readonly ident: Omit<Checkpoint, 'doneThrough' | 'updatedAt'>;
  private readonly resumeAfter: number;
  private readonly rejects: fs.WriteStream;
  private readonly progress: Progress;
  /** Batches in flight, oldest first; the checkpoint advances past a batch once it and every older one are done. */
  private readonly inFlight: Array<{ lastLine: number; done: boolean; promise: Promise<void> }> = [];
  private doneThrough: number;
  private lastWrite = 0;
  private failure: Error | undefined;

  constructor(private readonly o: ImportOptions, log: (line: string) => void) {
    const size = fs.statSync(o.file).size;
    this.keyPrefix = o.keyPrefix ?? `import:${path.basename(o.file)}`;
    this.stateFile = `${o.file}.import-state.json`;
    this.rejectsFile = `${o.file}.rejected.ndjson`;
    this.ident = { pipeline: o.pipeline, keyPrefix: this.keyPrefix, idColumn: o.idColumn ?? null };
    this.resumeAfter = o.resume === false ? 0 : readCheckpoint(this.stateFile, this.ident);
    this.doneThrough = this.resumeAfter;
    this.rejects = fs.createWriteStream(this.rejectsFile, { flags: this.resumeAfter > 0 ? 'a' : 'w' });
    this.s = { lines: 0, skipped: 0, accepted: 0, replayed: 0, existing: 0, rejected: 0, seconds: 0, rate: 0, peakRssMb: 0, resumedAfter: this.resumeAfter };
    if (this.resumeAfter > 0) log(`resuming after line ${this.resumeAfter} (${this.stateFile})`);
    this.progress = new Progress(o.progress ?? (process.stderr.isTTY ? 'bar' : 'lines'), size, this.started, this.s, log);
  }

  private advance(force = false): void {
    while (this.inFlight[0]?.done) this.doneThrough = this.inFlight.shift()!.lastLine;
    if (force || Date.now() - this.lastWrite > CHECKPOINT_MS) {
      writeCheckpoint(this.stateFile, { ...this.ident, doneThrough: this.doneThrough, updatedAt: new Date().toISOString() });
      this.lastWrite = Date.now();
    }
  }

  private reject(line: number, error: { code: string; message: string }): void {
    this.s.rejected++;
    this.rejects.write(`${JSON.stringify({ line, error })}\n`);
  }

  private keyOf(it: Item): string {
    if (!this.o.idColumn) return `${this.keyPrefix}:${it.line}`;
    return `${this.keyPrefix}:${String(it.payload![this.o.idColumn])}`;
  }

  private async send(items: Item[]): Promise<void> {
    const body = items.map((it) => JSON.stringify({ payload: it.payload, idempotencyKey: this.keyOf(it) })).join('\n');
    const answers = await postBatch(this.o, items, body);
    answers.forEach((a, i) => {
      const it = items[i]!;
      if (a.error) this.reject(it.line, a.error);
      else if (a.outcome === 'replayed') this.s.replayed++;
      else if (a.outcome === 'existing') this.s.existing++;
      else this.s.accepted++;
    });
  }

  private async flushBatch(items: Item[]): Promise<void> {
    const entry = { lastLine: items[items.length - 1]!.line, done: false, promise: Promise.resolve() };
    entry.promise = this.send(items).then(
      () => {
        entry.done = true;
        this.advance();
      },
      (err: unknown) => {
        this.failure ??= err as Error;
      },
    );
    this.inFlight.push(entry);
    const concurrency = this.o.concurrency ?? 2;
    while (this.inFlight.filter((b) => !b.done).length >= concurrency && !this.failure) await Promise.race(this.inFlight.filter((b) => !b.done).map((b) => b.promise));
  }

  /** Counts a line read; whether it goes into a batch (not skipped on resume, nor rejected here). */
  private take(it: Item): boolean {
    this.progress.bytes = it.bytes;
    if (it.line === -1) throw new Error(it.error);
    this.s.lines++;
    this.progress.update();
    if (it.line <= this.resumeAfter) {
      this.s.skipped++;
      return false;
    }
    if (!it.payload) {
      if (it.error) this.reject(it.line, { code: ErrorCodes.BAD_JSON, message: it.error });
      return false;
    }
    if (this.o.idColumn && (it.payload[this.o.idColumn] === undefined || it.payload[this.o.idColumn] === '')) {
      this.reject(it.line, { code: ErrorCodes.BAD_PARAM, message: `no value in the id column "${this.o.idColumn}"` });
      return false;
    }
    return true;
  }

  /** Reads the whole file in batches and waits for them; the checkpoint then names the last line. */
  async run(): Promise<void> {
    const batchSize = this.o.batch ?? 1000;
    let batch: Item[] = [];
    for await (const it of /\.csv$/i.test(this.o.file) ? csvItems(this.o.file, this.o.cast ?? false) : ndjsonItems(this.o.file)) {
      if (this.failure) break;
      if (!this.take(it)) continue;
      batch.push(it);
      if (batch.length >= batchSize) {
        await this.flushBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0 && !this.failure) await this.flushBatch(batch);
    await Promise.all(this.inFlight.map((b) => b.promise));
    if (this.failure) throw this.failure;
    // Lines after the last batch (blank or rejected locally) are done too.
    this.inFlight.length = 0;
    this.doneThrough = Math.max(this.doneThrough, this.s.lines);
    this.advance(true);
  }

  /** Stops the progress, closes the rejects file, and keeps the checkpoint of a run that failed. */
  async close(): Promise<void> {
    this.progress.stop();
    await new Promise<void>((resolve) => this.rejects.end(() => resolve()));
    if (this.inFlight.length > 0 || this.failure) this.advance(true);
  }

  summary(): ImportSummary {
    const s = this.s;
    s.seconds = (Date.now() - this.started) / 1000;
    s.rate = Math.round((s.lines - s.skipped) / Math.max(0.001, s.seconds));
    s.peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    if (s.rejected === 0) fs.rmSync(this.rejectsFile, { force: true });
    return s;
  }
}

/** Runs an import; `log` gets progress and messages (stderr by default). */
export async function runImport(o: ImportOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<ImportSummary> {
  const run = new ImportRun(o, log);
  try {
    await run.run();
  } finally {
    await run.close();
  }
  return run.summary();
}

export const IMPORT_USAGE = `Usage: conveyor import <file.ndjson|file.csv> --pipeline <id> [options]

Streams a file of payloads into a pipeline through the bulk route, in batches, with a
progress bar. Resumable: a new run continues after the last stored line, without duplicates.
CSV needs a header row; a column a.b becomes { a: { b } }; empty cells are left out.

Options:
  --pipeline <id>             the pipeline (required)
  --id-column <name>          idempotency key per line from this field, instead of the line number
  --key-prefix <prefix>       the idempotency keys' prefix (default import:<file name>)
  --batch <n>                 lines per call (default 1000)
  --concurrency <n>           calls in flight (default 2)
  --no-resume                 start over, ignoring <file>.import-state.json
  --cast                      CSV: numbers and booleans instead of strings
  --test                      submit test requests
  --progress <mode>           bar, lines or none (default a bar on a terminal, else a line every 5 s)
${CLIENT_OPTIONS}

Rejected lines go to <file>.rejected.ndjson with their reason.
Exit code: 0 every line stored; 1 some lines rejected, or a batch kept failing; 2 bad usage.`;

const PROGRESS = ['bar', 'lines', 'none'];

/** The command-line entry: parses the options, runs, prints the summary, gives the exit code. */
export function importCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, IMPORT_USAGE, async () => {
    const a = parseArgs(args, ['pipeline', 'id-column', 'key-prefix', 'batch', 'concurrency', 'progress', ...CLIENT_FLAGS], ['no-resume', 'cast', 'test', 'help']);
    if (a.switches.has('help')) return void io.out(IMPORT_USAGE);
    const [file, ...extra] = a.positional;
    if (!file || extra.length > 0) throw new UsageError('name exactly one file');
    if (!a.flags.pipeline) throw new UsageError('--pipeline is required');
    const positive = (name: string, d: number): number => {
      const v = a.flags[name];
      if (v === undefined) return d;
      if (!Number.isInteger(Number(v)) || Number(v) <= 0) throw new UsageError(`--${name} must be a positive whole number`);
      return Number(v);
    };
    const progress = a.flags.progress;
    if (progress !== undefined && !PROGRESS.includes(progress)) throw new UsageError('--progress is bar, lines or none');
    const batch = positive('batch', 1000);
    const concurrency = positive('concurrency', 2);
    if (!fs.existsSync(file)) throw new CommandError(`no such file: ${file}`);
    const key = clientKey(io.env, a.flags);
    if (!key) throw new CommandError('an API key with the submit role is needed: --key, or CONVEYOR_API_KEY (or CONVEYOR_KEY)');
    const s = await runImport({
      file, pipeline: a.flags.pipeline, url: clientUrl(io.env, a.flags), key, idColumn: a.flags['id-column'], keyPrefix: a.flags['key-prefix'],
      batch, concurrency, resume: !a.switches.has('no-resume'), test: a.switches.has('test'), cast: a.switches.has('cast'),
      progress: progress as ImportOptions['progress'],
    }, io.err);
    io.out(
      `imported ${path.basename(file)} into ${a.flags.pipeline}: ${s.lines - s.skipped} lines in ${s.seconds.toFixed(1)} s (${s.rate} lines/s): ` +
        `${s.accepted} accepted, ${s.replayed} replayed, ${s.existing} existing, ${s.rejected} rejected` +
        `${s.skipped > 0 ? `, ${s.skipped} skipped (resumed after line ${s.resumedAfter})` : ''}; peak RSS ${s.peakRssMb} MB`,
    );
    if (s.rejected === 0) return EXIT.OK;
    io.err(`conveyor: ${s.rejected} line(s) rejected; the lines and their reasons: ${file}.rejected.ndjson`);
    return EXIT.FAILED;
  });
}
