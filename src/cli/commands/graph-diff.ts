/**
 * `conveyor graph <pipeline> --diff <from>..<to> [--map OLD=NEW …]`: what changed between two
 * stored versions of a pipeline (read from DATABASE_URL), through a migration plan's mapping:
 * steps added, removed, renamed and changed.
 */
import { diffVersions, type VersionDefinition, type VersionDiff } from '../../migration/diff';
import { DEFAULT_DATABASE_URL } from '../../store/data-source';
import { SqlStore } from '../../store/store';
import { CommandError, table, UsageError, type Io } from './args';

/** `3..4` as two version numbers. */
export function parseDiffSpec(spec: string): { from: number; to: number } {
  const m = /^(\d+)\.\.(\d+)$/.exec(spec);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`--diff ${spec}: expected <from>..<to>, e.g. 3..4`);
  return { from: Number(m[1]), to: Number(m[2]) };
}

/** Reads both versions and prints their difference (a table, or JSON). */
export async function printVersionDiff(io: Io, pipeline: string, spec: string, mapping: Record<string, string>, json: boolean): Promise<void> {
  const { from, to } = parseDiffSpec(spec);
  const store = await SqlStore.open(io.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
  let diff: VersionDiff;
  try {
    const read = async (v: number): Promise<VersionDefinition> => {
      const stored = await store.getPipelineVersion(pipeline, v);
      if (!stored) throw new CommandError(`pipeline "${pipeline}" has no stored version ${v} (DATABASE_URL)`);
      return { definition: JSON.parse(stored.definition) as VersionDefinition['definition'] };
    };
    diff = diffVersions(await read(from), await read(to), mapping);
  } finally {
    await store.close();
  }
  if (json) return void io.out(JSON.stringify({ pipeline, from, to, mapping, ...diff }, null, 2));
  io.out(`${pipeline}: version ${from} → ${to}`);
  const list = (items: string[]): string => (items.length > 0 ? items.join(', ') : '-');
  const rows = [
    ['added', list(diff.added)], ['removed', list(diff.removed)],
    ['renamed', list(diff.renamed.map((r) => `${r.from} → ${r.to}`))], ['changed', list(diff.changed)],
  ];
  for (const line of table(rows)) io.out(line);
}
