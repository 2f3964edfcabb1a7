import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { EmbeddedDatabase } from './embedded/host.ts';

// Return bigint counts and ids as numbers; Realmgate's counters stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** knex's own PostgreSQL client, the one `client: 'pg'` names. */
const KnexPgClient = createRequire(import.meta.url)('knex/lib/dialects/postgres/index.js') as new (config: Knex.Config) => Knex.Client;

/**
 * knex's `pg` client on embedded PGlite: PGlite runs in a worker thread (`embedded/host.ts`) and
 * each pool connection is a wire-protocol session to it, so the embedded store speaks exactly the
 * driver and dialect PostgreSQL does. PGlite is one backend, so the pool holds one connection;
 * destroying the knex instance closes PGlite and its thread.
 */
class EmbeddedPgClient extends KnexPgClient {
  /** The PGlite database this client talks to, started with the client. */
  readonly embedded: EmbeddedDatabase;

  constructor(config: Knex.Config) {
    super(config);
    const { pgliteDir, pgliteFrom } = config.connection as { pgliteDir: string; pgliteFrom?: string };
    this.embedded = new EmbeddedDatabase(pgliteDir === ':memory:' ? undefined : pgliteDir, pgliteFrom);
    this.connectionSettings = { user: 'postgres', database: 'postgres', stream: () => this.embedded.connect() };
  }

  override async destroy(callback?: (error?: unknown) => void): Promise<void> {
    try {
      await super.destroy(undefined);
      await this.embedded.close();
    } catch (error) {
      if (!callback) throw error;
      callback(error);
      return;
    }
    callback?.();
  }
}

/**
 * Where the database lives: a PostgreSQL URL, or a PGlite directory (`:memory:` for a throwaway
 * one, which may start from `pgliteFrom`, a file PGlite's `dumpDataDir` wrote).
 */
export type DatabaseLocation = { databaseUrl: string } | { pgliteDir: string; pgliteFrom?: string | undefined };

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

/** The knex configuration for a location (no lock taken: `openDatabase` takes it); an embedded one starts PGlite when knex is created. */
export function knexConfig(location: DatabaseLocation): Knex.Config {
  if ('databaseUrl' in location) {
    return { client: 'pg', connection: location.databaseUrl, pool: { min: 0, max: 10 } };
  }
  return {
    client: EmbeddedPgClient as unknown as Knex.Config['client'],
    connection: { pgliteDir: location.pgliteDir, pgliteFrom: location.pgliteFrom } as Knex.StaticConnectionConfig,
    pool: { min: 1, max: 1 },
  };
}

/** Opens a knex instance on PostgreSQL (`pg`) or embedded PGlite (locked to this process, run in a worker thread). */
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
  return db.client instanceof EmbeddedPgClient;
}
