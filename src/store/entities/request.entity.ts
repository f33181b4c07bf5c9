import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One run of one pipeline on one payload. The context is not stored here as a blob: it is
 * the payload plus the latest output of each completed step run, so a step never rewrites it.
 */
@Entity('requests')
@Index('ix_requests_status', ['status', 'releaseAt'])
@Index('ix_requests_pipeline_created', ['pipelineId', 'createdAt'])
@Index('ix_requests_business_key', ['pipelineId', 'businessKey', 'status'])
@Index('uq_requests_idempotency', ['pipelineId', 'idempotencyKey'], { unique: true })
@Index('ix_requests_finished', ['finishedAt', 'pipelineId', 'status'])
export class RequestEntity {
  @PrimaryColumn({ name: 'id', type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'pipeline_id', type: 'varchar', length: 100 })
  pipelineId!: string;

  @Column({ name: 'version', type: 'int' })
  version!: number;

  /** buffered | running | waiting | completed | stopped | error_stop */
  @Column({ name: 'status', type: 'varchar', length: 16 })
  status!: string;

  @Column({ name: 'business_key', type: 'varchar', length: 255, nullable: true })
  businessKey!: string | null;

  @Column({ name: 'idempotency_key', type: 'varchar', length: 255, nullable: true })
  idempotencyKey!: string | null;

  /** semi | auto */
  @Column({ name: 'mode', type: 'varchar', length: 16, nullable: true })
  mode!: string | null;

  @Column({ name: 'test', type: 'smallint', default: 0 })
  test!: number;

  @Column({ name: 'payload', type: 'text' })
  payload!: string;

  /** The process variables (JSON); NULL while the request has none. */
  @Column({ name: 'vars', type: 'text', nullable: true })
  vars!: string | null;

  @Column({ name: 'error', type: 'text', nullable: true })
  error!: string | null;

  /** Arrivals at join steps: `{ "<step>": ["<prev>", ...] }`. */
  @Column({ name: 'joins', type: 'text', nullable: true })
  joins!: string | null;

  @Column({ name: 'step_count', type: 'int', default: 0 })
  stepCount!: number;

  /** Bumped by every commit; a commit that expects another value is refused (optimistic lock). */
  @Column({ name: 'rev', type: 'int', default: 0 })
  rev!: number;

  /** When a buffered request may start (ms since epoch). */
  @Column({ name: 'release_at', type: 'bigint', nullable: true })
  releaseAt!: number | null;

  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;

  @Column({ name: 'updated_at', type: 'bigint' })
  updatedAt!: number;

  @Column({ name: 'finished_at', type: 'bigint', nullable: true })
  finishedAt!: number | null;

  /** The request span's ids (tracing/spans.ts `encodeRequestTrace`); NULL while tracing is off. */
  @Column({ name: 'trace_context', type: 'varchar', length: 100, nullable: true })
  traceContext!: string | null;
}
