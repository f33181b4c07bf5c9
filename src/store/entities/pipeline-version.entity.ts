import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** One stored definition of a pipeline. Requests are pinned to (pipelineId, version). */
@Entity('pipeline_versions')
@Index('uq_pipeline_versions_hash', ['pipelineId', 'hash'], { unique: true })
export class PipelineVersionEntity {
  @PrimaryColumn({ name: 'pipeline_id', type: 'varchar', length: 100 })
  pipelineId!: string;

  @PrimaryColumn({ name: 'version', type: 'int' })
  version!: number;

  @Column({ name: 'hash', type: 'varchar', length: 64 })
  hash!: string;

  /** The definition as written (canonical JSON). */
  @Column({ name: 'definition', type: 'text' })
  definition!: string;

  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;
}
