/** The command line of `conveyor simulate`, read into a {@link SimulationInput}. */
import { readFileSync } from 'node:fs';
import { UsageError } from './args';

/** What a simulation is given: the payload, the request's flags, and what stands in for the world. */
export interface SimulationInput {
  payload: Record<string, unknown>;
  mode?: string | null;
  test?: boolean;
  /** stepId (or module name) → outputs (or `{ $error }`) in visit order. */
  mocks?: Record<string, unknown[]>;
  actions?: Record<string, Array<{ code: string; data: Record<string, unknown> }>>;
  events?: Record<string, unknown[]>;
  timeouts?: string[];
  user?: string;
}

function readJsonFile(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** `step=value`: the step id and the value. */
function splitStep(flag: string, value: string): [string, string] {
  const i = value.indexOf('=');
  if (i <= 0) throw new UsageError(`--${flag} takes step=… (got "${value}")`);
  return [value.slice(0, i), value.slice(i + 1)];
}

/** The input being filled: the lists the flags append to are always there. */
type Filling = SimulationInput & Required<Pick<SimulationInput, 'mocks' | 'actions' | 'events' | 'timeouts'>>;

const push = <T>(into: Record<string, T[]>, step: string, v: T): void => void (into[step] ??= []).push(v);

/** Applies one `--name value` option to the input; `true` when it was `--input`. */
function applyOption(input: Filling, name: string, value: string): boolean {
  switch (name) {
    case 'input': {
      const v = readJsonFile(value, '--input');
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError('--input must hold a JSON object');
      input.payload = v as Record<string, unknown>;
      return true;
    }
    case 'mock': {
      const [step, file] = splitStep(name, value);
      push(input.mocks, step, readJsonFile(file, `--mock ${step}`));
      break;
    }
    case 'action': {
      const [step, rest] = splitStep(name, value);
      const [code, file] = rest.split(/:(.*)/s, 2) as [string, string | undefined];
      const data = file ? readJsonFile(file, `--action ${step}`) : {};
      if (!code || !data || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`--action ${step}: needs code[:data.json] with a JSON object`);
      push(input.actions, step, { code, data: data as Record<string, unknown> });
      break;
    }
    case 'event': {
      const [step, file] = splitStep(name, value);
      push(input.events, step, readJsonFile(file, `--event ${step}`));
      break;
    }
    case 'timeout':
      input.timeouts.push(value);
      break;
    case 'mode':
      input.mode = value;
      break;
    case 'user':
      input.user = value;
      break;
    default:
      throw new UsageError(`unknown option --${name}`);
  }
  return false;
}

/** Reads the command line into a simulation input; repeated flags keep their order. */
export function parseSimulateArgs(args: string[]): { pipeline: string; input: SimulationInput; json: boolean } {
  const input: Filling = { payload: {}, mocks: {}, actions: {}, events: {}, timeouts: [] };
  let pipeline: string | undefined;
  let json = false;
  let sawInput = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      if (pipeline) throw new UsageError(`unexpected argument "${a}"`);
      pipeline = a;
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === 'json' || name === 'test') {
      if (name === 'json') json = true;
      else input.test = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (applyOption(input, name, value)) sawInput = true;
  }
  if (!pipeline) throw new UsageError('which pipeline? conveyor simulate <pipeline> --input in.json');
  if (!sawInput) throw new UsageError('--input in.json is required');
  return { pipeline, input, json };
}
