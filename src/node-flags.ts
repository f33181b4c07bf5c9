/**
 * The Node flags Conveyor's launchers give a process, and how to read what a process got.
 *
 * V8 sizes its young generation when the process starts (a flag set later with
 * `v8.setFlagsFromString` is read too late), so the one flag that matters for throughput has
 * to be on node's command line or in `NODE_OPTIONS`. `npm start` runs `node
 * --max-semi-space-size=32 bin/conveyor.js start`; `npx conveyor <role>` takes it from
 * `NODE_OPTIONS=--max-semi-space-size=32` (`bin/conveyor.js` keeps the portable `#!/usr/bin/env
 * node`: BusyBox's `env`, on Alpine, has no `-S` to pass node a flag). With V8's default
 * semi-space (16 MB on 64-bit), an engine with many requests in flight scavenges twice as
 * often and copies them each time (docs/performance.md, "The young generation").
 */

/** The flags `npm start` gives node, and the bench gives every child (`test/unit/node-flags.test.ts` holds `npm start` to them). */
export const LAUNCH_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** The flag's spellings V8 takes: dashes or underscores, with `=value` (node refuses the value as a separate argument). */
const SEMI_SPACE = /^--max[-_]semi[-_]space[-_]size=(.*)$/;

/**
 * The semi-space size in MB this process was started with, or `undefined` when nothing set
 * it (V8's default). `NODE_OPTIONS` is read first and the command line after it: the later
 * flag wins, as in node.
 */
export function semiSpaceMb(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let mb: number | undefined;
  for (const arg of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const value = SEMI_SPACE.exec(arg)?.[1];
    if (value === undefined || value.trim() === '') continue;
    const n = Number(value);
    if (Number.isFinite(n) && n > 0) mb = n;
  }
  return mb;
}
