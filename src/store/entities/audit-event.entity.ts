import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** Who did what to a request: actions (taken or refused), resume, stop. */
@Entity('audit_events')
@Index('ix_audit_request', ['requestId', 'createdAt'])
export class AuditEventEntity {
  @PrimaryColumn({ name: 'id', type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'request_id', type: 'varchar', length: 36 })
  requestId!: string;

  @Column({ name: 'actor', type: 'varchar', length: 100 })
  actor!: string;

  @Column({ name: 'action', type: 'varchar', length: 100 })
  action!: string;

  /** accepted | forbidden | not_offered | invalid | conflict */
  @Column({ name: 'outcome', type: 'varchar', length: 32 })
  outcome!: string;

  /** The key or token issuer the actor's call came through (`key:crm`, `jwt:<iss>`). */
  @Column({ name: 'via', type: 'varchar', length: 200, nullable: true })
  via!: string | null;

  @Column({ name: 'details', type: 'text', nullable: true })
  details!: string | null;

  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;
}
