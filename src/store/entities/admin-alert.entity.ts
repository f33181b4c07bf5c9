import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** An admin alert owed for an `error_stop`, one row per channel (see `alert-store.ts`). */
@Entity('admin_alerts')
@Index('ix_admin_alerts_due', ['status', 'dueAt'])
@Index('ix_admin_alerts_request', ['requestId'])
export class AdminAlertEntity {
  @PrimaryColumn({ name: 'id', type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'request_id', type: 'varchar', length: 36 })
  requestId!: string;

  @Column({ name: 'pipeline_id', type: 'varchar', length: 100 })
  pipelineId!: string;

  /** `webhook` or `module:<name>` */
  @Column({ name: 'channel', type: 'varchar', length: 200 })
  channel!: string;

  /** pending | delivered | failed */
  @Column({ name: 'status', type: 'varchar', length: 16 })
  status!: string;

  @Column({ name: 'attempts', type: 'int', default: 0 })
  attempts!: number;

  @Column({ name: 'due_at', type: 'bigint' })
  dueAt!: number;

  @Column({ name: 'last_error', type: 'varchar', length: 1000, nullable: true })
  lastError!: string | null;

  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;

  @Column({ name: 'delivered_at', type: 'bigint', nullable: true })
  deliveredAt!: number | null;
}
