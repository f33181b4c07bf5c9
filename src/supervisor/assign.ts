/**
 * Process variables: a step's `assign`, rendered once its output is known, merged into the
 * request's `vars`. Pure: the decision core calls it and commits the result with the step's.
 */
import { ErrorCodes, toStepError, type StepError } from '../errors';
import { maskedSecrets, nullMarkers, renderValue } from '../templates/render';

/** The largest `vars` a request may hold, as UTF-8 JSON. */
export const MAX_VARS_BYTES = 256 * 1024;

export type AssignResult = { vars: Record<string, unknown>; assigned: Record<string, unknown> } | { error: StepError };

/**
 * Renders `assign` over `context` (which holds the step's own output) and merges it into
 * `vars`. Every name is rendered against the same context, so one name never sees another's
 * new value. Fails, not retryably, on a template error or when the new `vars` would pass
 * {@link MAX_VARS_BYTES}; `vars` is then left as it was.
 */
export function applyAssign(stepId: string, assign: Record<string, unknown>, vars: Record<string, unknown>, context: Record<string, unknown>): AssignResult {
  let assigned: Record<string, unknown>;
  try {
    assigned = nullMarkers(renderValue(assign, context, maskedSecrets)) as Record<string, unknown>;
  } catch (err) {
    const e = toStepError(err);
    return { error: { code: e.code, message: `assign of step "${stepId}": ${e.message}`, retryable: false } };
  }
  const next = { ...vars, ...assigned };
  const bytes = Buffer.byteLength(JSON.stringify(next));
  if (bytes > MAX_VARS_BYTES) {
    return {
      error: {
        code: ErrorCodes.VARS_TOO_LARGE,
        message: `assign of step "${stepId}" would make vars ${bytes} bytes, over the limit of ${MAX_VARS_BYTES}`,
        retryable: false,
        details: { bytes, limit: MAX_VARS_BYTES, names: Object.keys(assigned) },
      },
    };
  }
  return { vars: next, assigned };
}
