/**
 * The folders of `src/` import one way (issue 14, item 4): no import cycle between them.
 *
 * Each folder of `src/` is one unit (`api`, `pipeline`, …), and so is each file at its top
 * (`engine.ts`, `errors.ts`). Every relative import between two units is an edge: `import`,
 * `import type`, `export … from`, `import('…')` in a type or a call, and `require('…')` all
 * count, since a type-only import ties two folders together as much as any other. A cycle
 * inside one folder is not this check's business (eslint's `import-x/no-cycle` sees files).
 *
 * The layering it keeps, lowest first (a unit imports only units below it):
 *   errors.ts, model.ts, ids.ts, config.ts (leaf files) · tracing · log · bus · conditions ·
 *   templates · http · pipeline · store · module · transports · brokers · notify · dispatcher ·
 *   access · supervisor · intake · sources · housekeeping · migration · engine.ts · metrics ·
 *   dashboard · api · index.ts (the package's exports) · cli
 *
 * `npm run lint` runs it (`tsx scripts/check-cycles.ts [src-dir]`): it prints each cycle with
 * the imports that make it and exits 1. test/unit/folder-cycles.test.ts runs it on `src/` and
 * on trees with a planted cycle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * Folder pairs (`'a<->b'`, names sorted) still allowed to be in a cycle while the work that
 * closes them is merged. The one allow-list: it only ever shrinks. The check fails on a cycle
 * not listed here, and on an entry that is no longer a cycle (remove it).
 */
export const ALLOWED_CYCLES: readonly string[] = [];

/** Source files by their path under the source folder (`api/app.ts`), with their text. */
export type SourceTree = ReadonlyMap<string, string>;

/** Unit → units it imports → the imports that make the edge (`api/app.ts -> engine.ts`). */
export type FolderGraph = Map<string, Map<string, string[]>>;

export interface CycleReport {
  /** Every pair of units on a common cycle, `'a<->b'`, sorted. */
  pairs: string[];
  /** Pairs in a cycle that the allow-list does not name: the check fails on these. */
  added: string[];
  /** Allow-list entries that are no longer a cycle: the check fails on these too. */
  stale: string[];
  /** The units of each cycle (a strongly connected component of two or more units). */
  components: string[][];
  graph: FolderGraph;
}

const SOURCE = /\.(?:ts|tsx|mts|cts)$/;

/** Reads every TypeScript file under `dir`, keyed by its path relative to `dir` with `/`. */
export function readSourceTree(dir: string): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (sub: string): void => {
    for (const entry of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (SOURCE.test(entry.name)) tree.set(rel, readFileSync(path.join(dir, rel), 'utf8'));
    }
  };
  walk('');
  return tree;
}

/** The unit a file belongs to: its top folder, or the file itself when it sits at the top. */
export function unitOf(file: string): string {
  return file.split('/')[0];
}

/** The file of `tree` a relative specifier names, the way TypeScript resolves it; `undefined` outside the tree. */
function resolve(tree: SourceTree, from: string, spec: string): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  if (base.startsWith('..')) return undefined;
  const stem = base.replace(/\.(?:js|mjs|cjs)$/, '');
  const candidates = [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.cts`, `${base}/index.ts`];
  return candidates.find((c) => tree.has(c));
}

/** The relative specifiers a file imports, in any form, types included; comments and strings are not imports. */
function specifiersOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

/** The import graph between units, with the file imports behind each edge. */
export function folderGraph(tree: SourceTree): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const [file, text] of tree) {
    for (const spec of specifiersOf(text)) {
      const target = resolve(tree, file, spec);
      if (!target || unitOf(target) === unitOf(file)) continue;
      const out = graph.get(unitOf(file)) ?? new Map<string, string[]>();
      graph.set(unitOf(file), out);
      const why = out.get(unitOf(target)) ?? [];
      out.set(unitOf(target), why);
      const edge = `${file} -> ${target}`;
      if (!why.includes(edge)) why.push(edge);
    }
  }
  return graph;
}

/** Tarjan's strongly connected components, keeping those of two or more units. */
function components(graph: FolderGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => a[0].localeCompare(b[0]));
}

/** `'a<->b'` with the names sorted, the form of {@link ALLOWED_CYCLES}. */
export function pairName(a: string, b: string): string {
  return a < b ? `${a}<->${b}` : `${b}<->${a}`;
}

/** Finds the cycles between the units of `tree` and compares them with the allow-list. */
export function checkCycles(tree: SourceTree, allowed: readonly string[] = ALLOWED_CYCLES): CycleReport {
  const graph = folderGraph(tree);
  const comps = components(graph);
  const pairs = new Set<string>();
  for (const comp of comps) {
    for (const a of comp) for (const b of graph.get(a)?.keys() ?? []) if (comp.includes(b)) pairs.add(pairName(a, b));
  }
  const sorted = [...pairs].sort();
  return {
    pairs: sorted,
    added: sorted.filter((p) => !allowed.includes(p)),
    stale: allowed.filter((p) => !pairs.has(p)),
    components: comps,
    graph,
  };
}

/** What the check prints: each cycle with the imports that close it, or one line when all is well. */
export function formatReport(report: CycleReport): string {
  if (report.added.length === 0 && report.stale.length === 0) {
    const open = report.pairs.length > 0 ? ` (${report.pairs.length} allowed pair(s) still open: ${report.pairs.join(', ')})` : '';
    return `check-cycles: the folders of src/ import one way${open}`;
  }
  const lines: string[] = [];
  if (report.added.length > 0) {
    lines.push(`check-cycles: ${report.added.length} folder pair(s) of src/ import each other (type imports count): ${report.added.join(', ')}`);
    for (const comp of report.components) {
      lines.push(`  cycle through ${comp.join(', ')}:`);
      for (const a of comp) {
        for (const [b, why] of report.graph.get(a) ?? []) {
          if (comp.includes(b)) lines.push(`    ${a} -> ${b}: ${why.join('; ')}`);
        }
      }
    }
  }
  if (report.stale.length > 0) {
    lines.push(`check-cycles: no longer a cycle, remove from ALLOWED_CYCLES in scripts/check-cycles.ts: ${report.stale.join(', ')}`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'src'));
  const report = checkCycles(readSourceTree(dir));
  const ok = report.added.length === 0 && report.stale.length === 0;
  (ok ? process.stdout : process.stderr).write(`${formatReport(report)}\n`);
  process.exitCode = ok ? 0 : 1;
}
