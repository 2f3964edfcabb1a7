import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';

// Return bigint counts and ids as numbers; Realmgate's counters stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Where the database lives: a PostgreSQL URL, or a PGlite directory (`:memory:` for a throwaway one). */
export type DatabaseLocation = { databaseUrl: string } | { pgliteDir: string };

/** Picks PostgreSQL when a URL is configured, otherwise embedded PGlite under `<dataDir>/pglite`. */
export function databaseLocation(config: { databaseUrl: string | undefined; dataDir: string }): DatabaseLocation {
  return config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: path.join(config.dataDir, 'pglite') };
}

/** Opens a knex instance on PostgreSQL (`pg`) or embedded PGlite. */
export function openDatabase(location: DatabaseLocation): Knex {
  if ('databaseUrl' in location) {
    return knexFactory({
      client: 'pg',
      connection: location.databaseUrl,
      pool: { min: 0, max: 10 },
    });
  }
  const inMemory = location.pgliteDir === ':memory:';
  if (!inMemory) fs.mkdirSync(location.pgliteDir, { recursive: true });
  return knexFactory({
    client: ClientPgLite as unknown as Knex.Config['client'],
    dialect: 'postgres',
    connection: inMemory ? {} : { filename: location.pgliteDir },
  } as Knex.Config);
}

/** True when the knex instance talks to embedded PGlite rather than a PostgreSQL server. */
export function isEmbedded(db: Knex): boolean {
  return db.client.config.dialect === 'postgres' && db.client.config.client !== 'pg';
}
