import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One product of the shop's catalog (seed 001 §5.1, reduced to what the ERP sync writes). */
@Entity('catalog_products')
export class CatalogProduct {
  @PrimaryColumn({ type: 'varchar', length: 100 })
  sku!: string;

  @Column({ type: 'varchar', length: 500, nullable: true })
  name!: string | null;

  @Column({ type: 'real', nullable: true })
  price!: number | null;

  /** `{ "<warehouse>": quantity }` as JSON. */
  @Column({ type: 'text', nullable: true })
  stock!: string | null;

  /** Free attributes (`color`, `memory`, …) as JSON. */
  @Column({ type: 'text', nullable: true })
  attributes!: string | null;

  /** Bumped by every applied event. */
  @Column({ type: 'int', default: 0 })
  version!: number;

  /** Idempotency key of the last applied event, so a redelivered event is not applied twice. */
  @Column({ name: 'last_key', type: 'varchar', length: 100, nullable: true })
  lastKey!: string | null;

  @Column({ name: 'updated_at', type: 'bigint' })
  updatedAt!: number;
}
