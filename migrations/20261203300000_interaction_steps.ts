import type { Knex } from 'knex';

/**
 * Interaction steps: the terms of service each account accepted (one row per terms document and
 * version, with the time), and the single-use links sent by mail (email verification at
 * registration, password reset). A link's token is never stored: only its keyed hash, with what
 * the link is for, when it expires and when it was used; what a registration carries until its
 * email is verified (the password hash, the name) is sealed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('terms_acceptances', (t) => {
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('terms_uri').notNullable();
    t.text('terms_version').notNullable();
    t.text('client_id').notNullable();
    t.timestamp('accepted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['account_id', 'terms_uri', 'terms_version']);
  });

  await knex.schema.createTable('email_links', (t) => {
    t.text('token_hash').primary();
    t.text('purpose').notNullable();
    t.text('email').notNullable();
    t.uuid('account_id').references('id').inTable('accounts').onDelete('CASCADE');
    t.text('interaction_uid').notNullable();
    t.text('sealed_payload');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.index(['expires_at']);
  });
  await knex.raw('create index email_links_recent_idx on email_links (purpose, lower(email), created_at)');
}

/** Drops what `up` created. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('email_links');
  await knex.schema.dropTableIfExists('terms_acceptances');
}
