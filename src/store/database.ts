import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';

// Return bigint counts and ids as numbers; Realmgate's counters stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * knex-pglite names a delete's command after knex's method (`DEL`), so knex's postgres dialect
 * misses it and returns the raw result instead of the deleted-row count. Renaming the method
 * restores the count PostgreSQL gives, so code reads the same on both.
 */
class PgLiteClient extends (ClientPgLite as unknown as new (config: Knex.Config) => { processResponse(obj: { method?: string }, runner: unknown): unknown }) {
  override processResponse(obj: { method?: string }, runner: unknown): unknown {
    return super.processResponse(obj.method === 'del' ? { ...obj, method: 'delete' } : obj, runner);
  }
}

/** Where the database lives: a PostgreSQL URL, or a PGlite directory (`:memory:` for a throwaway one). */
export type DatabaseLocation = { databaseUrl: string } | { pgliteDir: string };

/** Picks PostgreSQL when a URL is configured, otherwise embedded PGlite under `<dataDir>/pglite`. */
export function databaseLocation(config: { databaseUrl: string | undefined; dataDir: string }): DatabaseLocation {
  return config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: path.join(config.dataDir, 'pglite') };
}

/** Thrown when another live process holds the embedded database. Start-up only, never HTTP: not a RealmgateError. */
export class DatabaseLockedError extends Error {
  readonly code = 'database_locked';
}

const locks = new WeakMap<Knex, string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Embedded PGlite serves one process at a time: take `<dir>.lock` (our pid), or explain who holds
 * it. A lock left by a dead process is taken over.
 */
function lockEmbedded(dir: string): string {
  const lockFile = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      process.once('exit', () => fs.rmSync(lockFile, { force: true }));
      return lockFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new DatabaseLockedError(
          `The embedded database in ${path.dirname(dir)} is in use by another Realmgate process (pid ${holder}). ` +
            'Stop it first (the CLI and the server cannot share embedded PGlite), or set DATABASE_URL to use PostgreSQL.',
        );
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new DatabaseLockedError(`could not lock ${lockFile}`);
}

/** Closes a database opened by `openDatabase`, releasing the embedded-database lock. */
export async function closeDatabase(db: Knex): Promise<void> {
  await db.destroy();
  const lockFile = locks.get(db);
  if (lockFile) fs.rmSync(lockFile, { force: true });
}

/** The knex configuration for a location (no lock taken; `openDatabase` takes it). */
export function knexConfig(location: DatabaseLocation): Knex.Config {
  if ('databaseUrl' in location) {
    return { client: 'pg', connection: location.databaseUrl, pool: { min: 0, max: 10 } };
  }
  const inMemory = location.pgliteDir === ':memory:';
  return {
    client: PgLiteClient as unknown as Knex.Config['client'],
    dialect: 'postgres',
    connection: inMemory ? {} : { filename: location.pgliteDir },
  } as Knex.Config;
}

/** Opens a knex instance on PostgreSQL (`pg`) or embedded PGlite (locked to this process). */
export function openDatabase(location: DatabaseLocation): Knex {
  if ('databaseUrl' in location) return knexFactory(knexConfig(location));
  let lockFile: string | undefined;
  if (location.pgliteDir !== ':memory:') {
    fs.mkdirSync(location.pgliteDir, { recursive: true });
    lockFile = lockEmbedded(location.pgliteDir);
  }
  const db = knexFactory(knexConfig(location));
  if (lockFile) locks.set(db, lockFile);
  return db;
}
/** True when the knex instance talks to embedded PGlite rather than a PostgreSQL server. */
export function isEmbedded(db: Knex): boolean {
  return db.client.config.dialect === 'postgres' && db.client.config.client !== 'pg';
}
