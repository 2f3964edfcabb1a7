import type { Knex } from 'knex';

/**
 * One-time ids (SAML assertion IDs) seen by any node, kept until the message they came in could
 * no longer be accepted anyway, so a replay is refused everywhere.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('replay_guard', (t) => {
    t.text('key').primary();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });
}

/** Drops what `up` created. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('replay_guard');
}
