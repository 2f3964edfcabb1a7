import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ask } from '../../bench/processes.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** knex on the store the suite runs on: PostgreSQL when DATABASE_URL is set, else in-memory embedded PGlite. */
const openKnex = process.env.DATABASE_URL
  ? `import knexFactory from 'knex';
     const db = knexFactory({ client: 'pg', connection: ${JSON.stringify(process.env.DATABASE_URL)} });`
  : `const { openDatabase } = await import('./src/store/database.ts');
     const db = openDatabase({ pgliteDir: ':memory:' });`;

describe('the bench statement counter', () => {
  it('counts every statement knex sends, transaction control included', async () => {
    // Runs a few statements, says so, then waits to be asked (as a Realmgate node in the bench does).
    const script = `
      ${openKnex}
      await db.raw('select 1');
      await db.transaction(async (trx) => { await trx.raw('select 2'); await trx('pg_class').select('relname').limit(1); });
      console.log('done');
      process.on('disconnect', () => db.destroy());
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './bench/query-counter.mjs', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (c: Buffer) => c.toString().includes('done') && resolve());
        void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
      });
      // select 1, BEGIN, select 2, the query builder's select, COMMIT
      expect(await ask<number>(child, 'statements')).toBe(5);
    } finally {
      child.disconnect();
      await exited;
    }
  });
});
