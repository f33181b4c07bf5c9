/**
 * Migrations as the rest of the engine sees them: move one request now, start a bulk
 * migration (worked by {@link MigrationRunner} in the background), read one's progress. The
 * API reaches this through the engine; this folder imports no API or engine code.
 */
import { ClientError, ErrorCodes } from '../errors';
import { newId } from '../ids';
import type { Logger } from '../log/logger';
import type { RequestRecord } from '../model';
import type { CompiledPipeline } from '../pipeline/types';
import type { MigrationRecord, MigrationStore } from '../store/migration-store';
import { checkMigration, MOVABLE_STATUSES, type MigrationSubject } from './check';
import { buildMove, type MigrationActor } from './move';
import type { MigrationFilter, MigrationPlan, MigrationProblem } from './plan';

/** The pinned versions of pipelines (the engine's catalog). */
export interface VersionSource {
  get(pipelineId: string, version: number): Promise<CompiledPipeline>;
}

export interface MigrationDeps {
  store: MigrationStore;
  pipelines: VersionSource;
  logger: Logger;
  /** Told the ids of requests that moved, so any state cached of them is dropped. */
  moved?: (ids: string[]) => void;
}

/** How many times a move that lost the `rev` race is read, checked and tried again. */
export const MOVE_ATTEMPTS = 8;

export type MoveResult = { moved: true; request: RequestRecord } | { moved: false; problems: MigrationProblem[] };

/** What `GET /api/migrations/:id` shows. */
export interface MigrationView extends Omit<MigrationRecord, 'afterId'> {
  left: number;
  refusals: Array<{ requestId: string; problems: unknown }>;
}

export const RACE_PROBLEM: MigrationProblem = { path: 'rev', message: `the request kept moving on while it was checked (${MOVE_ATTEMPTS} times): migrate it again` };

export class Migrations {
  constructor(private readonly d: MigrationDeps) {}

  /** A version of a pipeline, or undefined when it is not stored. */
  async version(pipelineId: string, version: number): Promise<CompiledPipeline | undefined> {
    try {
      return await this.d.pipelines.get(pipelineId, version);
    } catch {
      return undefined;
    }
  }

  /** Checks a subject against the plan (both versions read from the catalog). */
  async check(s: MigrationSubject, plan: MigrationPlan): Promise<{ from: CompiledPipeline | undefined; to: CompiledPipeline | undefined; problems: MigrationProblem[] }> {
    const from = await this.version(s.request.pipelineId, s.request.version);
    const to = await this.version(s.request.pipelineId, plan.toVersion);
    if (!from) return { from, to, problems: [{ path: 'version', message: `version ${s.request.version} of "${s.request.pipelineId}" is not stored` }] };
    return { from, to, problems: checkMigration(s, from, to, plan) };
  }

  /**
   * Moves one request in one guarded transaction. A request that moved on meanwhile (its
   * `rev` changed) is read and checked again; it is never half-migrated.
   */
  async migrateRequest(requestId: string, plan: MigrationPlan, who: MigrationActor): Promise<MoveResult> {
    for (let attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
      const [s] = await this.d.store.load([requestId]);
      if (!s) throw new ClientError(404, ErrorCodes.UNKNOWN_REQUEST, `unknown request "${requestId.slice(0, 64)}"`);
      const { to, problems } = await this.check(s, plan);
      if (problems.length > 0 || !to) return { moved: false, problems };
      const [held] = await this.d.store.move([buildMove(s, to, plan, who, Date.now())]);
      if (held) {
        this.d.moved?.([requestId]);
        this.d.logger.info('request migrated', { requestId, actor: who.actor, fromVersion: s.request.version, toVersion: plan.toVersion });
        const [after] = await this.d.store.load([requestId]);
        return { moved: true, request: after!.request };
      }
    }
    return { moved: false, problems: [RACE_PROBLEM] };
  }

  /** Stores a bulk migration; the runner works it in the background. 409 while another changes this pipeline. */
  async start(input: { pipelineId: string; fromVersion: number; plan: MigrationPlan; filter: MigrationFilter; dryRun: boolean; who: MigrationActor }): Promise<MigrationRecord> {
    const { pipelineId, fromVersion, plan, filter } = input;
    if (!(await this.version(pipelineId, fromVersion))) throw new ClientError(422, ErrorCodes.BAD_BODY, `pipeline "${pipelineId}" has no version ${fromVersion}`);
    if (!(await this.version(pipelineId, plan.toVersion))) throw new ClientError(422, ErrorCodes.BAD_BODY, `pipeline "${pipelineId}" has no version ${plan.toVersion}`);
    if (plan.toVersion === fromVersion) throw new ClientError(422, ErrorCodes.BAD_BODY, '"toVersion" is "fromVersion"');
    const total = await this.d.store.countCandidates({ pipelineId, version: fromVersion, statuses: filter.status ? [filter.status] : MOVABLE_STATUSES, ...filter });
    const now = Date.now();
    const record = {
      id: newId(now), pipelineId, fromVersion, toVersion: plan.toVersion, plan, filter, dryRun: input.dryRun,
      actor: input.who.actor, via: input.who.via ?? null, total, createdAt: now,
    };
    if (!(await this.d.store.create(record))) {
      const running = await this.d.store.activeOf(pipelineId);
      throw new ClientError(409, ErrorCodes.MIGRATION_RUNNING, `a migration of pipeline "${pipelineId}" is running${running ? ` (${running})` : ''}: wait for it to end`, { running });
    }
    this.d.logger.info('migration started', { migrationId: record.id, pipeline: pipelineId, fromVersion, toVersion: plan.toVersion, total, dryRun: input.dryRun, actor: input.who.actor });
    return (await this.d.store.get(record.id))!;
  }

  /** A migration's progress and refusals (the first `limit`). */
  async view(id: string, limit = 1000): Promise<MigrationView | undefined> {
    const m = await this.d.store.get(id);
    if (!m) return undefined;
    const { afterId: _cursor, ...rest } = m;
    const left = m.status === 'running' ? Math.max(0, m.total - m.migrated - m.refused) : 0;
    return { ...rest, left, refusals: await this.d.store.refusals(id, limit) };
  }
}
