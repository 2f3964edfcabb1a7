import crypto from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase } from '../../src/store/database.ts';
import { migrateLatest } from '../../src/store/migrate.ts';

/** A throwaway, migrated database for one test file: a fresh PostgreSQL database when `DATABASE_URL` is set, else in-memory PGlite (started from the run's migrated dump, `global-setup.ts`). */
export interface TestDatabase {
  db: Knex;
  /** Set on PostgreSQL: a URL other processes can connect to. */
  url: string | undefined;
  kind: 'postgresql' | 'pglite';
  close(): Promise<void>;
}

/** Creates and migrates a test database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const db = openDatabase({ pgliteDir: ':memory:', pgliteFrom: inject('migratedPglite') });
    await migrateLatest(db);
    return { db, url: undefined, kind: 'pglite', close: () => db.destroy() };
  }
  const name = `rg_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = openDatabase({ databaseUrl: url.toString() });
  await migrateLatest(db);
  return {
    db,
    url: url.toString(),
    kind: 'postgresql',
    async close() {
      await db.destroy();
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
