/**
 * The Node flags Conveyor's launchers give a process, and how to read what a process got.
 *
 * V8 sizes its young generation when the process starts (a flag set later with
 * `v8.setFlagsFromString` is read too late), so the one flag that matters for throughput is
 * on the command line: `bin/conveyor.js` names it on its first line (`#!/usr/bin/env -S node
 * --max-semi-space-size=32`), and `npm start` runs `node --max-semi-space-size=32
 * bin/conveyor.js start`. With V8's default semi-space (16 MB on 64-bit), an engine under load
 * scavenges twice as often and copies the requests in flight each time; with 32 MB it used
 * 10–25% less CPU per request (docs/performance.md, "The young generation").
 */
import * as fs from 'node:fs';

/** The flag's spellings V8 takes: dashes or underscores, `=value` or the value as the next argument. */
const SEMI_SPACE = /^--max[-_]semi[-_]space[-_]size(?:=(.*))?$/;

/**
 * The flags a `#!` line gives node: `#!/usr/bin/env -S node --a --b` (or `#!/usr/bin/node --a`)
 * answers `['--a', '--b']`; a line that is not a `#!` line for node answers `[]`.
 */
export function shebangFlags(firstLine: string): string[] {
  if (!firstLine.startsWith('#!')) return [];
  const words = firstLine.slice(2).trim().split(/\s+/);
  let i = 0;
  if (words[i]?.endsWith('/env')) {
    i++;
    if (words[i] === '-S') i++;
  }
  if (!/(^|\/)node$/.test(words[i] ?? '')) return [];
  return words.slice(i + 1);
}

/** The flags `bin/conveyor.js` starts node with (read from its first line: one source for every launcher that copies them). */
export function launchFlags(binFile: string): string[] {
  const text = fs.readFileSync(binFile, 'utf8');
  return shebangFlags(text.slice(0, text.indexOf('\n') >>> 0));
}

/**
 * The semi-space size in MB this process was started with, or `undefined` when nothing set
 * it (V8's default). `NODE_OPTIONS` is read first and the command line after it: the later
 * flag wins, as in node.
 */
export function semiSpaceMb(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let mb: number | undefined;
  const args = [...nodeOptions.split(/\s+/).filter((s) => s !== ''), ...execArgv];
  for (let i = 0; i < args.length; i++) {
    const m = SEMI_SPACE.exec(args[i]!);
    if (!m) continue;
    const value = m[1] ?? args[++i];
    const n = Number(value);
    if (value !== undefined && value.trim() !== '' && Number.isFinite(n) && n > 0) mb = n;
  }
  return mb;
}
