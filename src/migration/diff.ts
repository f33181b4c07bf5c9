/**
 * The difference between two versions of a pipeline, read through a migration plan's mapping:
 * steps added, removed, renamed (by the mapping), and changed (same id, another definition).
 * Pure; the dashboard and `GET /api/pipelines/:id/diff` show it.
 */
import type { PipelineDef } from '../pipeline/types';
import { canonicalJson } from '../pipeline/hash';

export interface VersionDiff {
  added: string[];
  removed: string[];
  renamed: Array<{ from: string; to: string }>;
  changed: string[];
}

/** Steps of `to` that no step of `from` becomes are added; steps of `from` that become none are removed. */
/** A version as stored or compiled: its definition as written. */
export interface VersionDefinition {
  definition: Pick<PipelineDef, 'steps'>;
}

export function diffVersions(from: VersionDefinition, to: VersionDefinition, mapping: Record<string, string> = {}): VersionDiff {
  const target = (id: string): string => (Object.hasOwn(mapping, id) ? mapping[id]! : id);
  const reached = new Set<string>();
  const diff: VersionDiff = { added: [], removed: [], renamed: [], changed: [] };
  for (const id of Object.keys(from.definition.steps).sort()) {
    const next = target(id);
    if (!to.definition.steps[next]) {
      diff.removed.push(id);
      continue;
    }
    reached.add(next);
    if (next !== id) diff.renamed.push({ from: id, to: next });
    if (canonicalJson(from.definition.steps[id]) !== canonicalJson(to.definition.steps[next])) diff.changed.push(next);
  }
  diff.added = Object.keys(to.definition.steps).filter((id) => !reached.has(id)).sort();
  diff.changed.sort();
  return diff;
}
