/**
 * The participants table (`request_participants`): written with the commits that change it,
 * and read to scope searches to one actor. Statements only; the store runs them.
 */
import type { ParticipantRow, RequestCommit } from '../model';
import { insertStmts } from './rows';
import type { SqlExecutor, Stmt } from './sql-executor';

export const PARTICIPANT_COLUMNS = 'request_id, actor_id, role, created_at';

/** For the held commits that carry participants: delete the request's rows, insert the new ones. */
export function participantStmts(commits: readonly RequestCommit[], chunk: number): Stmt[] {
  const changed = commits.filter((c) => c.participants);
  if (changed.length === 0) return [];
  const ids = changed.map((c) => c.requestId);
  const out: Stmt[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    out.push({ sql: `DELETE FROM request_participants WHERE request_id IN (${part.map(() => '?').join(',')})`, params: part });
  }
  // One request may be committed twice in a batch: its last set wins.
  const last = new Map<string, RequestCommit>();
  for (const c of changed) last.set(c.requestId, c);
  const rows = [...last.values()].flatMap((c) => c.participants!.rows.map((r) => [c.requestId, r.actorId, r.role, c.participants!.createdAt]));
  return [...out, ...insertStmts('request_participants', PARTICIPANT_COLUMNS, rows, chunk)];
}

/** A new request's participant rows, written in the transaction that stores it. */
export interface NewAccess {
  requestId: string;
  createdAt: number;
  rows: ParticipantRow[];
}

/** The inserts of new requests' participant rows (nothing to delete: the requests are new). */
export function newParticipantStmts(entries: readonly NewAccess[], chunk: number): Stmt[] {
  if (entries.length === 0) return [];
  const rows = entries.flatMap((e) => e.rows.map((r) => [e.requestId, r.actorId, r.role, e.createdAt]));
  return insertStmts('request_participants', PARTICIPANT_COLUMNS, rows, chunk);
}

/** Which of these requests have a participant row for one of `actors`. */
export async function requestsOfActors(x: SqlExecutor, ids: string[], actors: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < ids.length && actors.length > 0; i += 500) {
    const part = ids.slice(i, i + 500);
    const rows = await x.all<{ request_id: string }>(
      `SELECT DISTINCT request_id FROM request_participants WHERE request_id IN (${part.map(() => '?').join(',')}) AND actor_id IN (${actors.map(() => '?').join(',')})`,
      [...part, ...actors],
    );
    for (const r of rows) out.add(String(r.request_id));
  }
  return out;
}
