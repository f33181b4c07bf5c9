/** `conveyor prune --older-than 30d [--archive file.ndjson] [--dry-run]`: retention by hand. */
import { createWriteStream } from 'node:fs';
import { Engine } from '../../engine';
import { pruneOnce } from '../../housekeeping/retention';
import { createLogger } from '../../log/logger';
import { parseDuration } from '../../pipeline/duration';

export async function pruneCommand(flags: Record<string, string>, out: (line: string) => void): Promise<number> {
  const maxAgeMs = parseDuration(flags['older-than']);
  if (!maxAgeMs) {
    out('usage: conveyor prune --older-than <duration, e.g. 30d> [--archive file.ndjson] [--dry-run]');
    return 2;
  }
  const engine = await Engine.create({ logger: createLogger('warn') });
  try {
    if (flags['dry-run']) {
      const rows = await engine.store.query<{ n: unknown }>(
        "SELECT COUNT(*) AS n FROM requests WHERE status IN ('completed', 'stopped') AND finished_at < ?", [Date.now() - maxAgeMs],
      );
      out(`would prune ${Number(rows[0]?.n ?? 0)} request(s) that ended more than ${flags['older-than']} ago`);
      return 0;
    }
    const archive = flags.archive ? createWriteStream(flags.archive, { flags: 'a' }) : undefined;
    const beforeDelete = archive
      ? async (ids: string[]): Promise<void> => {
        for (const id of ids) {
          const found = await engine.getRequest(id);
          if (found && !archive.write(`${JSON.stringify({ request: found.request, steps: found.runs })}\n`)) {
            await new Promise<void>((r) => archive.once('drain', () => r()));
          }
        }
      }
      : undefined;
    const n = await pruneOnce(engine.store, { maxAgeMs, beforeDelete });
    if (archive) await new Promise<void>((r) => archive.end(() => r()));
    out(`pruned ${n} request(s) that ended more than ${flags['older-than']} ago${archive ? `, archived to ${flags.archive}` : ''}`);
    return 0;
  } finally {
    await engine.stop({ deadlineMs: 0 });
  }
}
