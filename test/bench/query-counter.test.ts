import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ask } from '../../bench/processes.ts';
import type { StatementCounts } from '../../bench/realmgate.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** knex on the store the suite runs on: PostgreSQL when DATABASE_URL is set, else in-memory embedded PGlite. */
const openKnex = process.env.DATABASE_URL
  ? `import knexFactory from 'knex';
     const db = knexFactory({ client: 'pg', connection: ${JSON.stringify(process.env.DATABASE_URL)} });`
  : `const { openDatabase } = await import('./src/store/database.ts');
     const db = openDatabase({ pgliteDir: ':memory:' });`;

describe('the bench statement counter', () => {
  it('counts every statement knex sends, transaction control included, and apart those sent in handling HTTP requests', async () => {
    // Runs a few statements outside any request, then serves one request that sends two (one of
    // them from a timer the request set), says so, then waits to be asked (as a bench node does).
    const script = `
      ${openKnex}
      const http = await import('node:http');
      await db.raw('select 1');
      await db.transaction(async (trx) => { await trx.raw('select 2'); await trx('pg_class').select('relname').limit(1); });
      const server = http.createServer(async (req, res) => {
        await db.raw('select 3');
        await new Promise((resolve) => setTimeout(resolve, 1));
        await db.raw('select 4');
        res.end('ok');
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text();
      server.close();
      await db.raw('select 5');
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
      // select 1, BEGIN, select 2, the query builder's select, COMMIT, select 3, select 4, select 5;
      // in the request: select 3 and select 4
      expect(await ask<StatementCounts>(child, 'statements')).toEqual({ all: 8, inRequests: 2 });
    } finally {
      child.disconnect();
      await exited;
    }
  });
});
