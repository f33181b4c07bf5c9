/**
 * A migration plan: which version a request moves to, and which of its old steps become which
 * new ones. Steps with the same id map to themselves unless the plan says otherwise.
 */
import { ClientError, ErrorCodes } from '../errors';
import { REQUEST_STATUSES, type RequestStatus } from '../model';

/** What to do with a waiting run whose event or key differs in the target step. */
export type WaitRule = 'keep' | 'rekey';

export interface MigrationPlan {
  toVersion: number;
  /** `{ '<step in the old version>': '<step in the new one>' }` */
  mapping: Record<string, string>;
  /**
   * By target step id: `keep` leaves a waiting run's stored event name and key as they are (it
   * still wakes on the old event); `rekey` takes the target step's event name and renders its
   * key again from the request's context.
   */
  waits?: Record<string, WaitRule>;
}

/** Which requests of a pipeline a bulk migration takes (all of `fromVersion` that have not ended, by default). */
export interface MigrationFilter {
  status?: RequestStatus;
  /** Only requests with an open run of this (old) step. */
  step?: string;
  businessKey?: string;
  /** Created at or after (ms). */
  since?: number;
  /** Created before (ms). */
  until?: number;
}

/** One reason a request cannot move, in the style of `conveyor validate`. */
export interface MigrationProblem {
  path: string;
  message: string;
}

/** The step a request's old step becomes. */
export function mapStep(plan: Pick<MigrationPlan, 'mapping'>, stepId: string): string {
  return Object.hasOwn(plan.mapping, stepId) ? plan.mapping[stepId]! : stepId;
}

const bad = (message: string): ClientError => new ClientError(400, ErrorCodes.BAD_BODY, message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const STEP_ID = /^[A-Za-z0-9_.-]{1,100}$/;

function stringMap(value: unknown, name: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) throw bad(`"${name}" must be an object of step ids`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!STEP_ID.test(k) || typeof v !== 'string' || !STEP_ID.test(v)) throw bad(`"${name}.${k.slice(0, 100)}" must map a step id to a step id`);
    out[k] = v;
  }
  return out;
}

/** Reads a plan from a request body; a malformed one is a 400. */
export function parsePlan(body: unknown): MigrationPlan {
  if (!isObject(body)) throw bad('a migration plan is { "toVersion": <n>, "mapping": { "<old step>": "<new step>" } }');
  const { toVersion } = body;
  if (!Number.isInteger(toVersion) || (toVersion as number) < 1) throw bad('"toVersion" must be a version number (1 or more)');
  const waits = stringMap(body.waits, 'waits');
  for (const [k, v] of Object.entries(waits)) if (v !== 'keep' && v !== 'rekey') throw bad(`"waits.${k}" must be "keep" or "rekey"`);
  const plan: MigrationPlan = { toVersion: toVersion as number, mapping: stringMap(body.mapping, 'mapping') };
  if (Object.keys(waits).length > 0) plan.waits = waits as Record<string, WaitRule>;
  return plan;
}

const time = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw bad(`"filter.${name}" must be an ISO-8601 time`);
  return ms;
};

/** Reads a bulk migration's filter. */
export function parseFilter(value: unknown): MigrationFilter {
  if (value === undefined) return {};
  if (!isObject(value)) throw bad('"filter" must be an object: { status, step, businessKey, since, until }');
  const f: MigrationFilter = {};
  if (value.status !== undefined) {
    if (!(REQUEST_STATUSES as readonly unknown[]).includes(value.status)) throw bad(`"filter.status" must be one of ${REQUEST_STATUSES.join(', ')}`);
    f.status = value.status as RequestStatus;
  }
  if (value.step !== undefined) {
    if (typeof value.step !== 'string' || !STEP_ID.test(value.step)) throw bad('"filter.step" must be a step id');
    f.step = value.step;
  }
  if (value.businessKey !== undefined) {
    if (typeof value.businessKey !== 'string' || value.businessKey.length > 255) throw bad('"filter.businessKey" must be a string (at most 255)');
    f.businessKey = value.businessKey;
  }
  const since = time(value.since, 'since');
  const until = time(value.until, 'until');
  if (since !== undefined) f.since = since;
  if (until !== undefined) f.until = until;
  return f;
}
