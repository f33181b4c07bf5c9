/**
 * `conveyor graph <pipeline>`: the pipeline's graph as Mermaid text, and with `--svg` or
 * `--png` as a picture. The picture is drawn by mermaid (the npm package, the same library
 * the dashboard uses) in headless Chromium driven by playwright-core; Chromium is the
 * system's (`apt-get install chromium`, or `CHROMIUM_PATH`), never a downloaded one.
 * playwright-core is a dev dependency, loaded only when a picture is asked for: a production
 * install (`npm ci --omit=dev`) prints the Mermaid text and says what to install to draw.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { loadProject } from '../../engine';
import { printVersionDiff } from './graph-diff';
import { formatIssue } from '../../errors';
import { pipelineGraph, toMermaid } from '../../pipeline/graph';
import { CommandError, parseArgs, runCommand, stepPairs, takeRepeated, UsageError, type Io } from './args';

/** Flags that keep Chromium from reaching the network or writing a profile it does not need. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

/** The Chromium to drive: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_PATH) return env.CHROMIUM_PATH;
  return existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined;
}

/** The path of mermaid's browser bundle inside node_modules. */
export function mermaidBundlePath(): string {
  return require.resolve('mermaid/dist/mermaid.min.js');
}

/** playwright-core, or a clear error when it is not installed (it is a dev dependency). */
async function loadPlaywright(): Promise<typeof import('playwright-core')> {
  try {
    return await import('playwright-core');
  } catch (e) {
    if ((e as { code?: string }).code !== 'MODULE_NOT_FOUND' && (e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new CommandError('drawing a picture needs playwright-core, a dev dependency: npm install --save-exact playwright-core@1.65.1 (or npm ci without --omit=dev); without it, use the Mermaid text');
  }
}

/** Renders Mermaid text to SVG markup, or to a PNG of that SVG. */
export async function renderMermaid(text: string, format: 'svg' | 'png', env: NodeJS.ProcessEnv = process.env): Promise<string | Buffer> {
  const executablePath = chromiumPath(env);
  if (!executablePath) throw new CommandError('drawing a picture needs Chromium: apt-get install chromium (or set CHROMIUM_PATH); without it, use the Mermaid text');
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ deviceScaleFactor: format === 'png' ? 2 : 1 });
    await page.setContent('<!doctype html><html><body style="margin:0;background:#fff"><div id="out"></div></body></html>');
    await page.addScriptTag({ path: mermaidBundlePath() });
    const svg = await page.evaluate(async (source: string) => {
      const m = (globalThis as unknown as { mermaid: { initialize(c: object): void; render(id: string, t: string): Promise<{ svg: string }> } }).mermaid;
      m.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default', flowchart: { htmlLabels: false } });
      const { svg: drawn } = await m.render('conveyor-graph', source);
      (globalThis as unknown as { document: { getElementById(id: string): { innerHTML: string } } }).document.getElementById('out').innerHTML = drawn;
      return drawn;
    }, text);
    if (format === 'svg') return svg;
    return await page.locator('#out svg').screenshot({ omitBackground: false });
  } finally {
    await browser.close();
  }
}

export const GRAPH_USAGE = `Usage: conveyor graph <pipeline> [--svg <file>] [--png <file>] [--json] [--diff <from>..<to> [--map <old=new>]]

Prints the pipeline's graph as a Mermaid flowchart. Every edge says why it is taken (its
condition, "otherwise" for next, "action <code>", and dashed "error" and "timeout" routes);
every node says what it does (its module, wait, action, delay, loop, stop, join: all).
Reads the pipelines and modules directories; no database.

Options:
  --svg <file>                also draw it as SVG into <file>
  --png <file>                also draw it as PNG into <file>
  --json                      print { nodes, edges, mermaid } instead
  --diff <from>..<to>         instead, compare two stored versions (DATABASE_URL): steps added, removed, renamed, changed
  --map <old=new>             with --diff: a renamed step (repeat for each)
Drawing needs Chromium (apt-get install chromium, or CHROMIUM_PATH).`;

export function graphCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, GRAPH_USAGE, async () => {
    const maps = takeRepeated(args, 'map');
    const a = parseArgs(maps.rest, ['svg', 'png', 'diff'], ['json', 'help']);
    if (a.switches.has('help')) return void io.out(GRAPH_USAGE);
    const [id, ...extra] = a.positional;
    if (!id || extra.length > 0) throw new UsageError('name exactly one pipeline');
    if (a.flags.diff !== undefined) return void (await printVersionDiff(io, id, a.flags.diff, stepPairs(maps.values, 'map'), a.switches.has('json')));
    if (maps.values.length > 0) throw new UsageError('--map goes with --diff');
    const { pipelines, issues } = loadProject();
    const p = pipelines.find((x) => x.id === id);
    if (!p) throw new CommandError(issues.length > 0 ? issues.map(formatIssue).join('\n') : `unknown pipeline "${id}" (known: ${pipelines.map((x) => x.id).join(', ')})`);
    const mermaid = toMermaid(p);
    for (const format of ['svg', 'png'] as const) {
      const file = a.flags[format];
      if (!file) continue;
      writeFileSync(file, await renderMermaid(mermaid, format, io.env));
      io.err(`wrote ${file}`);
    }
    if (a.switches.has('json')) return void io.out(JSON.stringify({ ...pipelineGraph(p), mermaid }, null, 2));
    io.out(mermaid);
  });
}
