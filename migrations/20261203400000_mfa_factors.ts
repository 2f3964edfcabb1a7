import type { Knex } from 'knex';

/**
 * Second factors: one row per factor of an account (`mfa_factors`; TOTP now, its secret sealed,
 * the last accepted time step so each code is used once, `confirmed_at` null while enrolment waits
 * for the first code), the account's single-use recovery codes (`mfa_recovery_codes`, only their
 * keyed hashes), when an account first signed in to a client that requires a second factor
 * (`accounts.mfa_required_at`: its last factor can then not be removed from the account page), and the providers' `require_local_mfa` flag (a local factor after a federated
 * sign-in; false trusts the upstream).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('mfa_factors', (t) => {
    t.uuid('id').primary();
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('label').notNullable();
    t.text('sealed_secret').notNullable();
    t.bigInteger('last_time_step');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('confirmed_at', { useTz: true });
    t.timestamp('last_used_at', { useTz: true });
    t.index(['account_id']);
  });
  await knex.schema.createTable('mfa_recovery_codes', (t) => {
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('used_at', { useTz: true });
    t.primary(['account_id', 'code_hash']);
  });
  await knex.schema.alterTable('identity_providers', (t) => {
    t.boolean('require_local_mfa').notNullable().defaultTo(false);
  });
  await knex.schema.alterTable('accounts', (t) => {
    t.timestamp('mfa_required_at', { useTz: true });
  });
}

/** Drops what `up` created. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('accounts', (t) => t.dropColumn('mfa_required_at'));
  await knex.schema.alterTable('identity_providers', (t) => t.dropColumn('require_local_mfa'));
  await knex.schema.dropTableIfExists('mfa_recovery_codes');
  await knex.schema.dropTableIfExists('mfa_factors');
}
