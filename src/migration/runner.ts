/**
 * Works bulk migrations in the background, in batches, on whichever engine process claims
 * one: a migration is leased (`request_migrations.owner`, `lease_until`), and each batch's
 * moves, counts and cursor commit together, renewing the lease. When an engine dies, its
 * lease runs out and another engine resumes from the cursor; requests it had moved are on
 * the new version already, so none moves twice.
 */
import { randomBytes } from 'node:crypto';
import type { CompiledPipeline } from '../pipeline/types';
import { LeaseLostError, type MigrationProgress, type MigrationRecord, type RequestMove } from '../store/migration-store';
import { checkMigration, MOVABLE_STATUSES } from './check';
import { buildMove } from './move';
import type { MigrationFilter, MigrationPlan, MigrationProblem } from './plan';
import { MOVE_ATTEMPTS, RACE_PROBLEM, type MigrationDeps, type Migrations } from './service';

/** Runner options; the engine passes `config.migrations` (`CONVEYOR_MIGRATION_*`, src/config.ts). */
export interface MigrationRunnerOptions {
  /** Requests per batch. @default 200 */
  batchSize?: number;
  /** How long a claim holds without a batch renewing it. @default 15000 */
  leaseMs?: number;
  /** How often to look for a migration to work (new, or left by a dead engine). @default 1000 */
  pollMs?: number;
  /** A pause after each batch (tests use it to stop an engine mid-migration). @default 0 */
  pauseMs?: number;
}

interface Work {
  m: MigrationRecord;
  plan: MigrationPlan;
  filter: MigrationFilter;
  from: CompiledPipeline;
  to: CompiledPipeline;
}

export class MigrationRunner {
  private readonly owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private readonly o: Required<MigrationRunnerOptions>;
  private timer: NodeJS.Timeout | undefined;
  private working: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly d: MigrationDeps,
    private readonly migrations: Migrations,
    options: MigrationRunnerOptions = {},
  ) {
    this.o = { batchSize: 200, leaseMs: 15_000, pollMs: 1000, pauseMs: 0, ...options };
  }

  start(): void {
    this.stopping = false;
    this.timer = setInterval(() => this.kick(), this.o.pollMs);
    this.kick();
  }

  /** Looks for work now (after a migration was stored in this process). */
  kick(): void {
    if (this.working || this.stopping) return;
    this.working = this.work().catch((err: unknown) => {
      this.d.logger.error('migration runner failed', { error: (err as Error).message });
    }).finally(() => (this.working = undefined));
  }

  /** Stops after the batch in hand; its lease runs out, so another engine resumes it. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.working;
  }

  private async work(): Promise<void> {
    while (!this.stopping) {
      const m = await this.d.store.claim(this.owner, Date.now(), Date.now() + this.o.leaseMs);
      if (!m) return;
      await this.run(m);
    }
  }

  private async run(m: MigrationRecord): Promise<void> {
    const plan = m.plan as MigrationPlan;
    const from = await this.migrations.version(m.pipelineId, m.fromVersion);
    const to = await this.migrations.version(m.pipelineId, m.toVersion);
    if (!from || !to) {
      await this.d.store.finish(m.id, this.owner, 'failed', Date.now(), `version ${!from ? m.fromVersion : m.toVersion} of "${m.pipelineId}" is not stored`);
      return;
    }
    const w: Work = { m, plan, filter: (m.filter ?? {}) as MigrationFilter, from, to };
    let afterId = m.afterId;
    try {
      while (!this.stopping) {
        const ids = await this.d.store.candidates({
          pipelineId: m.pipelineId, version: m.fromVersion, statuses: w.filter.status ? [w.filter.status] : MOVABLE_STATUSES, ...w.filter, afterId, limit: this.o.batchSize,
        });
        if (ids.length === 0) {
          await this.d.store.finish(m.id, this.owner, 'done', Date.now());
          const done = await this.d.store.get(m.id);
          this.d.logger.info('migration done', { migrationId: m.id, migrated: done?.migrated, refused: done?.refused, dryRun: m.dryRun });
          return;
        }
        await this.batch(w, ids);
        afterId = ids[ids.length - 1]!;
        if (this.o.pauseMs > 0) await new Promise((r) => setTimeout(r, this.o.pauseMs));
      }
      await this.d.store.release(m.id, this.owner);
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
      this.d.logger.warn('migration taken over by another engine', { migrationId: m.id });
    }
  }

  /** Checks and moves one batch; moves that lost the `rev` race are read and checked again. */
  private async batch(w: Work, ids: string[]): Promise<void> {
    const refusals: Array<{ requestId: string; problems: MigrationProblem[] }> = [];
    let pending = ids;
    let wouldMove = 0;
    for (let attempt = 0; attempt < MOVE_ATTEMPTS && pending.length > 0; attempt++) {
      const now = Date.now();
      const moves: RequestMove[] = [];
      for (const s of await this.d.store.load(pending)) {
        // It ended, or another hand moved it, since it was listed: no longer this migration's.
        if (s.request.version !== w.m.fromVersion || !(MOVABLE_STATUSES as readonly string[]).includes(s.request.status)) continue;
        const problems: MigrationProblem[] = checkMigration(s, w.from, w.to, w.plan);
        if (problems.length > 0) refusals.push({ requestId: s.request.id, problems });
        else if (w.m.dryRun) wouldMove++;
        else moves.push(buildMove(s, w.to, w.plan, { actor: w.m.actor, via: w.m.via }, now, w.m.id));
      }
      if (moves.length === 0) {
        pending = [];
        break;
      }
      const held = await this.d.store.move(moves, this.progress(w, now, { refusals: [] }));
      const movedIds = moves.filter((_, i) => held[i]).map((mv) => mv.requestId);
      if (movedIds.length > 0) this.d.moved?.(movedIds);
      pending = moves.filter((_, i) => !held[i]).map((mv) => mv.requestId);
    }
    if (!w.m.dryRun) for (const id of pending) refusals.push({ requestId: id, problems: [RACE_PROBLEM] });
    await this.d.store.move([], this.progress(w, Date.now(), { refusals, afterId: ids[ids.length - 1]!, counted: w.m.dryRun ? wouldMove : 0 }));
  }

  private progress(w: Work, now: number, p: { refusals: Array<{ requestId: string; problems: MigrationProblem[] }>; afterId?: string; counted?: number }): MigrationProgress {
    return { migrationId: w.m.id, owner: this.owner, leaseUntil: now + this.o.leaseMs, now, ...p };
  }
}
