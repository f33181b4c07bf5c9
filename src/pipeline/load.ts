/** Reading `pipelines/*.pipeline.ts` and `*.pipeline.json` and compiling them. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { ValidationIssue } from '../errors';
import { compilePipeline } from './compile';
import type { CompiledPipeline } from './types';

/** Loads and validates every pipeline in `dir`; all problems are returned together. */
export function loadPipelines(dir: string, modules: ReadonlySet<string>, cwd = process.cwd()): { pipelines: CompiledPipeline[]; issues: ValidationIssue[] } {
  const abs = resolve(cwd, dir);
  const pipelines: CompiledPipeline[] = [];
  const issues: ValidationIssue[] = [];
  if (!existsSync(abs)) {
    issues.push({ source: dir, path: '', message: 'pipelines directory does not exist' });
    return { pipelines, issues };
  }
  const seen = new Map<string, string>();
  for (const file of readdirSync(abs).sort()) {
    const m = /^(.*)\.pipeline\.(ts|js|json)$/.exec(file);
    if (!m) continue;
    const path = join(abs, file);
    const source = relative(cwd, path).replace(/\\/g, '/').replace(/\.pipeline\.(ts|js|json)$/, '');
    let def: unknown;
    try {
      if (m[2] === 'json') def = JSON.parse(readFileSync(path, 'utf8'));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      else def = (require(path) as { default?: unknown }).default;
    } catch (err) {
      issues.push({ source, path: '', message: `failed to load: ${(err as Error).message}` });
      continue;
    }
    if (def === undefined) {
      issues.push({ source, path: '', message: 'must `export default definePipeline({...})`' });
      continue;
    }
    const res = compilePipeline(def, { source, modules });
    issues.push(...res.issues);
    if (!res.pipeline) continue;
    if (res.pipeline.id !== m[1]) {
      issues.push({ source, path: 'id', message: `pipeline "${res.pipeline.id}" must live in a file named ${res.pipeline.id}.pipeline.${m[2]}` });
    }
    const other = seen.get(res.pipeline.id);
    if (other) issues.push({ source, path: 'id', message: `pipeline "${res.pipeline.id}" is also defined in ${other}` });
    seen.set(res.pipeline.id, source);
    if (res.issues.length === 0) pipelines.push(res.pipeline);
  }
  return { pipelines, issues };
}
