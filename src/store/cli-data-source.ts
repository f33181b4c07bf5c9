import { DataSource } from 'typeorm';
import { loadConfig } from '../config';
import { dataSourceOptions } from './data-source';

/** For the TypeORM CLI: `tsx node_modules/typeorm/cli.js migration:run -d src/store/cli-data-source.ts`. */
export default new DataSource(dataSourceOptions(loadConfig().databaseUrl));
