/**
 * The input of `conveyor import`: NDJSON or CSV files read as streams of items, one a line,
 * with the bytes read so far for the progress bar.
 */
import * as fs from 'node:fs';
import { parse as parseCsv } from 'csv-parse';

export interface Item {
  line: number;
  bytes: number;
  payload?: Record<string, unknown>;
  error?: string;
}

/** Reads NDJSON lines (1-based numbers), tracking bytes read for the progress bar. */
export async function* ndjsonItems(file: string): AsyncGenerator<Item> {
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

export async function* csvItems(file: string, cast: boolean): AsyncGenerator<Item> {
  const parser = fs.createReadStream(file).pipe(parseCsv({ columns: true, skip_empty_lines: true, info: true, cast, bom: true, relax_column_count: false }));
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, unknown>; info: { lines: number; bytes: number } }>) {
      yield { line: rec.info.lines, bytes: rec.info.bytes, payload: unflatten(rec.record) };
    }
  } catch (err) {
    yield { line: -1, bytes: 0, error: `CSV error: ${(err as Error).message}` };
  }
}
