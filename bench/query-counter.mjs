// Preloaded into the bench's Realmgate processes (`node --import ./bench/query-counter.mjs dist/main.js`):
// counts every statement knex sends, on PostgreSQL and the embedded store alike (BEGIN, COMMIT and
// SAVEPOINT included, as they are round trips too), and answers the counts over the IPC channel:
// `all`, and `inRequests`, those sent while handling an HTTP request (or by work a request began),
// which leaves out the background jobs' timed statements. Plain JavaScript, so the server runs
// without a TypeScript loader. Not part of Realmgate.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const knex = require('knex');
const request = new AsyncLocalStorage();
const counts = { all: 0, inRequests: 0 };
const query = knex.Client.prototype.query;
knex.Client.prototype.query = function countedQuery(...args) {
  counts.all++;
  if (request.getStore()) counts.inRequests++;
  return query.apply(this, args);
};
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function emitInRequest(event, ...args) {
  if (event === 'request') return request.run(true, () => emit.call(this, event, ...args));
  return emit.call(this, event, ...args);
};
if (process.send) {
  process.on('message', (message) => {
    if (message?.type === 'statements') process.send({ type: 'statements', value: { ...counts } });
  });
  process.channel?.unref();
}
