import type { Knex } from 'knex';

/**
 * Indexes for home-realm discovery at any number of providers: the picker's page of enabled
 * providers by alias, and its search by name or alias prefix (case-insensitive). The domain
 * lookup already has its index: `provider_domains.domain` is the primary key.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index identity_providers_enabled_alias on identity_providers (alias) where enabled');
  await knex.raw('create index identity_providers_name_prefix on identity_providers (lower(display_name) text_pattern_ops) where enabled');
  await knex.raw('create index identity_providers_alias_prefix on identity_providers (lower(alias) text_pattern_ops) where enabled');
}

/** Drops what `up` added. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists identity_providers_alias_prefix');
  await knex.raw('drop index if exists identity_providers_name_prefix');
  await knex.raw('drop index if exists identity_providers_enabled_alias');
}
