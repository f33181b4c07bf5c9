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
import { parse as parseCsv } from 'csv-parse';
import { ErrorCodes } from '../../errors';
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

interface Item {
  line: number;
  bytes: number;
  payload?: Record<string, unknown>;
  error?: string;
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

/** Reads NDJSON lines (1-based numbers), tracking bytes read for the progress bar. */
async function* ndjsonItems(file: string): AsyncGenerator<Item> {
  let rest = '';
  let line = 0;
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file)) {
    bytes += (chunk as Buffer).length;
    const text = rest + (chunk as Buffer).toString('utf8');
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) yield parseLine(++line, p, bytes);
  }
  if (rest.trim() !== '') yield parseLine(line + 1, rest, bytes);
}

function parseLine(line: number, text: string, bytes: number): Item {
  if (text.trim() === '') return { line, bytes };
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return { line, bytes, error: 'the line is not a JSON object' };
    return { line, bytes, payload: v as Record<string, unknown> };
  } catch (err) {
    return { line, bytes, error: `the line is not valid JSON: ${(err as Error).message}` };
  }
}

/** `{ "a.b": "1", c: "" }` → `{ a: { b: "1" } }` (empty cells are left out). */
function unflatten(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === '' || v === undefined || k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    const parts = k.split('.');
    let at = out;
    for (const p of parts.slice(0, -1)) at = (at[p] && typeof at[p] === 'object' ? at[p] : (at[p] = {})) as Record<string, unknown>;
    at[parts[parts.length - 1]!] = v;
  }
  return out;
}

async function* csvItems(file: string, cast: boolean): AsyncGenerator<Item> {
  const parser = fs.createReadStream(file).pipe(parseCsv({ columns: true, skip_empty_lines: true, info: true, cast, bom: true, relax_column_count: false }));
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, unknown>; info: { lines: number; bytes: number } }>) {
      yield { line: rec.info.lines, bytes: rec.info.bytes, payload: unflatten(rec.record) };
    }
  } catch (err) {
    yield { line: -1, bytes: 0, error: `CSV error: ${(err as Error).message}` };
  }
}

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

/** Runs an import; `log` gets progress and messages (stderr by default). */
export async function runImport(o: ImportOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<ImportSummary> {
  const started = Date.now();
  const size = fs.statSync(o.file).size;
  const isCsv = /\.csv$/i.test(o.file);
  const keyPrefix = o.keyPrefix ?? `import:${path.basename(o.file)}`;
  const stateFile = `${o.file}.import-state.json`;
  const rejectsFile = `${o.file}.rejected.ndjson`;
  const ident = { pipeline: o.pipeline, keyPrefix, idColumn: o.idColumn ?? null };
  const resumeAfter = o.resume === false ? 0 : readCheckpoint(stateFile, ident);
  const batchSize = o.batch ?? 1000;
  const concurrency = o.concurrency ?? 2;
  const rejects = fs.createWriteStream(rejectsFile, { flags: resumeAfter > 0 ? 'a' : 'w' });
  const s: ImportSummary = { lines: 0, skipped: 0, accepted: 0, replayed: 0, existing: 0, rejected: 0, seconds: 0, rate: 0, peakRssMb: 0, resumedAfter: resumeAfter };
  if (resumeAfter > 0) log(`resuming after line ${resumeAfter} (${stateFile})`);

  const mode = o.progress ?? (process.stderr.isTTY ? 'bar' : 'lines');
  const bar = mode === 'bar'
    ? new SingleBar({
      format: 'importing |{bar}| {percentage}% | {lines} lines | {rate} lines/s | ETA {eta_formatted} | stored {ok} rejected {bad}',
      barsize: 24, hideCursor: true, etaBuffer: 50, stream: process.stderr,
    })
    : undefined;
  let bytes = 0;
  const tokens = (): Record<string, unknown> => {
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    return { lines: s.lines, rate: Math.round((s.lines - s.skipped) / secs), ok: s.accepted + s.replayed + s.existing, bad: s.rejected };
  };
  bar?.start(size, 0, tokens());
  const ticker = mode === 'lines'
    ? setInterval(() => {
      const t = tokens();
      const pct = size > 0 ? Math.floor((bytes / size) * 100) : 100;
      const eta = t.rate && bytes > 0 ? Math.round(((size - bytes) / bytes) * ((Date.now() - started) / 1000)) : 0;
      log(`importing ${pct}% | ${String(t.lines)} lines | ${String(t.rate)} lines/s | ETA ${eta}s | stored ${String(t.ok)} rejected ${String(t.bad)}`);
    }, 5000)
    : undefined;

  // Batches in flight, oldest first; the checkpoint advances past a batch once it and every older one are done.
  const inFlight: Array<{ lastLine: number; done: boolean; promise: Promise<void> }> = [];
  let doneThrough = resumeAfter;
  let lastWrite = 0;
  let failure: Error | undefined;
  const advance = (force = false): void => {
    while (inFlight[0]?.done) doneThrough = inFlight.shift()!.lastLine;
    if (force || Date.now() - lastWrite > CHECKPOINT_MS) {
      writeCheckpoint(stateFile, { ...ident, doneThrough, updatedAt: new Date().toISOString() });
      lastWrite = Date.now();
    }
  };

  const reject = (line: number, error: { code: string; message: string }): void => {
    s.rejected++;
    rejects.write(`${JSON.stringify({ line, error })}\n`);
  };

  const send = async (items: Item[]): Promise<void> => {
    const body = items.map((it) => JSON.stringify({ payload: it.payload, idempotencyKey: keyOf(it) })).join('\n');
    for (let attempt = 1; ; attempt++) {
      let answers: LineAnswer[] | undefined;
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
          answers = String(res.data).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as LineAnswer);
          if (answers.length !== items.length || answers.some((a) => a.error?.code === ErrorCodes.INTERNAL)) {
            problem = 'the server could not store every line';
            answers = undefined;
          }
        } else if (res.status >= 400 && res.status < 500) {
          throw new Error(`the server refused the import: ${res.status} ${String(res.data).slice(0, 300)}`);
        } else problem = `the server answered ${res.status}`;
      } catch (err) {
        if (axios.isAxiosError(err)) problem = err.message;
        else throw err;
      }
      if (answers) {
        answers.forEach((a, i) => {
          const it = items[i]!;
          if (a.error) reject(it.line, a.error);
          else if (a.outcome === 'replayed') s.replayed++;
          else if (a.outcome === 'existing') s.existing++;
          else s.accepted++;
        });
        return;
      }
      if (attempt >= MAX_BATCH_TRIES) throw new Error(`lines ${items[0]!.line}-${items[items.length - 1]!.line} could not be stored: ${problem}`);
      // Every line carries its idempotency key: sending the batch again cannot duplicate it.
      await new Promise((r) => setTimeout(r, Math.min(15_000, 500 * 2 ** (attempt - 1))));
    }
  };

  const keyOf = (it: Item): string => {
    if (!o.idColumn) return `${keyPrefix}:${it.line}`;
    return `${keyPrefix}:${String(it.payload![o.idColumn])}`;
  };

  const flushBatch = async (items: Item[]): Promise<void> => {
    const entry = { lastLine: items[items.length - 1]!.line, done: false, promise: Promise.resolve() };
    entry.promise = send(items).then(
      () => {
        entry.done = true;
        advance();
      },
      (err: unknown) => {
        failure ??= err as Error;
      },
    );
    inFlight.push(entry);
    while (inFlight.filter((b) => !b.done).length >= concurrency && !failure) await Promise.race(inFlight.filter((b) => !b.done).map((b) => b.promise));
  };

  let batch: Item[] = [];
  try {
    for await (const it of isCsv ? csvItems(o.file, o.cast ?? false) : ndjsonItems(o.file)) {
      if (failure) break;
      bytes = it.bytes;
      if (it.line === -1) throw new Error(it.error);
      s.lines++;
      bar?.update(bytes, tokens());
      if (it.line <= resumeAfter) {
        s.skipped++;
        continue;
      }
      if (!it.payload) {
        if (it.error) reject(it.line, { code: ErrorCodes.BAD_JSON, message: it.error });
        continue;
      }
      if (o.idColumn && (it.payload[o.idColumn] === undefined || it.payload[o.idColumn] === '')) {
        reject(it.line, { code: ErrorCodes.BAD_PARAM, message: `no value in the id column "${o.idColumn}"` });
        continue;
      }
      batch.push(it);
      if (batch.length >= batchSize) {
        await flushBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0 && !failure) await flushBatch(batch);
    await Promise.all(inFlight.map((b) => b.promise));
    if (failure) throw failure;
    // Lines after the last batch (blank or rejected locally) are done too.
    inFlight.length = 0;
    doneThrough = Math.max(doneThrough, s.lines);
    advance(true);
  } finally {
    clearInterval(ticker);
    bar?.update(bytes, tokens());
    bar?.stop();
    await new Promise<void>((resolve) => rejects.end(() => resolve()));
    if (inFlight.length > 0 || failure) advance(true);
  }
  s.seconds = (Date.now() - started) / 1000;
  s.rate = Math.round((s.lines - s.skipped) / Math.max(0.001, s.seconds));
  s.peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  if (s.rejected === 0) fs.rmSync(rejectsFile, { force: true });
  return s;
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
