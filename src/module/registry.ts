/** Finding and loading modules: `modules/*.module.ts` (in-process) and `modules/*.module.json` (remote). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { processEnv, type Env } from '../config';
import type { ValidationIssue } from '../errors';
import { compileRetry } from '../pipeline/compile-values';
import { parseDuration } from '../pipeline/duration';
import type { RetryPolicy } from '../pipeline/types';
import type { Transport } from '../model';
import type { ModuleDef, RemoteModuleDef } from './types';

/** A module as the engine knows it after loading. */
export interface RegisteredModule {
  name: string;
  description?: string;
  /** Where the module runs: in this process, a remote HTTP service, or a queue worker. */
  transport: Exclude<Transport, 'engine'>;
  /** The in-process implementation, when this process has it. */
  def?: ModuleDef<never, unknown>;
  url?: string;
  timeoutMs?: number;
  /** After a `202`: how long the callback may take. */
  callbackTimeoutMs?: number;
  /** The module's default retry policy, compiled. */
  retry?: RetryPolicy;
  source: string;
}

export class ModuleRegistry {
  private readonly modules = new Map<string, RegisteredModule>();

  add(module: RegisteredModule): void {
    this.modules.set(module.name, module);
  }

  get(name: string): RegisteredModule | undefined {
    return this.modules.get(name);
  }

  names(): Set<string> {
    return new Set(this.modules.keys());
  }

  all(): RegisteredModule[] {
    return [...this.modules.values()];
  }
}

const NAME = /^[a-z0-9][a-z0-9-_]*$/;

/** Replaces `${NAME}` and `${NAME:-default}` with environment values. */
export function substituteEnv(text: string, env: Env = processEnv()): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, dflt?: string) => env[name] ?? dflt ?? '');
}

type IssueAt = (path: string, message: string) => void;

/** A `*.module.ts` (or `.js`) file: its default export, run in this process (`event` transport). */
function loadCodeModule(path: string, source: string, issues: ValidationIssue[], issue: IssueAt): RegisteredModule | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(path) as { default?: ModuleDef<never, unknown> };
  const def = loaded.default;
  if (!def || typeof def !== 'object' || typeof def.handle !== 'function' || typeof def.name !== 'string') {
    issue('', 'must `export default defineModule({ name, handle })`');
    return undefined;
  }
  const timeoutMs = def.timeout === undefined ? undefined : parseDuration(def.timeout);
  if (def.timeout !== undefined && timeoutMs === undefined) issue('timeout', `bad duration ${JSON.stringify(def.timeout)}`);
  return { name: def.name, description: def.description, transport: 'event', def, timeoutMs, retry: compileRetry({ source, issues }, def.retry, 'retry'), source };
}

/** A `*.module.json` file: a module served over HTTP elsewhere (`http` transport). */
function loadHttpModule(path: string, source: string, issues: ValidationIssue[], issue: IssueAt): RegisteredModule | undefined {
  let def: RemoteModuleDef;
  try {
    def = JSON.parse(substituteEnv(readFileSync(path, 'utf8'))) as RemoteModuleDef;
  } catch (err) {
    issue('', `invalid JSON: ${(err as Error).message}`);
    return undefined;
  }
  if (!def || typeof def !== 'object' || typeof def.name !== 'string') {
    issue('name', 'a module needs a "name"');
    return undefined;
  }
  const t = def.transport as Partial<RemoteModuleDef['transport']> | undefined;
  if (!t || t.kind !== 'http') {
    issue('transport.kind', 'must be "http"');
    return undefined;
  }
  if (typeof t.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(t.url)) {
    issue('transport.url', `must be an http(s) URL, got ${JSON.stringify(t.url)}`);
    return undefined;
  }
  const timeoutMs = t.timeout === undefined ? undefined : parseDuration(t.timeout);
  if (t.timeout !== undefined && timeoutMs === undefined) issue('transport.timeout', `bad duration ${JSON.stringify(t.timeout)}`);
  const callbackTimeoutMs = t.callbackTimeout === undefined ? undefined : parseDuration(t.callbackTimeout);
  if (t.callbackTimeout !== undefined && !callbackTimeoutMs) issue('transport.callbackTimeout', `bad duration ${JSON.stringify(t.callbackTimeout)}`);
  return { name: def.name, description: def.description, transport: 'http', url: t.url, timeoutMs, callbackTimeoutMs, retry: compileRetry({ source, issues }, def.retry, 'retry'), source };
}

/** Loads every module in `dir`. Problems are returned, not thrown, so all are reported at once. */
export function loadModules(dir: string, cwd = process.cwd()): { registry: ModuleRegistry; issues: ValidationIssue[] } {
  const registry = new ModuleRegistry();
  const issues: ValidationIssue[] = [];
  const abs = resolve(cwd, dir);
  if (!existsSync(abs)) return { registry, issues };
  for (const file of readdirSync(abs).sort()) {
    const path = join(abs, file);
    const source = relative(cwd, path).replace(/\\/g, '/');
    const issue: IssueAt = (p, message) => void issues.push({ source, path: p, message });
    try {
      let mod: RegisteredModule | undefined;
      if (/\.module\.(ts|js)$/.test(file)) mod = loadCodeModule(path, source, issues, issue);
      else if (file.endsWith('.module.json')) mod = loadHttpModule(path, source, issues, issue);
      if (!mod) continue;
      if (!NAME.test(mod.name)) issue('name', `module name ${JSON.stringify(mod.name)} must match ${NAME}`);
      const base = file.replace(/\.module\.(ts|js|json)$/, '');
      if (base !== mod.name) issue('name', `module "${mod.name}" must live in a file named ${mod.name}.module.*`);
      if (registry.get(mod.name)) issue('name', `module "${mod.name}" is defined twice`);
      registry.add(mod);
    } catch (err) {
      issue('', `failed to load: ${(err as Error).message}`);
    }
  }
  return { registry, issues };
}
