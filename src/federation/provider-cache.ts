import { providerTypeFor } from '../../providers/index.ts';
import { ProviderError, type LinkingPolicy, type OpenContext, type OpenedProvider, type StoredProvider } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { ChangeWatch } from '../store/change-notices.ts';
import { LruMap } from '../store/lru-map.ts';
import { buttonIcon, type DirectoryProvider } from '../store/provider-directory.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { providerVersionKey, requestScoped } from '../store/request-scope.ts';

/** A provider ready for logins, and the stored fields the federation flow reads. */
export interface ReadyProvider {
  opened: OpenedProvider;
  alias: string;
  displayName: string;
  claimMappings: Record<string, string>;
  /** Email domains the provider owns: with `email_trust: "domains"`, only these addresses count as verified. */
  domains: readonly string[];
  linkingPolicy: LinkingPolicy;
  /** A local second factor after this provider's sign-ins (`require_local_mfa`). */
  requireLocalMfa: boolean;
  /** The login button's image (`icon_url`, when a same-origin path). */
  icon: string | undefined;
  version: number;
}

/** The 404 for an alias that names no stored provider (never created, or deleted). */
export function unknownProvider(alias: string): RealmgateError {
  return new RealmgateError('provider_unknown', { alias, detail: `no provider with alias "${alias}"` });
}

/**
 * What opening a provider depends on: its kind, settings, secrets and the upstream configuration
 * the refresh job last saw. A change elsewhere (display name, domains, claim mappings, linking
 * policy) reuses the opened provider.
 */
function openingFingerprint(stored: StoredProvider & { upstreamDigest?: string | undefined }): string {
  return JSON.stringify([stored.kind, stored.settings, stored.secrets, stored.upstreamDigest ?? null]);
}

type Ready = ReadyProvider & { fingerprint: string };

/**
 * `verifiedEpoch`: the epoch of change notices in which the entry's version was last confirmed
 * current (undefined: read the version before using it).
 */
type Entry = { verifiedEpoch?: number | undefined } & (
  | { state: 'opening'; version: number; promise: Promise<ReadyProvider>; previous: Ready | undefined }
  | { state: 'ready'; version: number; ready: Ready }
  | { state: 'failed'; version: number; error: ProviderError; displayName: string; retryAt: number }
);

/** Options of the provider cache; defaults suit a production node. */
export interface ProviderCacheOptions {
  providers: Pick<ProviderRepository, 'versionOf' | 'load'>;
  /** Change notices of the `identity_providers` table (`ChangeNotices.watch('identity_providers')`); absent: none, a version read on each use. */
  changes?: ChangeWatch;
  context: OpenContext;
  logger: Logger;
  /** Opened providers kept at most (`REALMGATE_PROVIDER_CACHE_SIZE`); the least recently used is closed first. */
  maxEntries?: number;
  /** After a failed open (discovery unreachable), how long before the next login tries again. */
  retryAfterMs?: number;
}

/**
 * Opened providers by `(alias, version)`. While change notices arrive (`store/change-notices.ts`)
 * an entry whose version was confirmed is used without asking the database, and a notice for the
 * alias makes the next use confirm it again; without a listener each use asks the database for
 * the current version (one indexed read, once per request). A changed version reloads the stored
 * provider, so an admin change reaches every node on its next login. Only a change to what opening depends on
 * (kind, settings, secrets) reopens it (discovery, JWKS, certificates); a cosmetic change
 * (display name, domains, claim mappings, linking policy) keeps the opened provider. A provider
 * that cannot be opened is unavailable on its own, retried after a short backoff, and never
 * affects the others.
 */
export class ProviderCache {
  readonly #options: Required<ProviderCacheOptions>;
  readonly #entries: LruMap<string, Entry>;

  constructor(options: ProviderCacheOptions) {
    this.#options = { ...options, changes: options.changes ?? new ChangeWatch(), maxEntries: options.maxEntries ?? 10_000, retryAfterMs: options.retryAfterMs ?? 10_000 };
    // The least recently used provider beyond the bound is closed as it goes.
    this.#entries = new LruMap(this.#options.maxEntries, (_alias, entry) => closeEntry(entry));
    this.#options.changes.subscribe({ changed: (alias) => this.#unconfirm(alias) });
  }

  /** The current version of `alias`, opened. Throws `provider_unknown` or `ProviderError('unavailable')`. */
  async get(alias: string): Promise<ReadyProvider> {
    const known = this.#entries.get(alias);
    const trusted = known && this.#options.changes.trusts(known.verifiedEpoch);
    const { version, verifiedEpoch } = trusted ? { version: known.version, verifiedEpoch: known.verifiedEpoch } : await this.#currentVersion(alias);
    if (version === undefined) {
      this.#evict(alias);
      throw unknownProvider(alias);
    }
    const entry = this.#entries.get(alias);
    if (entry && entry.version === version) {
      entry.verifiedEpoch = verifiedEpoch;
      this.#entries.set(alias, entry);
      if (entry.state === 'ready') return entry.ready;
      if (entry.state === 'opening') return entry.promise;
      if (Date.now() < entry.retryAt) throw entry.error;
    }
    // Registered before the first await, so concurrent logins share one open.
    const previous = entry?.state === 'ready' ? entry.ready : entry?.state === 'opening' ? entry.previous : undefined;
    const promise = this.#open(alias, version);
    this.#entries.set(alias, { state: 'opening', version, promise, previous, verifiedEpoch });
    return promise;
  }

  /**
   * The stored version of `alias` and the epoch it is confirmed in. With a listener the read goes
   * to the database (a version another step of the request read may predate a notice); without
   * one, once per request as before notices.
   */
  async #currentVersion(alias: string): Promise<{ version: number | undefined; verifiedEpoch: number | undefined }> {
    const { changes, providers } = this.#options;
    if (!changes.connected) return { version: await requestScoped(providerVersionKey(alias), () => providers.versionOf(alias)), verifiedEpoch: undefined };
    const { value, verifiedEpoch } = await changes.read(alias, () => providers.versionOf(alias));
    return { version: value, verifiedEpoch };
  }

  /** A notice for the alias: its entry's version is confirmed again (one read) on next use. */
  #unconfirm(alias: string): void {
    const entry = this.#entries.get(alias);
    if (entry) entry.verifiedEpoch = undefined;
  }

  /**
   * The provider `alias` as discovery shows it (its domains not listed), when it is open and its
   * version is confirmed by change notices: enabled, as a disabled one is never open, and
   * current, as a change to it would have unconfirmed it. Otherwise undefined, and discovery
   * reads the directory. Does not count as a use.
   */
  confirmedEnabled(alias: string): DirectoryProvider | undefined {
    const entry = this.#entries.get(alias);
    if (entry?.state !== 'ready' || !this.#options.changes.trusts(entry.verifiedEpoch)) return undefined;
    return { alias, displayName: entry.ready.displayName, domains: [], icon: entry.ready.icon };
  }

  /** The display name last seen for `alias`, for error pages. */
  displayName(alias: string): string | undefined {
    const entry = this.#entries.get(alias);
    if (entry?.state === 'ready') return entry.ready.displayName;
    if (entry?.state === 'failed') return entry.displayName;
    return entry?.state === 'opening' ? entry.previous?.displayName : undefined;
  }

  /** Closes every opened provider. */
  clear(): void {
    for (const alias of [...this.#entries.keys()]) this.#evict(alias);
  }

  async #open(alias: string, expectedVersion: number): Promise<ReadyProvider> {
    const stored = await this.#options.providers.load(alias);
    if (!stored) {
      this.#evict(alias);
      throw unknownProvider(alias);
    }
    const refusal = this.#refusal(stored);
    if (refusal) {
      // Retrying cannot help until the provider changes (and its version with it).
      this.#settle(alias, expectedVersion, this.#failed(stored, refusal, Number.POSITIVE_INFINITY));
      throw refusal;
    }
    const fingerprint = openingFingerprint(stored);
    const current = this.#entries.get(alias);
    const previous = current?.state === 'opening' && current.version === expectedVersion ? current.previous : undefined;
    if (previous && previous.fingerprint === fingerprint) {
      const ready: Ready = { ...previous, ...this.#storedFields(stored) };
      // The opened provider carries over: detach it from the entry so settling does not close it.
      if (current?.state === 'opening') current.previous = undefined;
      this.#settle(alias, expectedVersion, { state: 'ready', version: stored.version, ready });
      return ready;
    }
    try {
      const opened = await providerTypeFor(stored.kind)!.open(stored, this.#options.context);
      this.#options.logger.info({ alias, version: stored.version, kind: stored.kind }, 'provider opened');
      const ready: Ready = { opened, fingerprint, ...this.#storedFields(stored) };
      this.#settle(alias, expectedVersion, { state: 'ready', version: stored.version, ready });
      return ready;
    } catch (cause) {
      const error = cause instanceof ProviderError ? cause : new ProviderError('unavailable', { alias, detail: (cause as Error).message, cause });
      this.#settle(alias, expectedVersion, this.#failed(stored, error, Date.now() + this.#options.retryAfterMs));
      throw error;
    }
  }

  /** The stored fields a ready provider exposes besides the opened one. */
  #storedFields(stored: StoredProvider): Omit<ReadyProvider, 'opened'> {
    return {
      alias: stored.alias,
      displayName: stored.displayName,
      claimMappings: stored.claimMappings,
      domains: stored.domains,
      linkingPolicy: stored.linkingPolicy,
      requireLocalMfa: stored.requireLocalMfa ?? false,
      icon: buttonIcon(stored.settings.icon_url),
      version: stored.version,
    };
  }

  /** Why a stored provider cannot be opened at all: disabled, a kind this node lacks, invalid settings. */
  #refusal(stored: StoredProvider): ProviderError | undefined {
    const { alias } = stored;
    if (!stored.enabled) return new ProviderError('unavailable', { alias, detail: 'the provider is disabled' });
    const type = providerTypeFor(stored.kind);
    if (!type) return new ProviderError('unavailable', { alias, detail: `kind ${stored.kind} is not supported by this node` });
    const problems = type.check(stored.settings, stored.secrets);
    if (!problems.length) return undefined;
    return new ProviderError('unavailable', { alias, detail: `invalid settings: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}` });
  }

  #failed(stored: StoredProvider, error: ProviderError, retryAt: number): Entry {
    this.#options.logger[stored.enabled ? 'error' : 'info'](
      { alias: stored.alias, version: stored.version, code: error.code, err: error.cause ?? error },
      `provider ${stored.alias} is unavailable: ${error.message}`,
    );
    return { state: 'failed', version: stored.version, error, displayName: stored.displayName, retryAt };
  }

  /**
   * Puts the outcome of an open in place of the `opening` entry it registered and closes the
   * provider it replaces; an outcome overtaken by a newer open is dropped (and closed).
   */
  #settle(alias: string, expectedVersion: number, next: Entry): void {
    const current = this.#entries.get(alias);
    if (current?.state !== 'opening' || current.version !== expectedVersion) {
      if (next.state === 'ready') next.ready.opened.close?.();
      return;
    }
    current.previous?.opened.close?.();
    // Confirmed as the open's version read was, unless a notice came since (which unconfirmed `current`).
    this.#entries.set(alias, { ...next, verifiedEpoch: current.verifiedEpoch });
  }

  #evict(alias: string): void {
    const entry = this.#entries.get(alias);
    this.#entries.delete(alias);
    if (entry) closeEntry(entry);
  }
}

/** Closes the opened provider an entry holds (an opening one: the provider it replaces). */
function closeEntry(entry: Entry): void {
  if (entry.state === 'ready') entry.ready.opened.close?.();
  if (entry.state === 'opening') entry.previous?.opened.close?.();
}
