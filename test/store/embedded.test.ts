import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseLockedError, closeDatabase, isEmbedded, openDatabase } from '../../src/store/database.ts';
import { EmbeddedDatabase } from '../../src/store/embedded/host.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-embedded-'));
  dirs.push(dir);
  return path.join(dir, 'pglite');
}

/** Runs on PGlite whatever DATABASE_URL says: this is the embedded store's own behaviour. */
describe('the embedded store (PGlite in a worker thread, spoken to through pg)', () => {
  it('answers through knex like PostgreSQL does: counts, returning, rollbacks, SQL errors', async () => {
    const db = openDatabase({ pgliteDir: ':memory:' });
    try {
      expect(isEmbedded(db)).toBe(true);
      await db.schema.createTable('notes', (t) => {
        t.increments('id');
        t.text('body').notNullable();
      });
      expect(await db('notes').insert([{ body: 'a' }, { body: 'b' }]).returning('id')).toEqual([{ id: 1 }, { id: 2 }]);
      expect(await db('notes').where({ body: 'a' }).del()).toBe(1);
      await expect(
        db.transaction(async (trx) => {
          await trx('notes').insert({ body: 'c' });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      await expect(db('notes').insert({ body: null })).rejects.toThrow(/not-null|null value/);
      expect(await db('notes').select('body')).toEqual([{ body: 'b' }]);
      expect((await db.raw('select count(*)::int8 as n from notes')).rows).toEqual([{ n: 1 }]);
    } finally {
      await closeDatabase(db);
    }
    const onPostgres = openDatabaseOnPostgres();
    expect(isEmbedded(onPostgres)).toBe(false);
    await onPostgres.destroy();
  });

  it('starts an in-memory database from a dump of another one, which stays untouched', async () => {
    const dir = dataDir();
    const source = openDatabase({ pgliteDir: dir });
    await source.schema.createTable('notes', (t) => t.text('body'));
    await source('notes').insert({ body: 'from the dump' });
    await closeDatabase(source);
    const pglite = new PGlite(dir);
    await pglite.waitReady;
    const file = `${dir}.tar`;
    fs.writeFileSync(file, Buffer.from(await (await pglite.dumpDataDir('none')).arrayBuffer()));
    await pglite.close();

    const copy = openDatabase({ pgliteDir: ':memory:', pgliteFrom: file });
    try {
      expect(await copy('notes').select('body')).toEqual([{ body: 'from the dump' }]);
      await copy('notes').insert({ body: 'only in memory' });
    } finally {
      await copy.destroy();
    }
    const again = openDatabase({ pgliteDir: ':memory:', pgliteFrom: file });
    try {
      expect(await again('notes').select('body')).toEqual([{ body: 'from the dump' }]);
    } finally {
      await again.destroy();
    }
  });

  it('keeps what was written after a close and reopen, and holds the directory for this process only', async () => {
    const dir = dataDir();
    const first = openDatabase({ pgliteDir: dir });
    await first.schema.createTable('kept', (t) => t.text('value'));
    await first('kept').insert({ value: 'survives' });
    expect(fs.readFileSync(`${dir}.lock`, 'utf8')).toBe(String(process.pid));
    await closeDatabase(first);
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);

    const again = openDatabase({ pgliteDir: dir });
    try {
      expect(await again('kept').select('value')).toEqual([{ value: 'survives' }]);
    } finally {
      await closeDatabase(again);
    }
    fs.writeFileSync(`${dir}.lock`, String(process.ppid));
    expect(() => openDatabase({ pgliteDir: dir })).toThrow(DatabaseLockedError);
    fs.rmSync(`${dir}.lock`);
  });

  it('does not let a second session into a transaction another session has open, and rolls back one left open', async () => {
    const embedded = new EmbeddedDatabase(undefined);
    const session = () => new pg.Client({ user: 'postgres', database: 'postgres', stream: () => embedded.connect() } as pg.ClientConfig);
    const a = session();
    const b = session();
    try {
      await a.connect();
      await b.connect();
      await a.query('create table t (v int)');
      await a.query('begin');
      await a.query('insert into t values (1)');
      const read = b.query('select count(*)::int as n from t');
      let answered = false;
      void read.then(() => (answered = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(answered).toBe(false);
      await a.end(); // leaves its transaction open: the store rolls it back
      expect((await read).rows).toEqual([{ n: 0 }]);
    } finally {
      await b.end();
      await embedded.close();
    }
  });
});

function openDatabaseOnPostgres() {
  // Never connects: a knex instance for PostgreSQL only opens connections when queried.
  return openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none' });
}
