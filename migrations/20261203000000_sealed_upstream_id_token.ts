import type { Knex } from 'knex';

/**
 * The upstream ID token kept for `id_token_hint` is a credential of the user at the upstream, so it
 * is sealed at rest like every other secret: `login_sessions.upstream_id_token` (plain) gives way to
 * `sealed_upstream_id_token`. A migration has no master key to seal with, so tokens stored before
 * are dropped: those sessions still sign out upstream, without `id_token_hint` (the upstream may
 * then ask the user to confirm).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_sessions', (t) => {
    t.text('sealed_upstream_id_token');
  });
  await knex.schema.alterTable('login_sessions', (t) => {
    t.dropColumn('upstream_id_token');
  });
}

/** Restores the plain column, empty: sealed tokens cannot be opened here. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_sessions', (t) => {
    t.text('upstream_id_token');
  });
  await knex.schema.alterTable('login_sessions', (t) => {
    t.dropColumn('sealed_upstream_id_token');
  });
}
