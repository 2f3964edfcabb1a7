/**
 * What home-realm discovery reads about providers, each an indexed lookup that reads a bounded
 * number of rows whatever the number of providers: one provider by alias (primary key), the
 * provider owning an email domain (`provider_domains` primary key), a short list for the picker
 * (at most `limit + 1` rows) and a prefix search by name. No secrets are read.
 */
import type { Knex } from 'knex';
import { primeInRequest, providerVersionKey } from './request-scope.ts';

/** An enabled provider as discovery shows it: `domains` lists the domains the lookup found. */
export interface DirectoryProvider {
  alias: string;
  displayName: string;
  domains: string[];
  /** The login button's image: the provider's `icon_url` setting when it is a path on Realmgate's own origin. */
  icon?: string | undefined;
}

/** A bounded list of enabled providers; `more` says others exist beyond it. */
export interface DirectoryPage {
  providers: DirectoryProvider[];
  more: boolean;
}

interface NameRow {
  alias: string;
  display_name: string;
  icon_url: string | null;
}

/** The columns every lookup reads: names and the button icon, never settings or secrets as a whole. */
const ICON_URL = "settings->>'icon_url' as icon_url";

/** A provider's `icon_url` setting as a login button's image: a same-origin path only, as anything else would need the page's CSP loosened. */
export function buttonIcon(url: unknown): string | undefined {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : undefined;
}

const iconOf = (row: NameRow) => buttonIcon(row.icon_url);

/** Reads providers for home-realm discovery and the login page. */
export class ProviderDirectory {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /**
   * The enabled provider with this alias (one primary-key read; its domains are not read), or
   * undefined. The version it read answers the provider cache's check later in the same request.
   */
  async enabled(alias: string): Promise<DirectoryProvider | undefined> {
    const row = await this.#db('identity_providers').where({ alias, enabled: true }).first<(NameRow & { version: number }) | undefined>('alias', 'display_name', 'version', this.#db.raw(ICON_URL));
    if (!row) return undefined;
    primeInRequest(providerVersionKey(alias), row.version);
    return { alias: row.alias, displayName: row.display_name, domains: [], icon: iconOf(row) };
  }

  /** The enabled provider that owns `domain` (lower-cased), or undefined: one primary-key lookup joined to its provider (its version primes the cache check too). */
  async forDomain(domain: string): Promise<DirectoryProvider | undefined> {
    const row = await this.#db('provider_domains')
      .join('identity_providers', 'identity_providers.alias', 'provider_domains.provider_alias')
      .where({ 'provider_domains.domain': domain.toLowerCase(), 'identity_providers.enabled': true })
      .first<(NameRow & { version: number }) | undefined>('identity_providers.alias', 'identity_providers.display_name', 'identity_providers.version', this.#db.raw("identity_providers.settings->>'icon_url' as icon_url"));
    if (!row) return undefined;
    primeInRequest(providerVersionKey(row.alias), row.version);
    return { alias: row.alias, displayName: row.display_name, domains: [domain.toLowerCase()], icon: iconOf(row) };
  }

  /**
   * Enabled providers for a picker, by alias: the ones named in `aliases` (a client's
   * `allowed_providers`), or else the first ones of all; at most `limit`, with `more` set when
   * there are others.
   */
  async page(aliases: readonly string[] | undefined, limit: number): Promise<DirectoryPage> {
    if (aliases && aliases.length === 0) return { providers: [], more: false };
    if (aliases && aliases.length > limit) return { providers: [], more: true };
    const query = this.#db('identity_providers').where({ enabled: true }).orderBy('alias').limit(limit + 1);
    if (aliases) query.whereIn('alias', [...aliases]);
    const rows = await query.select<NameRow[]>('alias', 'display_name', this.#db.raw(ICON_URL));
    const more = rows.length > limit;
    return { providers: await this.#withDomains(rows.slice(0, limit)), more };
  }

  /** Enabled providers whose alias or display name starts with `term` (case-insensitive), at most `limit`, by name. */
  async search(term: string, limit: number, aliases?: readonly string[]): Promise<DirectoryProvider[]> {
    const prefix = `${term.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const allowed = aliases && new Set(aliases);
    const rows = await this.#db('identity_providers')
      .where({ enabled: true })
      .andWhere((q) => q.whereRaw('lower(display_name) like ?', [prefix]).orWhereRaw('lower(alias) like ?', [prefix]))
      .orderByRaw('lower(display_name)')
      // A client's allowed list filters after the read, so it never becomes a bind-parameter list.
      .limit(allowed ? limit * 10 : limit)
      .select<NameRow[]>('alias', 'display_name', this.#db.raw(ICON_URL));
    return this.#withDomains(rows.filter((r) => !allowed || allowed.has(r.alias)).slice(0, limit));
  }

  async #withDomains(rows: NameRow[]): Promise<DirectoryProvider[]> {
    if (!rows.length) return [];
    const domains = await this.#db('provider_domains')
      .whereIn('provider_alias', rows.map((r) => r.alias))
      .orderBy('domain')
      .select<{ domain: string; provider_alias: string }[]>('domain', 'provider_alias');
    return rows.map((r) => ({ alias: r.alias, displayName: r.display_name, domains: domains.filter((d) => d.provider_alias === r.alias).map((d) => d.domain), icon: iconOf(r) }));
  }
}
