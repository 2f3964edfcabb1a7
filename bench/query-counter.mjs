// Preloaded into the bench's Realmgate processes (`node --import ./bench/query-counter.mjs dist/main.js`):
// counts every statement knex sends, on PostgreSQL and the embedded store alike (BEGIN, COMMIT and
// SAVEPOINT included, as they are round trips too), and answers the count over the IPC channel.
// Plain JavaScript, so the server runs without a TypeScript loader. Not part of Realmgate.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const knex = require('knex');
let statements = 0;
const query = knex.Client.prototype.query;
knex.Client.prototype.query = function countedQuery(...args) {
  statements++;
  return query.apply(this, args);
};
if (process.send) {
  process.on('message', (message) => {
    if (message?.type === 'statements') process.send({ type: 'statements', value: statements });
  });
  process.channel?.unref();
}
