import { DataSource } from 'typeorm';
import { loadConfig } from '../config';
import { dataSourceOptions } from './data-source';

/**
 * For the TypeORM CLI (`tsx node_modules/typeorm/cli.js migration:revert -d src/store/cli-data-source.ts`).
 * To apply migrations use `conveyor migrate` (`npm run migration:run`): TypeORM's own `migration:run`
 * does not refuse a database a newer release has migrated (`runKnownMigrations`).
 */
export default new DataSource(dataSourceOptions(loadConfig().databaseUrl));
