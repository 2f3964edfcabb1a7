import type { Knex } from 'knex';

/**
 * Request counters of the rate limits (rate-limiter-flexible's PostgreSQL store), shared by every
 * node: `key` is `<limiter>:<client or IP>`, `points` the requests counted in the current window,
 * `expire` when the window ends (milliseconds since the epoch). The layout is the library's own;
 * it is created here so the application never runs DDL.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable().defaultTo(0);
    t.bigInteger('expire');
    t.index(['expire']);
  });
}

/** Drops what `up` created. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rate_limits');
}
