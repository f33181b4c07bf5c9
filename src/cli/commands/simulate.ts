/**
 * `conveyor simulate <pipeline>`: a dry run of a pipeline in memory. It runs the supervisor's
 * pure `decide()` exactly as the engine does, with module outputs taken from mock files and
 * user actions and events from flags. No module is called, no database is opened and nothing
 * goes over the network; delays, backoffs and poll intervals take no time.
 *
 * Steps the engine does itself (`setData`, `stop`, `delay`, `loop`) are computed as the
 * engine's supervisor computes them (`supervisor/engine-steps.ts`). A module step takes the next mock given for it, or else for its
 * module (`--mock notify=sent.json` serves every notification step); the last one repeats,
 * so a loop sees the same output each time. A mock `{ "$error": { message, code?,
 * retryable? } }` makes the step fail instead. A wait step takes the next `--event`, else the
 * next poll mock (no repeat), else `--timeout`; an action step takes the next `--action`.
 * When nothing is left to give a waiting step, the simulation ends there, `waiting`.
 */
import { collectFields } from '../../api/actions';
import { loggedParams } from '../../dispatcher/params';
import { loadProject } from '../../engine';
import { ErrorCodes, formatIssue, type StepError } from '../../errors';
import type { RequestRecord, RequestStatus } from '../../model';
import type { ModuleRegistry } from '../../module/registry';
import { PipelineCatalog } from '../../pipeline/catalog';
import { transportOf } from '../../pipeline/delivery';
import type { CompiledPipeline, CompiledStep } from '../../pipeline/types';
import type { Store } from '../../store/store';
import { anyHolds, applyDecision, decide, WAIT_TIMEOUT, type Decision, type OpenRun, type Outcome, type RequestState } from '../../supervisor/decide';
import { engineStepAnswer } from '../../supervisor/engine-steps';
import { buildState } from '../../supervisor/state';
import { maskedSecrets, renderValue } from '../../templates/render';
import { CommandError, EXIT, processIo, runCommand, type Io } from './args';
import { parseSimulateArgs, type SimulationInput } from './simulate-args';

export { parseSimulateArgs, type SimulationInput } from './simulate-args';

/** The text of `conveyor simulate --help`. */
export const SIMULATE_USAGE = `Usage: conveyor simulate <pipeline> --input in.json [options]

Dry-runs a pipeline in memory with mocked module outputs and prints the route it takes.
No module is called, no database is opened, nothing goes over the network.

Options:
  --input file.json                the request's payload
  --mock step=out.json             a module step's output; repeat for later visits (the last repeats).
                                   step may be a module name: the mock of every step of that module.
                                   {"$error": {"message": "…", "retryable": false}} makes the step fail.
                                   For a polling wait step, each mock is one poll's output.
  --action step=code[:data.json]   a user action on an action step (data: the action's fields)
  --event step=data.json           the event a wait step receives (its "data")
  --timeout step                   a wait or action step runs out of time
  --mode <word>                    request.mode, e.g. semi or auto
  --test                           request.test (ctx.test)
  --user <name>                    who takes the actions (_CURRENT_USER_), default simulate
  --json                           machine-readable output

Exit code: 0 the simulation ran (whatever status the request reached); 1 it could not (an
unknown pipeline, a step without the mock it needs); 2 bad usage.`;

/** One step run of the simulated route. */
export interface SimulatedRun {
  seq: number;
  stepId: string;
  kind: string;
  attempt: number;
  status: 'completed' | 'failed' | 'skipped' | 'cancelled';
  module: string | null;
  via: 'mock' | 'engine' | 'event' | 'action' | 'poll' | 'timeout' | 'when';
  params: unknown;
  output: unknown;
  error: StepError | null;
  /** The process variables the run's `assign` set. */
  assigned: Record<string, unknown> | null;
}

/** Where the simulated request ended, and the route it took. */
export interface SimulationResult {
  pipeline: string;
  status: RequestStatus;
  error: RequestRecord['error'];
  route: SimulatedRun[];
  /** The open steps the simulation stopped at, when nothing was left to give them. */
  waitingAt: Array<{ stepId: string; kind: string; needs: string }>;
  /** The process variables at the end. */
  vars: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** A simulation that cannot go on: a module step without a mock, an action not offered, … */
export class SimulationError extends CommandError {}

type StepOutcome = Extract<Outcome, { runId: string }>;
type Resolution = { outcome: StepOutcome; via: SimulatedRun['via'] } | { blocked: string };

/** Runs the simulation. Pure of I/O: the pipeline and registry are already loaded. */
export function simulatePipeline(pipeline: CompiledPipeline, registry: ModuleRegistry, input: SimulationInput): Promise<SimulationResult> {
  return new Simulation(pipeline, registry, input).run();
}

/** One simulated request: the engine's decisions, with the world's answers taken from the input. */
class Simulation {
  private readonly catalog: PipelineCatalog;
  private readonly mocks: Record<string, unknown[]>;
  private readonly actions: NonNullable<SimulationInput['actions']>;
  private readonly events: Record<string, unknown[]>;
  private readonly timeouts: string[];
  private readonly state: RequestState;
  private readonly route: SimulatedRun[] = [];
  private now = Date.parse('2030-01-01T00:00:00Z');
  private ids = 0;

  constructor(
    private readonly pipeline: CompiledPipeline,
    private readonly registry: ModuleRegistry,
    private readonly input: SimulationInput,
  ) {
    // The catalog's retry policy needs only the registry; no store is ever touched.
    this.catalog = new PipelineCatalog({} as Store, registry);
    this.mocks = structuredClone(input.mocks ?? {});
    this.actions = structuredClone(input.actions ?? {});
    this.events = structuredClone(input.events ?? {});
    this.timeouts = [...(input.timeouts ?? [])];
    this.state = buildState({
      id: 'simulated-request', pipelineId: pipeline.id, version: 1, status: 'buffered', businessKey: null, idempotencyKey: null,
      mode: input.mode ?? null, test: input.test ?? false, payload: input.payload, error: null, joins: {}, stepCount: 0, rev: 0,
      releaseAt: this.now, createdAt: this.now, updatedAt: this.now, finishedAt: null,
    }, []);
  }

  /** Decides, then answers the oldest open run that can be answered, until none can. */
  async run(): Promise<SimulationResult> {
    this.decide({ type: 'start' });
    let waitingAt: SimulationResult['waitingAt'] = [];
    for (let guard = 0; this.live() && guard < this.pipeline.maxSteps + 10; guard++) {
      waitingAt = [];
      let answered = false;
      for (const run of [...this.state.open.values()].sort((a, b) => a.seq - b.seq)) {
        const r = await this.resolve(run);
        if ('blocked' in r) {
          waitingAt.push({ stepId: run.stepId, kind: this.step(run).kind, needs: r.blocked });
          continue;
        }
        const entry = this.record(run, r);
        // A poll is sent as the engine sends it: the pending run is claimed first.
        if (r.via === 'poll') run.status = 'dispatched';
        const closed = this.decide(r.outcome)?.commit.finishRun;
        // The step's `assign`, and its failure when that could not be applied.
        if (closed?.assigned) entry.assigned = closed.assigned;
        if (closed?.status === 'failed' && entry.status === 'completed') Object.assign(entry, { status: 'failed', error: closed.error as StepError });
        answered = true;
        break;
      }
      if (!answered) break;
    }
    const { status, error } = this.state.request;
    const vars = this.state.request.vars ?? {};
    return { pipeline: this.pipeline.id, status, error, route: this.route, waitingAt: this.live() ? waitingAt : [], vars, context: this.state.context };
  }

  private live(): boolean {
    return this.state.request.status === 'running' || this.state.request.status === 'waiting';
  }

  private step(run: OpenRun): CompiledStep {
    return this.pipeline.steps[run.stepId]!;
  }

  private decide(outcome: Outcome): Decision | null {
    const d = decide(this.pipeline, this.state, outcome, {
      now: (this.now += 1),
      newId: () => `run-${String(++this.ids).padStart(4, '0')}`,
      random: () => 0.5,
      retryPolicy: (step) => this.catalog.retryPolicy(this.pipeline, step),
      transportOf: (step) => transportOf(step, this.registry),
    });
    if (!d) return null;
    applyDecision(this.state, d);
    // An action step whose "when" held for no entry completed as it was entered.
    for (const r of d.commit.insertRuns.filter((x) => x.status === 'completed')) {
      this.route.push({ seq: r.seq, stepId: r.stepId, kind: r.kind, attempt: r.attempt, status: 'skipped', module: null, via: 'when', params: null, output: r.output, error: null, assigned: null });
    }
    return d;
  }

  private record(run: OpenRun, r: Extract<Resolution, { outcome: StepOutcome }>): SimulatedRun {
    const step = this.step(run);
    const o = r.outcome;
    const entry: SimulatedRun = {
      seq: run.seq, stepId: run.stepId, kind: step.kind, attempt: run.attempt, status: o.type === 'completed' ? 'completed' : 'failed',
      module: step.kind === 'module' ? step.subsystem : step.kind === 'wait' && step.poll && r.via === 'poll' ? step.poll.subsystem : null,
      via: r.via, params: loggedParams(step, { ...this.state.context }, run.override),
      output: o.type === 'completed' ? o.output : null, error: o.type === 'failed' ? o.error : null, assigned: null,
    };
    this.route.push(entry);
    return entry;
  }

  private resolve(run: OpenRun): Resolution {
    const step = this.step(run);
    switch (step.kind) {
      case 'setData': case 'stop': case 'delay': case 'loop': {
        const a = engineStepAnswer(step, { ...this.state.context });
        const done = { runId: run.id, finishedAt: this.now, durationMs: 0 };
        return { via: 'engine', outcome: 'error' in a ? { type: 'failed', ...done, error: a.error } : { type: 'completed', ...done, output: a.output } };
      }
      case 'module': {
        const list = this.mocks[step.id] ?? this.mocks[step.subsystem];
        if (!list || list.length === 0) throw new SimulationError(`step "${step.id}" (module ${step.subsystem}) needs a mock: --mock ${step.id}=out.json`);
        return { via: 'mock', outcome: this.fromMock(run, list.length > 1 ? list.shift() : list[0]) };
      }
      case 'wait':
        return this.resolveWait(run, step);
      case 'action':
        return this.resolveAction(run, step);
      case 'publish': {
        // Nothing is sent: the broker's confirmation is simulated unless a mock says otherwise.
        const list = this.mocks[step.id];
        const mock = list && list.length > 0 ? (list.length > 1 ? list.shift() : list[0]) : { simulated: true, messageId: run.id };
        return { via: 'mock', outcome: this.fromMock(run, mock) };
      }
    }
  }

  private resolveWait(run: OpenRun, step: Extract<CompiledStep, { kind: 'wait' }>): Resolution {
    const ev = this.events[step.id];
    if (ev && ev.length > 0) {
      const key = step.event ? String(renderValue(step.event.key, this.state.context, maskedSecrets)) : null;
      const output = { event: step.event?.name ?? null, key, data: ev.shift() ?? null };
      return { via: 'event', outcome: { type: 'completed', runId: run.id, output, finishedAt: this.now, durationMs: 0, via: 'event' } };
    }
    const polls = this.mocks[step.id];
    if (step.poll && polls && polls.length > 0) return { via: 'poll', outcome: this.fromMock(run, polls.shift()) };
    const needs = [step.event && `--event ${step.id}=data.json`, step.poll && `--mock ${step.id}=poll.json`, step.timeoutMs !== undefined && `--timeout ${step.id}`];
    return this.timedOut(run) ?? { blocked: needs.filter(Boolean).join(' or ') };
  }

  /** Takes the next `--action`, checked as the API checks it (`visible`, fields). */
  private resolveAction(run: OpenRun, step: Extract<CompiledStep, { kind: 'action' }>): Resolution {
    const next = this.actions[step.id]?.shift();
    if (!next) return this.timedOut(run) ?? { blocked: `--action ${step.id}=<${Object.keys(step.actions).join('|')}>` };
    const action = step.actions[next.code];
    if (!action) throw new SimulationError(`step "${step.id}" has no action "${next.code}" (it has ${Object.keys(step.actions).join(', ')})`);
    if (action.visible.length > 0 && !anyHolds(action.visible, this.state.context)) throw new SimulationError(`action "${next.code}" of step "${step.id}" is not offered now: no "visible" entry holds`);
    const user = this.input.user ?? 'simulate';
    let data: Record<string, unknown>;
    try {
      data = collectFields(action, next.data, user);
    } catch (e) {
      throw new SimulationError(`action "${next.code}" of step "${step.id}": ${(e as Error).message}`);
    }
    const output = { action: next.code, label: action.label ?? null, by: user, data, at: new Date(this.now).toISOString() };
    return { via: 'action', outcome: { type: 'completed', runId: run.id, output, finishedAt: this.now, durationMs: 0, via: 'action' } };
  }

  private fromMock(run: OpenRun, mock: unknown): StepOutcome {
    const err = mock && typeof mock === 'object' ? (mock as { $error?: Partial<StepError> }).$error : undefined;
    if (!err) return { type: 'completed', runId: run.id, output: mock, finishedAt: this.now, durationMs: 0 };
    const error = { code: err.code ?? ErrorCodes.MODULE_FAILED, message: err.message ?? 'mocked failure', retryable: err.retryable ?? false };
    return { type: 'failed', runId: run.id, error, finishedAt: this.now, durationMs: 0 };
  }

  /** A `--timeout` for this step, used once. */
  private timedOut(run: OpenRun): Resolution | undefined {
    const i = this.timeouts.indexOf(run.stepId);
    if (i < 0) return undefined;
    this.timeouts.splice(i, 1);
    const error = { code: WAIT_TIMEOUT, message: `step "${run.stepId}" waited past its timeout`, retryable: false };
    return { via: 'timeout', outcome: { type: 'failed', runId: run.id, error, finishedAt: this.now, durationMs: 0 } };
  }
}

// ---- the command ---------------------------------------------------------------------------

const short = (v: unknown, max = 110): string => {
  const text = JSON.stringify(v) ?? 'null';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** Prints the route as a table, step by step. */
export function formatSimulation(r: SimulationResult, mode: string | null | undefined): string[] {
  const lines = [`simulate ${r.pipeline}${mode ? ` (mode ${mode})` : ''}: ${r.route.length} step run(s)`];
  const width = Math.max(4, ...r.route.map((s) => s.stepId.length));
  for (const s of r.route) {
    const what = s.module ? `${s.kind} ${s.module}` : s.kind;
    const result = s.status === 'failed' ? `${s.error?.code}: ${s.error?.message}` : short(s.output);
    const assigned = s.assigned ? `  vars ← ${short(s.assigned, 80)}` : '';
    lines.push(`  ${String(s.seq).padStart(3)}  ${s.stepId.padEnd(width)}  ${what.padEnd(28)}  ${s.status.padEnd(9)} ${s.via.padEnd(7)} ${result}${assigned}`);
  }
  for (const w of r.waitingAt) lines.push(`  ...  ${w.stepId.padEnd(width)}  ${w.kind.padEnd(28)}  waiting   (give it ${w.needs})`);
  if (Object.keys(r.vars).length > 0) lines.push(`vars: ${short(r.vars, 200)}`);
  lines.push(`status: ${r.status}${r.error ? ` (${r.error.code} at ${r.error.stepId}: ${r.error.message})` : ''}`);
  return lines;
}

/** `conveyor simulate`: exit 0 when the simulation ran (whatever the request's status), 1 when it could not, 2 on usage. */
export function simulateCommand(args: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, SIMULATE_USAGE, async () => {
    if (args.includes('--help')) {
      io.out(SIMULATE_USAGE);
      return EXIT.OK;
    }
    const { pipeline: id, input, json } = parseSimulateArgs(args);
    const { pipelines, registry, issues } = loadProject();
    const pipeline = pipelines.find((p) => p.id === id);
    if (!pipeline) throw new CommandError(issues.length > 0 ? `invalid configuration:\n${issues.map(formatIssue).join('\n')}` : `unknown pipeline "${id}"`);
    const result = await simulatePipeline(pipeline, registry, input);
    if (json) io.out(JSON.stringify(result, null, 2));
    else formatSimulation(result, input.mode).forEach((l) => io.out(l));
    return EXIT.OK;
  });
}
