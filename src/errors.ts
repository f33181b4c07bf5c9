/**
 * The one catalog of Conveyor's errors. Codes are stable strings, easy to grep, and they are
 * what an API client sees in `{ error: { code, message, details } }`.
 */

export const ErrorCodes = {
  // client mistakes (4xx)
  BAD_JSON: 'CONVEYOR_ERR_BAD_JSON',
  BAD_BODY: 'CONVEYOR_ERR_BAD_BODY',
  UNSUPPORTED_MEDIA_TYPE: 'CONVEYOR_ERR_UNSUPPORTED_MEDIA_TYPE',
  BODY_TOO_LARGE: 'CONVEYOR_ERR_BODY_TOO_LARGE',
  FORBIDDEN_KEY: 'CONVEYOR_ERR_FORBIDDEN_KEY',
  TOO_DEEP: 'CONVEYOR_ERR_TOO_DEEP',
  BAD_PARAM: 'CONVEYOR_ERR_BAD_PARAM',
  UNAUTHORIZED: 'CONVEYOR_ERR_UNAUTHORIZED',
  FORBIDDEN: 'CONVEYOR_ERR_FORBIDDEN',
  /** A bearer token that is not a well-formed JWT, or lacks `sub`. */
  TOKEN_INVALID: 'CONVEYOR_ERR_TOKEN_INVALID',
  /** A JWT whose signature does not verify (or whose key is unknown). */
  TOKEN_SIGNATURE: 'CONVEYOR_ERR_TOKEN_SIGNATURE',
  /** A JWT signed with an algorithm Conveyor does not accept (`none` among them). */
  TOKEN_ALGORITHM: 'CONVEYOR_ERR_TOKEN_ALGORITHM',
  TOKEN_EXPIRED: 'CONVEYOR_ERR_TOKEN_EXPIRED',
  /** A JWT not yet valid (`nbf`/`iat` in the future) or with another bad time claim. */
  TOKEN_NOT_YET_VALID: 'CONVEYOR_ERR_TOKEN_NOT_YET_VALID',
  TOKEN_ISSUER: 'CONVEYOR_ERR_TOKEN_ISSUER',
  TOKEN_AUDIENCE: 'CONVEYOR_ERR_TOKEN_AUDIENCE',
  /** A JWT arrived but this server has no `CONVEYOR_JWT_SECRET` / `CONVEYOR_JWT_JWKS_URL`. */
  TOKENS_DISABLED: 'CONVEYOR_ERR_TOKENS_DISABLED',
  /** `X-Conveyor-Actor*` headers from a caller without the `delegate` role, or delegating roles it does not hold. */
  DELEGATION_FORBIDDEN: 'CONVEYOR_ERR_DELEGATION_FORBIDDEN',
  NOT_FOUND: 'CONVEYOR_ERR_NOT_FOUND',
  UNKNOWN_PIPELINE: 'CONVEYOR_ERR_UNKNOWN_PIPELINE',
  UNKNOWN_REQUEST: 'CONVEYOR_ERR_UNKNOWN_REQUEST',
  METHOD_NOT_ALLOWED: 'CONVEYOR_ERR_METHOD_NOT_ALLOWED',
  /** The HTTP message itself was malformed (Node's parser refused it before any route ran). */
  BAD_REQUEST: 'CONVEYOR_ERR_BAD_REQUEST',
  HEADERS_TOO_LARGE: 'CONVEYOR_ERR_HEADERS_TOO_LARGE',
  CALLBACK_TOKEN: 'CONVEYOR_ERR_CALLBACK_TOKEN',
  ACTION_NOT_OFFERED: 'CONVEYOR_ERR_ACTION_NOT_OFFERED',
  NOT_APPLICABLE: 'CONVEYOR_ERR_NOT_APPLICABLE',
  RATE_LIMITED: 'CONVEYOR_ERR_RATE_LIMITED',
  CALLBACK_EXPIRED: 'CONVEYOR_ERR_CALLBACK_EXPIRED',
  CALLBACK_CONFLICT: 'CONVEYOR_ERR_CALLBACK_CONFLICT',
  IDEMPOTENCY_MISMATCH: 'CONVEYOR_ERR_IDEMPOTENCY_MISMATCH',
  BUSINESS_KEY_ACTIVE: 'CONVEYOR_ERR_BUSINESS_KEY_ACTIVE',
  /** `X-Business-Key` (or a bulk line's `businessKey`) disagrees with the payload's value at the pipeline's key path. */
  BUSINESS_KEY_MISMATCH: 'CONVEYOR_ERR_BUSINESS_KEY_MISMATCH',
  /** `resume { params }` names a param that the failed step does not list in `resumable`. */
  PARAM_NOT_RESUMABLE: 'CONVEYOR_ERR_PARAM_NOT_RESUMABLE',
  /** A request that a migration plan cannot move (its problems are the details). */
  MIGRATION_REFUSED: 'CONVEYOR_ERR_MIGRATION_REFUSED',
  /** A second migration of a pipeline while one that changes requests runs. */
  MIGRATION_RUNNING: 'CONVEYOR_ERR_MIGRATION_RUNNING',
  UNKNOWN_MIGRATION: 'CONVEYOR_ERR_UNKNOWN_MIGRATION',
  /** A URL Conveyor would call is refused by the outbound rule (`CONVEYOR_OUTBOUND_ALLOW`). */
  OUTBOUND_REFUSED: 'CONVEYOR_ERR_OUTBOUND_REFUSED',
  /** The business key was used by a request that ended, and the pipeline's `reuse` refuses it. */
  DUPLICATE_REQUEST: 'CONVEYOR_ERR_DUPLICATE_REQUEST',
  /** A step run that the request does not have. */
  UNKNOWN_STEP_RUN: 'CONVEYOR_ERR_UNKNOWN_STEP_RUN',
  // configuration
  INVALID_PIPELINE: 'CONVEYOR_ERR_INVALID_PIPELINE',
  INVALID_MODULE: 'CONVEYOR_ERR_INVALID_MODULE',
  // step execution
  MODULE_FAILED: 'CONVEYOR_ERR_MODULE_FAILED',
  /** A publish step's message was not confirmed by the broker (unreachable, refused, unroutable, no ack in time). */
  PUBLISH_FAILED: 'CONVEYOR_ERR_PUBLISH_FAILED',
  NON_RETRYABLE: 'CONVEYOR_ERR_NON_RETRYABLE',
  TIMEOUT: 'CONVEYOR_ERR_TIMEOUT',
  HTTP_STATUS: 'CONVEYOR_ERR_HTTP_STATUS',
  HTTP_CONNECTION: 'CONVEYOR_ERR_HTTP_CONNECTION',
  HTTP_BAD_RESPONSE: 'CONVEYOR_ERR_HTTP_BAD_RESPONSE',
  UNKNOWN_MODULE: 'CONVEYOR_ERR_UNKNOWN_MODULE',
  TEMPLATE: 'CONVEYOR_ERR_TEMPLATE',
  JOIN_INCOMPLETE: 'CONVEYOR_ERR_JOIN_INCOMPLETE',
  /** A wait or action ran out of time, or a poll ran out of `maxPolls`. */
  WAIT_TIMEOUT: 'CONVEYOR_ERR_WAIT_TIMEOUT',
  /** A step run names a step missing from the request's pinned pipeline version. */
  UNKNOWN_STEP: 'CONVEYOR_ERR_UNKNOWN_STEP',
  MAX_STEPS: 'CONVEYOR_ERR_MAX_STEPS',
  /** A step's `assign` would make the request's `vars` larger than their limit (256 KiB). */
  VARS_TOO_LARGE: 'CONVEYOR_ERR_VARS_TOO_LARGE',
  // internal
  INTERNAL: 'CONVEYOR_ERR_INTERNAL',
  SHUTTING_DOWN: 'CONVEYOR_ERR_SHUTTING_DOWN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface ConveyorErrorOptions {
  status?: number;
  retryable?: boolean;
  details?: unknown;
  cause?: unknown;
}

/** The base of every error Conveyor raises on purpose. */
export class ConveyorError extends Error {
  readonly code: ErrorCode;
  /** HTTP status when this error answers a request. */
  readonly status: number;
  /** Whether a step that failed with this error may be tried again. */
  readonly retryable: boolean;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, options: ConveyorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** A client's mistake: the status is 4xx and the message is safe to show. */
export class ClientError extends ConveyorError {
  constructor(status: number, code: ErrorCode, message: string, details?: unknown) {
    super(code, message, { status, details });
  }
}

/** One problem found while validating a pipeline, with the exact path of the culprit. */
export interface ValidationIssue {
  /** `pipelines/bitrix-lead` */
  source: string;
  /** `steps.get-bitrix-deal.condition[1].result[0]` */
  path: string;
  message: string;
}

/** Formats an issue the way `conveyor validate` prints it. */
export function formatIssue(issue: ValidationIssue): string {
  return `${issue.source}: ${issue.path ? `${issue.path}: ` : ''}${issue.message}`;
}

/** A pipeline (or several) failed validation; the engine refuses to start. */
export class PipelineValidationError extends ConveyorError {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super(ErrorCodes.INVALID_PIPELINE, issues.map(formatIssue).join('\n'), { status: 500, details: issues });
    this.issues = issues;
  }
}

/**
 * Throw this from a module to say that trying again cannot help (bad input, a refused
 * operation). The step fails at once, without further attempts.
 */
export class NonRetryableError extends ConveyorError {
  constructor(message: string, details?: unknown) {
    super(ErrorCodes.NON_RETRYABLE, message, { retryable: false, details });
  }
}

/** A step attempt that did not finish in its time limit. */
export class StepTimeoutError extends ConveyorError {
  constructor(stepId: string, timeoutMs: number) {
    super(ErrorCodes.TIMEOUT, `step "${stepId}" timed out after ${timeoutMs} ms`, { retryable: true });
  }
}

/** The serialisable form of a step's failure, as stored in the step log. */
export interface StepError {
  code: string;
  message: string;
  retryable: boolean;
  details?: unknown;
}

/** Turns anything a module threw into a bounded, serialisable step error. Never throws. */
export function toStepError(err: unknown): StepError {
  try {
    if (err instanceof ConveyorError) {
      return { code: err.code, message: truncate(String(err.message)), retryable: err.retryable, details: boundDetails(err.details) };
    }
    if (err instanceof Error) {
      return { code: ErrorCodes.MODULE_FAILED, message: truncate(String(err.message || err.name)), retryable: true };
    }
    return { code: ErrorCodes.MODULE_FAILED, message: truncate(`module threw a non-Error value: ${describe(err)}`), retryable: true };
  } catch {
    // A value whose every use throws (a hostile Proxy, a throwing getter): say so, and no more.
    return { code: ErrorCodes.MODULE_FAILED, message: 'module threw a value that cannot be inspected', retryable: true };
  }
}

/** Text for a thrown non-Error: JSON when it has one, else String(), else its type. */
function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // circular, BigInt inside, or a throwing toJSON
  }
  try {
    return String(value);
  } catch {
    // no prototype (Object.create(null)): no toString
    return `[${typeof value}]`;
  }
}

/** A module's error details are stored with the step: large ones are replaced by a note. */
function boundDetails(details: unknown, max = 10_000): unknown {
  if (details === undefined) return undefined;
  let size: number;
  try {
    size = JSON.stringify(details)?.length ?? 0;
  } catch {
    return '[details are not JSON-serialisable]';
  }
  return size > max ? `[details omitted: ${size} characters of JSON, over ${max}]` : details;
}

function truncate(text: string, max = 2000): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
