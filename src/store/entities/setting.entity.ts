import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One engine-wide setting. */
@Entity('settings')
export class SettingEntity {
  @PrimaryColumn({ name: 'name', type: 'varchar', length: 100 })
  name!: string;

  @Column({ name: 'value', type: 'varchar', length: 1000 })
  value!: string;
}
