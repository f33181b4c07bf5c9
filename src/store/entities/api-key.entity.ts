import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An API key, stored as its sha256 hash only. */
@Entity('api_keys')
export class ApiKeyEntity {
  @PrimaryColumn({ name: 'id', type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'hash', type: 'varchar', length: 64, unique: true })
  hash!: string;

  @Column({ name: 'name', type: 'varchar', length: 100 })
  name!: string;

  /** `+`-separated roles. */
  @Column({ name: 'roles', type: 'varchar', length: 255 })
  roles!: string;

  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: number;

  @Column({ name: 'revoked_at', type: 'bigint', nullable: true })
  revokedAt!: number | null;
}
