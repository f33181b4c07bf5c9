/** `conveyor prune --older-than 30d [--archive file.ndjson] [--dry-run]`: retention by hand. */
import { createWriteStream } from 'node:fs';
import { Engine } from '../../engine';
import { pruneOnce } from '../../housekeeping/retention';
import { createLogger } from '../../log/logger';
import { parseDuration } from '../../pipeline/duration';
import { DEFAULT_DATABASE_URL } from '../../store/data-source';
import { parseArgs, runCommand, UsageError, type Io } from './args';

export const PRUNE_USAGE = `Usage: conveyor prune --older-than <duration> [options]

Deletes the requests that ended (completed or stopped) longer ago than <duration>, with
their step logs and audit, in batches; requests in error_stop are kept. Works on
DATABASE_URL (default ${DEFAULT_DATABASE_URL}); CONVEYOR_RETENTION does the same every minute.

Options:
  --older-than <duration>     e.g. 30d, 12h (required)
  --archive <file.ndjson>     first append each request with its step log to this file
  --dry-run                   only count what would be deleted`;

export function pruneCommand(args: string[], io: Io): Promise<number> {
  return runCommand(io, PRUNE_USAGE, async () => {
    const a = parseArgs(args, ['older-than', 'archive'], ['dry-run', 'help']);
    if (a.switches.has('help')) return void io.out(PRUNE_USAGE);
    if (a.positional.length > 0) throw new UsageError(`unexpected argument "${a.positional[0]}"`);
    const maxAgeMs = parseDuration(a.flags['older-than']);
    if (!maxAgeMs) throw new UsageError('--older-than needs a duration, e.g. 30d');
    await prune(maxAgeMs, a.flags['older-than']!, a.flags.archive, a.switches.has('dry-run'), io.out);
  });
}

async function prune(maxAgeMs: number, olderThan: string, archiveFile: string | undefined, dryRun: boolean, out: (line: string) => void): Promise<void> {
  const engine = await Engine.create({ logger: createLogger('warn') });
  try {
    if (dryRun) {
      const rows = await engine.store.query<{ n: unknown }>(
        "SELECT COUNT(*) AS n FROM requests WHERE status IN ('completed', 'stopped') AND finished_at < ?", [Date.now() - maxAgeMs],
      );
      out(`would prune ${Number(rows[0]?.n ?? 0)} request(s) that ended more than ${olderThan} ago`);
      return;
    }
    const archive = archiveFile ? createWriteStream(archiveFile, { flags: 'a' }) : undefined;
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
    out(`pruned ${n} request(s) that ended more than ${olderThan} ago${archive ? `, archived to ${archiveFile}` : ''}`);
  } finally {
    await engine.stop({ deadlineMs: 0 });
  }
}
