import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/** The shop stand-in's catalog table. */
export class Catalog1763800100000 implements MigrationInterface {
  name = 'Catalog1763800100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'catalog_products',
        columns: [
          { name: 'sku', type: 'varchar', length: '100', isPrimary: true },
          { name: 'name', type: 'varchar', length: '500', isNullable: true },
          { name: 'price', type: 'real', isNullable: true },
          { name: 'stock', type: 'text', isNullable: true },
          { name: 'attributes', type: 'text', isNullable: true },
          { name: 'version', type: 'int', default: 0 },
          { name: 'last_key', type: 'varchar', length: '100', isNullable: true },
          { name: 'updated_at', type: 'bigint' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('catalog_products', true);
  }
}
