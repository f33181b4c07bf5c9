/**
 * The step log's invariants (issue 17 §5), checked over every row the suite writes:
 *
 * - a finished row has `startedAt ≤ finishedAt` and `durationMs = finishedAt − startedAt`;
 * - an open row (pending, dispatched, waiting) has no `finishedAt` and no `durationMs`;
 * - a finished wait step says how it ended (`endedBy`: event, poll or timeout);
 * - every poll of a poll history obeys the same time rules.
 *
 * `test/support/step-log-hook.ts` runs {@link findStepLogViolations} on every store the test
 * process closes, before its database goes away, and fails the run if any row broke a rule.
 */
import type { SqlStore } from '../../src/store/store';

export interface StepLogViolation {
  table: 'step_runs' | 'step_polls';
  row: Record<string, unknown>;
}

const RUN_RULES = `
  (finished_at IS NOT NULL AND (started_at > finished_at OR duration_ms IS NULL OR duration_ms <> finished_at - started_at))
  OR (finished_at IS NULL AND (duration_ms IS NOT NULL OR status NOT IN ('pending', 'dispatched', 'waiting')))
  OR (kind = 'wait' AND status IN ('completed', 'failed') AND (ended_by IS NULL OR ended_by NOT IN ('event', 'poll', 'timeout')))`;
const POLL_RULES = 'started_at > finished_at OR duration_ms <> finished_at - started_at';

/** The rows of `store` that break a rule of the step log (at most 20 of each table). */
export async function findStepLogViolations(store: SqlStore): Promise<StepLogViolation[]> {
  const runs = await store.query<Record<string, unknown>>(
    `SELECT id, request_id, step_id, kind, status, started_at, finished_at, duration_ms, ended_by FROM step_runs WHERE ${RUN_RULES} LIMIT 20`,
  );
  const polls = await store.query<Record<string, unknown>>(`SELECT run_id, n, started_at, finished_at, duration_ms FROM step_polls WHERE ${POLL_RULES} LIMIT 20`);
  return [...runs.map((row) => ({ table: 'step_runs' as const, row })), ...polls.map((row) => ({ table: 'step_polls' as const, row }))];
}

/** How many step rows `store` holds (to prove the check looked at something). */
export async function countStepRows(store: SqlStore): Promise<number> {
  const [r] = await store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM step_runs');
  return Number(r?.n ?? 0);
}
