/**
 * The one compile step of a pipeline: untrusted data in (a `.pipeline.ts` default export or a
 * parsed `.pipeline.json`), every problem out with its exact path, and, when there is none,
 * a {@link CompiledPipeline} with defaults applied and durations in ms.
 *
 * Validation never stops at the first problem: an integrator fixing a JSON file should see
 * them all at once.
 */
import { describeValue } from '../conditions/compile';
import type { ValidationIssue } from '../errors';
import { checkPrev, checkReachable, findCycle, type StepEdges } from './compile-graph';
import { compileStep, type StepScope } from './compile-step';
import {
  checkDuration, checkKeys, checkString, compileIntake, compileRetry, isRecord, report, type IssueSink,
} from './compile-values';
import { compileSources } from './compile-brokers';
import { compileIntakeOptions, compileTriggers } from './compile-intake';
import { compileParticipants, compileRedact } from './compile-people';
import { hashDefinition } from './hash';
import type { CompiledPipeline, CompiledStep, PipelineDef } from './types';

/** What a pipeline is compiled against. */
export interface CompileOptions {
  /** Where the definition came from, prefixed to every issue: `pipelines/bitrix-lead`. */
  source: string;
  /** The names of the modules the engine knows; a step's `subsystem` must be one of them. */
  modules: ReadonlySet<string>;
}

/** The outcome of {@link compilePipeline}: `pipeline` is set exactly when `issues` is empty. */
export interface CompileResult {
  pipeline?: CompiledPipeline;
  issues: ValidationIssue[];
}

/** A pipeline id is a slug: it appears in URLs and file names. */
export const PIPELINE_ID = /^[a-z0-9][a-z0-9-_]*$/;

/** @default 1000: how many step runs one request may make, so that any loop ends. */
export const DEFAULT_MAX_STEPS = 1000;

const TOP_KEYS: ReadonlySet<string> = new Set(['id', 'description', 'start', 'steps', 'intake', 'schedule', 'sources', 'defaults', 'maxSteps', 'participants', 'redact']);
const DEFAULTS_KEYS: ReadonlySet<string> = new Set(['timeout', 'retry']);

function checkId(sink: IssueSink, id: unknown): void {
  if (id === undefined) report(sink, 'id', 'is required');
  else if (typeof id !== 'string' || !PIPELINE_ID.test(id)) {
    report(sink, 'id', `must be a slug matching ${PIPELINE_ID.source} (got ${describeValue(id)})`);
  }
}

function checkStart(sink: IssueSink, start: unknown, stepIds: ReadonlySet<string>): start is string {
  if (start === undefined) {
    report(sink, 'start', 'is required');
    return false;
  }
  if (typeof start !== 'string') {
    report(sink, 'start', `must be a step id (got ${describeValue(start)})`);
    return false;
  }
  if (!stepIds.has(start)) {
    report(sink, 'start', `unknown step "${start}"`);
    return false;
  }
  return true;
}

/** `maxSteps`, or `undefined` when it is set to something that bounds nothing. */
function checkMaxSteps(sink: IssueSink, value: unknown): number | undefined {
  if (value === undefined) return DEFAULT_MAX_STEPS;
  if (Number.isInteger(value) && (value as number) > 0) return value as number;
  report(sink, 'maxSteps', `must be a positive integer (got ${describeValue(value)})`);
  return undefined;
}

function compileDefaults(sink: IssueSink, value: unknown): CompiledPipeline['defaults'] {
  if (value === undefined) return {};
  if (!isRecord(value)) {
    report(sink, 'defaults', `must be an object (got ${describeValue(value)})`);
    return {};
  }
  checkKeys(sink, value, DEFAULTS_KEYS, 'defaults');
  const defaults: CompiledPipeline['defaults'] = {};
  const timeoutMs = checkDuration(sink, value.timeout, 'defaults.timeout', true);
  const retry = compileRetry(sink, value.retry, 'defaults.retry');
  if (timeoutMs !== undefined) defaults.timeoutMs = timeoutMs;
  if (retry) defaults.retry = retry;
  return defaults;
}

function readSteps(sink: IssueSink, value: unknown): Record<string, unknown> {
  if (!isRecord(value) || Object.keys(value).length === 0) {
    report(sink, 'steps', value === undefined ? 'is required' : `must be a non-empty object of steps (got ${describeValue(value)})`);
    return {};
  }
  return value;
}

/**
 * Validates an untrusted pipeline definition and compiles it. Every issue carries
 * `opts.source` and the exact path of the culprit, e.g.
 * `pipelines/bitrix-lead: steps.get-bitrix-deal.condition[1].result[0]: unknown step "get-deal-by-id"`.
 *
 * Besides the shape of every value, it checks: unknown keys (typo protection), unknown steps
 * in any route, unknown modules, reserved or malformed step ids, `prev` agreeing with the
 * routes both ways, `join: 'all'` with fewer than 2 `prev`, steps unreachable from `start`,
 * and unbounded loops.
 *
 * Loops: a cycle is allowed (seed 000's auto mode loops `LOOP → INIT`), because `maxSteps`
 * always bounds a request (default {@link DEFAULT_MAX_STEPS}). A loop is reported as
 * unbounded only when `maxSteps` is explicitly set to something that is not a positive
 * integer, such as `0`; that value is reported as invalid too.
 *
 * A step's `retry`, when given, is complete on its own: the fields it leaves out take the
 * engine defaults (see `RETRY_DEFAULTS`), not `defaults.retry`. When a step has no `retry`,
 * `retry` stays undefined so the dispatcher can fall back to the module's policy.
 */
export function compilePipeline(def: unknown, opts: CompileOptions): CompileResult {
  const sink: IssueSink = { source: opts.source, issues: [] };
  if (!isRecord(def)) {
    report(sink, '', `a pipeline definition must be an object (got ${describeValue(def)})`);
    return { issues: sink.issues };
  }
  checkKeys(sink, def, TOP_KEYS, '');
  checkId(sink, def.id);
  const description = checkString(sink, def.description, 'description');
  const rawSteps = readSteps(sink, def.steps);
  const stepIds: ReadonlySet<string> = new Set(Object.keys(rawSteps));
  const startKnown = checkStart(sink, def.start, stepIds);

  const scope: StepScope = { ...sink, stepIds, modules: opts.modules };
  // A null prototype: a lookup of an unknown id such as `constructor` must not find Object's.
  const steps: Record<string, CompiledStep> = Object.create(null);
  const graph = new Map<string, StepEdges>();
  for (const [id, raw] of Object.entries(rawSteps)) {
    const { step, edges } = compileStep(scope, id, raw);
    if (step) steps[id] = step;
    graph.set(id, edges);
  }

  const intake = compileIntake(sink, def.intake);
  const intakeOptions = compileIntakeOptions(sink, def.intake);
  const triggers = compileTriggers(sink, def.schedule);
  const sources = compileSources(sink, def.sources);
  const defaults = compileDefaults(sink, def.defaults);
  const maxSteps = checkMaxSteps(sink, def.maxSteps);
  const participants = compileParticipants(sink, def.participants, stepIds);
  const redact = compileRedact(sink, def.redact, stepIds);

  checkPrev(sink, graph);
  if (startKnown) checkReachable(sink, graph, def.start as string);
  const cycle = maxSteps === undefined ? findCycle(graph) : undefined;
  if (cycle) report(sink, 'maxSteps', `the loop ${cycle.map((s) => `"${s}"`).join(' → ')} has no bound`);

  if (sink.issues.length > 0) return { issues: sink.issues };
  const pipeline: CompiledPipeline = {
    id: def.id as string,
    start: def.start as string,
    steps,
    intake,
    intakeOptions,
    triggers,
    maxSteps: maxSteps as number,
    defaults,
    participants,
    redact,
    hash: hashDefinition(def),
    definition: def as unknown as PipelineDef,
    source: opts.source,
  };
  if (description !== undefined) pipeline.description = description;
  if (sources.length > 0) pipeline.sources = sources;
  return { pipeline, issues: [] };
}
