import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** One participant of one request in one role (issue 12 §2): written with the step that changed it. */
@Entity('request_participants')
@Index('ix_participants_actor', ['actorId', 'createdAt', 'requestId'])
@Index('ix_participants_role', ['role', 'actorId', 'createdAt', 'requestId'])
export class ParticipantEntity {
  @PrimaryColumn({ name: 'request_id', type: 'varchar', length: 36 })
  requestId!: string;

  @PrimaryColumn({ name: 'actor_id', type: 'varchar', length: 100 })
  actorId!: string;

  @PrimaryColumn({ name: 'role', type: 'varchar', length: 50 })
  role!: string;

  /** The request's `created_at`: the search's sort key. */
  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;
}
