import type { Knex } from 'knex';

/**
 * Account linking: each provider's email trust, linking and provisioning policy (SAML's
 * `trust_email` setting becomes `email_trust`: true → "any", false or absent → "none"), and the
 * sealed state of each interaction (a pending upstream identity waiting for link confirmation),
 * kept in the database so any node can finish what another began.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('identity_providers', (t) => {
    t.text('email_trust').notNullable().defaultTo('domains');
    t.text('linking').notNullable().defaultTo('confirm');
    t.text('provisioning').notNullable().defaultTo('auto');
  });
  await knex.raw(`
    update identity_providers
       set email_trust = case when settings->>'trust_email' = 'true' then 'any' else 'none' end,
           settings = settings - 'trust_email',
           version = version + 1
     where kind = 'saml'`);

  await knex.schema.createTable('interaction_states', (t) => {
    t.text('uid').primary();
    t.text('sealed_state').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });
}

/** Drops what `up` created; SAML providers get `trust_email` back from their `email_trust`. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('interaction_states');
  await knex.raw(`
    update identity_providers
       set settings = settings || jsonb_build_object('trust_email', email_trust = 'any')
     where kind = 'saml'`);
  await knex.schema.alterTable('identity_providers', (t) => {
    t.dropColumn('email_trust');
    t.dropColumn('linking');
    t.dropColumn('provisioning');
  });
}
