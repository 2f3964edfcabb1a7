import type { Knex } from 'knex';

/**
 * Logout: the outbox of back-channel logout deliveries to applications, and what single logout
 * needs to know about each federated session (the SAML NameID's format and qualifiers, the
 * upstream ID token for `id_token_hint`).
 */
export async function up(knex: Knex): Promise<void> {
  // One row per (ended session, application): written in the transaction that ends the session,
  // delivered at least once by whichever node claims it first, retried until `give_up_at`.
  await knex.schema.createTable('logout_deliveries', (t) => {
    t.bigIncrements('id');
    t.text('session_uid').notNullable();
    t.text('client_id').notNullable();
    t.text('account_id').notNullable();
    t.text('sid');
    /** rp_logout | upstream_logout | admin | expired */
    t.text('reason').notNullable();
    /** pending | delivered | failed */
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('give_up_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('delivered_at', { useTz: true });
    t.text('last_error');
    t.unique(['session_uid', 'client_id']);
    t.index(['client_id']);
  });
  await knex.raw("create index logout_deliveries_due_idx on logout_deliveries (next_attempt_at) where status = 'pending'");
  await knex.raw('create index logout_deliveries_status_idx on logout_deliveries (status, id)');

  await knex.schema.alterTable('login_sessions', (t) => {
    t.text('name_id_format');
    t.text('name_qualifier');
    t.text('sp_name_qualifier');
    t.text('upstream_id_token');
    t.index(['idp', 'name_id']);
  });
}

/** Drops what `up` created. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('logout_deliveries');
  await knex.schema.alterTable('login_sessions', (t) => {
    t.dropIndex(['idp', 'name_id']);
    t.dropColumns('name_id_format', 'name_qualifier', 'sp_name_qualifier', 'upstream_id_token');
  });
}
