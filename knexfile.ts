/**
 * knex configuration from Realmgate's own settings (DATABASE_URL, or embedded PGlite under
 * DATA_DIR), for knex's CLI: `NODE_OPTIONS='--import tsx' npx knex --knexfile knexfile.ts migrate:status`.
 * Realmgate itself migrates on start and with `npm run migrate`.
 */
import { loadConfig } from './src/config.ts';
import { databaseLocation, knexConfig } from './src/store/database.ts';
import { migrationConfig } from './src/store/migrate.ts';

export default {
  ...knexConfig(databaseLocation(loadConfig(process.env))),
  migrations: migrationConfig(),
};
