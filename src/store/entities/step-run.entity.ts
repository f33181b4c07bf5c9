import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** One attempt of one step for one request: the step log. */
@Entity('step_runs')
@Index('uq_step_runs_request_seq', ['requestId', 'seq'], { unique: true })
@Index('ix_step_runs_status_available', ['status', 'availableAt'])
@Index('ix_step_runs_pipeline_step', ['pipelineId', 'stepId', 'startedAt'])
@Index('ix_step_runs_started', ['startedAt'])
@Index('ix_step_runs_status_lease', ['status', 'leaseUntil'])
@Index('ix_step_runs_wait', ['waitEvent', 'waitKey', 'status'])
export class StepRunEntity {
  @PrimaryColumn({ name: 'id', type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'request_id', type: 'varchar', length: 36 })
  requestId!: string;

  @Column({ name: 'pipeline_id', type: 'varchar', length: 100 })
  pipelineId!: string;

  @Column({ name: 'step_id', type: 'varchar', length: 100 })
  stepId!: string;

  /** Order of creation within the request. */
  @Column({ name: 'seq', type: 'int' })
  seq!: number;

  @Column({ name: 'attempt', type: 'int' })
  attempt!: number;

  /** pending | dispatched | waiting | completed | failed | cancelled */
  @Column({ name: 'status', type: 'varchar', length: 16 })
  status!: string;

  /** module | setData | stop | ... */
  @Column({ name: 'kind', type: 'varchar', length: 16 })
  kind!: string;

  @Column({ name: 'module', type: 'varchar', length: 100, nullable: true })
  module!: string | null;

  @Column({ name: 'transport', type: 'varchar', length: 16, nullable: true })
  transport!: string | null;

  /** Resolved params with secrets redacted. */
  @Column({ name: 'params', type: 'text', nullable: true })
  params!: string | null;

  @Column({ name: 'output', type: 'text', nullable: true })
  output!: string | null;

  @Column({ name: 'error', type: 'text', nullable: true })
  error!: string | null;

  /** The run whose result created this one. */
  @Column({ name: 'caused_by', type: 'varchar', length: 36, nullable: true })
  causedBy!: string | null;

  /** A pending run may be dispatched from this time on (backoff, delay). */
  @Column({ name: 'available_at', type: 'bigint', nullable: true })
  availableAt!: number | null;

  /** A dispatched run whose lease has passed is sent again by any engine (its sender died). */
  @Column({ name: 'lease_until', type: 'bigint', nullable: true })
  leaseUntil!: number | null;

  /** A wait step's event name and rendered key, for `POST /api/events/:name`. */
  @Column({ name: 'wait_event', type: 'varchar', length: 100, nullable: true })
  waitEvent!: string | null;

  @Column({ name: 'wait_key', type: 'varchar', length: 255, nullable: true })
  waitKey!: string | null;

  /** When a wait or action step gives up (its timeout route applies). */
  @Column({ name: 'deadline_at', type: 'bigint', nullable: true })
  deadlineAt!: number | null;

  /** Params an operator edited when resuming; they replace the step's params for this run. */
  @Column({ name: 'override', type: 'text', nullable: true })
  override!: string | null;

  /** The process variables this run's `assign` set (JSON). */
  @Column({ name: 'assigned', type: 'text', nullable: true })
  assigned!: string | null;

  @Column({ name: 'started_at', type: 'bigint' })
  startedAt!: number;

  @Column({ name: 'finished_at', type: 'bigint', nullable: true })
  finishedAt!: number | null;

  @Column({ name: 'duration_ms', type: 'bigint', nullable: true })
  durationMs!: number | null;

  /** A polling wait: how many polls it made (each is a row of `step_polls`). */
  @Column({ name: 'polls', type: 'int', nullable: true })
  polls!: number | null;

  @Column({ name: 'last_poll_at', type: 'bigint', nullable: true })
  lastPollAt!: number | null;

  /** How a wait or action step ended: event | poll | action | timeout. */
  @Column({ name: 'ended_by', type: 'varchar', length: 16, nullable: true })
  endedBy!: string | null;
}
