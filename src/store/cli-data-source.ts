import { DataSource } from 'typeorm';
import { DEFAULT_DATABASE_URL, dataSourceOptions } from './data-source';

/** For the TypeORM CLI: `tsx node_modules/typeorm/cli.js migration:run -d src/store/cli-data-source.ts`. */
export default new DataSource(dataSourceOptions(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL));
