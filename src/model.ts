/**
 * The records Conveyor keeps, as the engine sees them (no database types here). `store/`
 * maps them to rows; `supervisor/` decides over them.
 */

export const REQUEST_STATUSES = ['buffered', 'running', 'waiting', 'completed', 'stopped', 'error_stop'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
/** Statuses after which nothing moves a request by itself. */
export const TERMINAL_STATUSES: ReadonlySet<RequestStatus> = new Set(['completed', 'stopped']);
/** Statuses in which the engine is responsible for moving the request on. */
export const ACTIVE_STATUSES: readonly RequestStatus[] = ['running', 'waiting'];

export const STEP_RUN_STATUSES = ['pending', 'dispatched', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type StepRunStatus = (typeof STEP_RUN_STATUSES)[number];
/** A run in one of these statuses still owes a result. */
export const OPEN_RUN_STATUSES: readonly StepRunStatus[] = ['pending', 'dispatched', 'waiting'];

export type Transport = 'event' | 'http' | 'queue' | 'engine';

export interface RequestRecord {
  id: string;
  pipelineId: string;
  version: number;
  status: RequestStatus;
  businessKey: string | null;
  idempotencyKey: string | null;
  mode: string | null;
  test: boolean;
  payload: unknown;
  /** The process variables (`vars` in the context), changed by steps' `assign`. Absent: `{}`. */
  vars?: Record<string, unknown>;
  /** Set when the request went to `error_stop`. */
  error: RequestError | null;
  /** Arrivals at `join: 'all'` steps. */
  joins: Record<string, string[]>;
  stepCount: number;
  /** The step budget an operator gave on resume, replacing the pipeline's `maxSteps` (absent: the pipeline's). */
  maxSteps?: number | null;
  rev: number;
  releaseAt: number | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The actor id that submitted it (absent on requests made by triggers or before issue 12). */
  submittedBy?: string | null;
  /**
   * Whether the request has an end-of-request callback URL, when known. Read, never written:
   * the supervisor asks for it (`getRequest(id, { callback: true })`) so that a request without
   * one costs no callback claim when it ends.
   */
  hasCallback?: boolean;
  /** The request span's ids while tracing is on (see `tracing/spans.ts`), else null/absent. */
  traceContext?: string | null;
}

export interface RequestError {
  stepId: string;
  runId: string;
  attempt: number;
  code: string;
  message: string;
  details?: unknown;
}

export interface StepRunRecord {
  id: string;
  requestId: string;
  pipelineId: string;
  stepId: string;
  seq: number;
  attempt: number;
  status: StepRunStatus;
  kind: string;
  module: string | null;
  transport: Transport | null;
  params: unknown;
  output: unknown;
  error: unknown;
  causedBy: string | null;
  availableAt: number | null;
  /** Until when the engine that sent this run answers for it (absent: not leased). */
  leaseUntil?: number | null;
  /** A wait step's event name and rendered key. */
  waitEvent?: string | null;
  waitKey?: string | null;
  /** When a wait/action step times out. */
  deadlineAt?: number | null;
  /** Operator-edited params (resume), replacing the step's params for this run. */
  override?: Record<string, unknown> | null;
  /** The process variables this run set (its step's `assign`, rendered). */
  assigned?: Record<string, unknown> | null;
  /** A polling wait: how many polls it made, and when the last one answered. */
  polls?: number;
  lastPollAt?: number | null;
  /** How a wait or action step ended: `event`, `poll`, `action` or `timeout`. */
  endedBy?: EndedBy | null;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
}

/** How a holding step (wait, action) ended. */
export type EndedBy = 'event' | 'poll' | 'action' | 'timeout';

/** One poll of a polling wait, kept in the run's poll history. */
export interface PollRecord {
  runId: string;
  requestId: string;
  /** 1 for the first poll. */
  n: number;
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  output: unknown;
  error: unknown;
}

/**
 * Everything one decision changes for one request, committed atomically. The commit is
 * refused (and nothing of it written) when the request's `rev` is no longer `expectRev`, or
 * when `finishRun` names a run that is no longer open: that is what makes a step result
 * commit exactly once.
 */
export interface RequestCommit {
  requestId: string;
  expectRev: number;
  /**
   * True when the commit changes the request's status or finish time as its decision saw
   * them: the store then skips the guard that keeps them (a stale view is refused by `rev`).
   */
  moved?: boolean;
  request: {
    status: RequestStatus;
    error: RequestError | null;
    joins: Record<string, string[]>;
    stepCount: number;
    /** Written only when set (an operator's larger budget on resume). */
    maxSteps?: number;
    finishedAt: number | null;
    updatedAt: number;
    /** The request's whole new `vars`, present only when a step assigned some. */
    vars?: Record<string, unknown>;
  };
  finishRun?: {
    id: string;
    status: 'completed' | 'failed';
    output?: unknown;
    error?: unknown;
    /** What the run's `assign` set (absent when the step assigns nothing). */
    assigned?: Record<string, unknown>;
    finishedAt: number;
    durationMs: number;
    endedBy?: EndedBy | null;
    /** A polling wait's final poll count. */
    polls?: number;
    lastPollAt?: number;
    /**
     * The run was open in the request's row (`openRow`): it is not updated in `step_runs` but
     * inserted there, ended, as one of `endedRows`.
     */
    inRow?: boolean;
  };
  /**
   * A poll of a polling wait that was not done: the run stays open (back to `pending`, due at
   * `availableAt`) and the poll goes to its history. Refused like `finishRun` when the run is
   * no longer the dispatched poll with `polls - 1` polls.
   */
  repollRun?: { id: string; availableAt: number; polls: number; output: unknown; lastPollAt: number };
  /** The poll that this commit records in the run's poll history (a repoll, or the final poll). */
  poll?: PollRecord;
  /** Open runs to close as `cancelled` (the request stopped or failed around them). */
  cancelRuns: string[];
  insertRuns: StepRunRecord[];
  /**
   * The attempt open in the request's row (migration `1763800000370`): one of `insertRuns`,
   * kept in the row instead of being inserted into `step_runs` (which gets it once, ended);
   * `null` when the row's attempt ends and none takes its place; absent, the row keeps what it has.
   */
  openRow?: StepRunRecord | null;
  /**
   * With `openRow`: the row held an attempt with the same status before (a step that ends one
   * dispatched attempt and sends the next), so SQLite's first guard need not name
   * `open_status` (migration `1763800000380`); it checks the row's status instead.
   */
  openStatusKept?: boolean;
  /** Attempts that were open in the request's row and end with this commit: inserted into `step_runs`, ended. */
  endedRows?: StepRunRecord[];
  /** Admin alerts owed because this commit puts the request in `error_stop`, one per channel. */
  alerts?: AdminAlertRow[];
  /**
   * The request's participants after this commit, when they changed (or it is the first):
   * its rows are replaced by these. `createdAt` is the request's, the search's sort key.
   */
  participants?: { createdAt: number; rows: ParticipantRow[] };
}

/** A new admin alert row, written with the commit that stops the request on an error. */
export interface AdminAlertRow {
  id: string;
  requestId: string;
  pipelineId: string;
  /** `webhook` or `module:<name>` */
  channel: string;
  createdAt: number;
}

/** One participant of a request in one role (a pipeline's `participants`). */
export interface ParticipantRow {
  role: string;
  actorId: string;
}

/** The `request` key of a request's context (templates, conditions, participants). */
export function requestInfo(r: RequestRecord): Record<string, unknown> {
  return { id: r.id, pipeline: r.pipelineId, version: r.version, businessKey: r.businessKey, mode: r.mode, test: r.test, actor: r.submittedBy ?? null };
}
