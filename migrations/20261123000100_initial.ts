import type { Knex } from 'knex';

/** Realmgate's first schema: token engine storage, keys, clients, accounts, providers, audit. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('realmgate_meta', (t) => {
    t.text('key').primary();
    t.text('value').notNullable();
  });

  // Every oidc-provider model except Client (see `clients`), one row per artifact.
  await knex.schema.createTable('oidc_payloads', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('user_code');
    t.text('uid');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['uid']);
    t.index(['user_code']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.text('sealed_jwk').notNullable();
    t.jsonb('public_jwk').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
    t.timestamp('remove_after', { useTz: true });
    t.index(['retired_at']);
  });

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.jsonb('metadata').notNullable();
    t.text('sealed_secret');
    t.integer('version').notNullable().defaultTo(1);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('resource_servers', (t) => {
    t.text('identifier').primary();
    t.jsonb('scopes').notNullable();
    t.integer('access_token_ttl_seconds').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('accounts', (t) => {
    t.uuid('id').primary();
    t.text('email');
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.text('name');
    t.text('given_name');
    t.text('family_name');
    t.text('password_hash');
    t.jsonb('claims').notNullable().defaultTo('{}');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_login_at', { useTz: true });
  });
  await knex.raw('create index accounts_email_idx on accounts (lower(email))');
  await knex.raw('create unique index accounts_local_email_key on accounts (lower(email)) where password_hash is not null');

  await knex.schema.createTable('identity_providers', (t) => {
    t.text('alias').primary();
    t.text('kind').notNullable();
    t.text('display_name').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.jsonb('settings').notNullable().defaultTo('{}');
    t.text('sealed_secrets');
    t.jsonb('claim_mappings').notNullable().defaultTo('{}');
    t.jsonb('status').notNullable().defaultTo('{}');
    t.integer('version').notNullable().defaultTo(1);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  // A domain belongs to one provider.
  await knex.schema.createTable('provider_domains', (t) => {
    t.text('domain').primary();
    t.text('provider_alias').notNullable().references('alias').inTable('identity_providers').onDelete('CASCADE');
    t.index(['provider_alias']);
  });

  await knex.schema.createTable('external_identities', (t) => {
    t.text('provider_alias').notNullable();
    t.text('subject').notNullable();
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('email');
    t.jsonb('claims').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_login_at', { useTz: true });
    t.primary(['provider_alias', 'subject']);
    t.index(['account_id']);
  });

  // How each engine session signed in (provider alias, amr) and, for federated logins, the
  // upstream session it came from, for upstream logout. Keyed by oidc-provider's session uid.
  await knex.schema.createTable('login_sessions', (t) => {
    t.text('session_uid').primary();
    t.uuid('account_id').notNullable();
    t.text('idp').notNullable();
    t.jsonb('amr').notNullable();
    t.text('upstream_issuer');
    t.text('upstream_subject');
    t.text('upstream_session_id');
    t.text('name_id');
    t.text('session_index');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['account_id']);
    t.index(['idp', 'upstream_subject']);
    t.index(['idp', 'upstream_session_id']);
    t.index(['expires_at']);
  });

  // Upstream login transactions (state, nonce, PKCE verifier), sealed, so any node can finish them.
  await knex.schema.createTable('login_transactions', (t) => {
    t.text('id').primary();
    t.text('provider_alias').notNullable();
    t.text('sealed_payload').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });

  await knex.schema.createTable('login_throttle', (t) => {
    t.text('key').primary();
    t.integer('failures').notNullable();
    t.timestamp('window_started_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });

  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor').notNullable();
    t.text('action').notNullable();
    t.text('resource_type').notNullable();
    t.text('resource_id').notNullable();
    t.jsonb('before');
    t.jsonb('after');
    t.text('request_id');
    t.index(['resource_type', 'resource_id']);
    t.index(['at']);
  });
}

/** Drops everything `up` created. */
export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'audit_log', 'login_throttle', 'login_transactions', 'login_sessions', 'external_identities',
    'provider_domains', 'identity_providers', 'accounts', 'resource_servers', 'clients', 'signing_keys',
    'oidc_payloads', 'realmgate_meta',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
