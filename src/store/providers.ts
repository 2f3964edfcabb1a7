import type { Knex } from 'knex';
import { DEFAULT_LINKING_POLICY, type EmailTrust, type LinkingPolicy, type LinkingRule, type ProviderKind, type ProvisioningRule, type StoredProvider } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import type { ChangedHere } from './change-notices.ts';
import type { Sealer } from './seal.ts';

/** A provider as the admin API shows it: no secret values, only which secrets are set. */
export interface ProviderRecord extends Omit<StoredProvider, 'secrets'> {
  secretsSet: string[];
  status: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Fields written on create or replace. `secrets` undefined keeps the stored ones; a null value
 * removes one. An absent `linkingPolicy` (or field of it) is the default policy.
 */
export interface ProviderInput extends Omit<StoredProvider, 'secrets' | 'version' | 'linkingPolicy'> {
  secrets?: Record<string, string | null> | undefined;
  linkingPolicy?: Partial<LinkingPolicy> | undefined;
}

const policyColumns = (policy: Partial<LinkingPolicy> | undefined) => {
  const p = { ...DEFAULT_LINKING_POLICY, ...policy };
  return { email_trust: p.emailTrust, linking: p.linking, provisioning: p.provisioning };
};

const policyOf = (row: ProviderRow): LinkingPolicy => ({ emailTrust: row.email_trust, linking: row.linking, provisioning: row.provisioning });

interface ProviderRow {
  alias: string;
  kind: ProviderKind;
  display_name: string;
  enabled: boolean;
  settings: Record<string, unknown>;
  sealed_secrets: string | null;
  claim_mappings: Record<string, string>;
  email_trust: EmailTrust;
  linking: LinkingRule;
  provisioning: ProvisioningRule;
  require_local_mfa: boolean;
  status: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** A write that conflicts with stored state (an alias taken, a domain owned by another provider): 409 naming the field. */
function providerConflict(field: string, sentence: string): RealmgateError {
  return new RealmgateError('provider_conflict', { safeMessage: sentence, errors: [{ field, message: sentence }], detail: sentence });
}

/** Thrown when `If-Match` named a version that is no longer current; a subclass because the admin API reads `currentVersion` to send the ETag. */
export class StaleVersionError extends RealmgateError {
  readonly currentVersion: number;
  constructor(currentVersion: number) {
    super('stale_version', { detail: `the provider is at version ${currentVersion}` });
    this.currentVersion = currentVersion;
  }
}

/**
 * Stores upstream identity providers. Every change bumps `version` in the same transaction, which
 * is how every node's provider cache notices it.
 */
export class ProviderRepository {
  readonly #db: Knex;
  readonly #sealer: Sealer;
  readonly #changed: ChangedHere;

  /** `changed` hears each provider this repository wrote (after the commit, in a unit of work). */
  constructor(db: Knex, sealer: Sealer, changed: ChangedHere = () => {}) {
    this.#db = db;
    this.#sealer = sealer;
    this.#changed = changed;
  }

  /**
   * The stored provider with secrets unsealed, for opening, with the digest of the upstream
   * configuration the refresh job last loaded; undefined when absent. With
   * `forUpdate` (inside a transaction) the row stays locked until the transaction ends.
   */
  async load(alias: string, options: { forUpdate?: boolean } = {}): Promise<(StoredProvider & { upstreamDigest?: string | undefined }) | undefined> {
    const query = this.#db('identity_providers').where({ alias });
    if (options.forUpdate) query.forUpdate();
    const row = await query.first<ProviderRow | undefined>();
    if (!row) return undefined;
    const domains = await this.#domainsOf(this.#db, [alias]);
    return {
      alias: row.alias,
      kind: row.kind,
      displayName: row.display_name,
      enabled: row.enabled,
      domains: domains.get(alias) ?? [],
      settings: row.settings,
      secrets: this.#openSecrets(row),
      claimMappings: row.claim_mappings,
      linkingPolicy: policyOf(row),
      requireLocalMfa: row.require_local_mfa,
      version: row.version,
      // The refresh job's digest of the upstream configuration: a change to it must reopen the provider.
      upstreamDigest: (row.status?.refresh as { digest?: string } | undefined)?.digest,
    };
  }

  /** The current version of a provider, or undefined when it does not exist (cheap, for cache checks). */
  async versionOf(alias: string): Promise<number | undefined> {
    const row = await this.#db('identity_providers').where({ alias }).first<{ version: number } | undefined>('version');
    return row?.version;
  }

  /** One provider without secret values. */
  async get(alias: string): Promise<ProviderRecord | undefined> {
    const row = await this.#db('identity_providers').where({ alias }).first<ProviderRow | undefined>();
    if (!row) return undefined;
    return this.#toRecord(row, (await this.#domainsOf(this.#db, [alias])).get(alias) ?? []);
  }

  /** A page of providers ordered by alias, filtered by kind, enabled flag or domain. */
  async list(options: { limit: number; afterAlias?: string | undefined; kind?: ProviderKind | undefined; enabled?: boolean | undefined; domain?: string | undefined }): Promise<ProviderRecord[]> {
    const q = this.#db('identity_providers').orderBy('alias').limit(options.limit);
    if (options.afterAlias) q.where('alias', '>', options.afterAlias);
    if (options.kind) q.where('kind', options.kind);
    if (options.enabled !== undefined) q.where('enabled', options.enabled);
    if (options.domain) {
      q.whereIn('alias', this.#db('provider_domains').select('provider_alias').where('domain', options.domain.toLowerCase()));
    }
    const rows = await q.select<ProviderRow[]>();
    const domains = await this.#domainsOf(this.#db, rows.map((r) => r.alias));
    return rows.map((r) => this.#toRecord(r, domains.get(r.alias) ?? []));
  }

  /** Alias, kind and status of every enabled provider: what the refresh job checks each minute (no secrets unsealed, no domains read). */
  async listEnabledStatus(): Promise<{ alias: string; kind: ProviderKind; status: Record<string, unknown> }[]> {
    return this.#db('identity_providers').where({ enabled: true }).orderBy('alias').select('alias', 'kind', 'status');
  }

  /** Display names of the given providers (one query, no secrets read), by alias. */
  async displayNames(aliases: readonly string[]): Promise<Record<string, string>> {
    if (!aliases.length) return {};
    const rows = await this.#db('identity_providers').whereIn('alias', [...aliases]).select<{ alias: string; display_name: string }[]>('alias', 'display_name');
    return Object.fromEntries(rows.map((r) => [r.alias, r.display_name]));
  }

  /** The enabled provider that owns an email domain, if any. */
  async aliasForDomain(domain: string): Promise<string | undefined> {
    const row = await this.#db('provider_domains')
      .join('identity_providers', 'identity_providers.alias', 'provider_domains.provider_alias')
      .where({ 'provider_domains.domain': domain.toLowerCase(), 'identity_providers.enabled': true })
      .first<{ provider_alias: string } | undefined>('provider_domains.provider_alias');
    return row?.provider_alias;
  }

  /**
   * Creates a provider at version 1. Throws `provider_conflict` for a taken alias or domain.
   * Several statements: run it on a transaction's repository (`tx.providers`).
   */
  async create(input: ProviderInput): Promise<ProviderRecord> {
    const secrets = Object.fromEntries(Object.entries(input.secrets ?? {}).filter((e): e is [string, string] => e[1] !== null));
    try {
      await this.#db('identity_providers').insert({
        alias: input.alias,
        kind: input.kind,
        display_name: input.displayName,
        enabled: input.enabled,
        settings: JSON.stringify(input.settings),
        sealed_secrets: Object.keys(secrets).length ? this.#sealer.seal(JSON.stringify(secrets)) : null,
        claim_mappings: JSON.stringify(input.claimMappings),
        ...policyColumns(input.linkingPolicy),
        require_local_mfa: input.requireLocalMfa ?? false,
        version: 1,
      });
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw providerConflict('alias', `A provider with alias "${input.alias}" already exists.`);
      throw error;
    }
    await this.#replaceDomains(this.#db, input.alias, input.domains);
    this.#changed('identity_providers', input.alias);
    return (await this.get(input.alias))!;
  }

  /**
   * Replaces a provider's fields (the alias and kind are permanent) and bumps its version.
   * With `expectedVersion`, a concurrent change makes it throw `StaleVersionError`. Several
   * statements: run it on a transaction's repository (`tx.providers`).
   */
  async update(input: ProviderInput, expectedVersion?: number): Promise<ProviderRecord | undefined> {
    const current = await this.#db('identity_providers').where({ alias: input.alias }).forUpdate().first<ProviderRow | undefined>();
    if (!current) return undefined;
    if (expectedVersion !== undefined && current.version !== expectedVersion) throw new StaleVersionError(current.version);
    const secrets = this.#openSecrets(current);
    for (const [name, value] of Object.entries(input.secrets ?? {})) {
      if (value === null) delete secrets[name];
      else secrets[name] = value;
    }
    await this.#db('identity_providers')
      .where({ alias: input.alias })
      .update({
        display_name: input.displayName,
        enabled: input.enabled,
        settings: JSON.stringify(input.settings),
        sealed_secrets: Object.keys(secrets).length ? this.#sealer.seal(JSON.stringify(secrets)) : null,
        claim_mappings: JSON.stringify(input.claimMappings),
        ...policyColumns(input.linkingPolicy),
        require_local_mfa: input.requireLocalMfa ?? false,
        version: current.version + 1,
        updated_at: this.#db.fn.now(),
      });
    await this.#replaceDomains(this.#db, input.alias, input.domains);
    this.#changed('identity_providers', input.alias);
    return this.get(input.alias);
  }

  /** Records an operational status (refresh results, certificate expiry) and bumps the version when asked. */
  async setStatus(alias: string, status: Record<string, unknown>, options: { bumpVersion: boolean }): Promise<void> {
    await this.#db('identity_providers')
      .where({ alias })
      .update({
        status: JSON.stringify(status),
        ...(options.bumpVersion ? { version: this.#db.raw('version + 1'), updated_at: this.#db.fn.now() } : {}),
      });
    this.#changed('identity_providers', alias);
  }

  /** Deletes a provider (its domains go with it); false when absent. Locks first: run it on a transaction's repository (`tx.providers`). */
  async delete(alias: string, expectedVersion?: number): Promise<boolean> {
    const current = await this.#db('identity_providers').where({ alias }).forUpdate().first<ProviderRow | undefined>();
    if (!current) return false;
    if (expectedVersion !== undefined && current.version !== expectedVersion) throw new StaleVersionError(current.version);
    await this.#db('identity_providers').where({ alias }).delete();
    this.#changed('identity_providers', alias);
    return true;
  }

  async #replaceDomains(trx: Knex, alias: string, domains: string[]): Promise<void> {
    const wanted = [...new Set(domains.map((d) => d.toLowerCase()))];
    const taken = wanted.length
      ? await trx('provider_domains').whereIn('domain', wanted).whereNot('provider_alias', alias).select<{ domain: string; provider_alias: string }[]>()
      : [];
    if (taken.length) {
      const first = taken[0]!;
      throw providerConflict('domains', `The domain "${first.domain}" already belongs to provider "${first.provider_alias}".`);
    }
    await trx('provider_domains').where({ provider_alias: alias }).delete();
    if (wanted.length) await trx('provider_domains').insert(wanted.map((domain) => ({ domain, provider_alias: alias })));
  }

  async #domainsOf(trx: Knex, aliases: string[]): Promise<Map<string, string[]>> {
    const map = new Map<string, string[]>();
    if (!aliases.length) return map;
    const rows = await trx('provider_domains').whereIn('provider_alias', aliases).orderBy('domain').select<{ domain: string; provider_alias: string }[]>();
    for (const row of rows) map.set(row.provider_alias, [...(map.get(row.provider_alias) ?? []), row.domain]);
    return map;
  }

  #openSecrets(row: ProviderRow): Record<string, string> {
    return row.sealed_secrets ? (JSON.parse(this.#sealer.open(row.sealed_secrets)) as Record<string, string>) : {};
  }

  #toRecord(row: ProviderRow, domains: string[]): ProviderRecord {
    return {
      alias: row.alias,
      kind: row.kind,
      displayName: row.display_name,
      enabled: row.enabled,
      domains,
      settings: row.settings,
      secretsSet: Object.keys(this.#openSecrets(row)).sort(),
      claimMappings: row.claim_mappings,
      linkingPolicy: policyOf(row),
      requireLocalMfa: row.require_local_mfa,
      status: row.status,
      version: row.version,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}
