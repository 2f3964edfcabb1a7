import { providerTypeFor } from '../../providers/index.ts';
import { ProviderError, type OpenContext, type OpenedProvider, type StoredProvider } from '../../providers/types.ts';
import type { Logger } from '../logger.ts';
import type { ProviderRepository } from '../store/providers.ts';

/** A provider ready for logins, and the stored fields the federation flow reads. */
export interface ReadyProvider {
  opened: OpenedProvider;
  alias: string;
  displayName: string;
  claimMappings: Record<string, string>;
  version: number;
}

/** Thrown for an alias that names no stored provider (never created, or deleted). */
export class UnknownProviderError extends Error {
  readonly code = 'provider_unknown';
  readonly alias: string;
  constructor(alias: string) {
    super(`no provider with alias "${alias}"`);
    this.alias = alias;
  }
}

type Entry =
  | { state: 'opening'; version: number; promise: Promise<ReadyProvider> }
  | { state: 'ready'; version: number; ready: ReadyProvider }
  | { state: 'failed'; version: number; error: ProviderError; displayName: string; retryAt: number };

/** Options of the provider cache; defaults suit a production node. */
export interface ProviderCacheOptions {
  providers: Pick<ProviderRepository, 'versionOf' | 'load'>;
  context: OpenContext;
  logger: Logger;
  /** Opened providers kept at most; the least recently used is closed first. */
  maxEntries?: number;
  /** After a failed open (discovery unreachable), how long before the next login tries again. */
  retryAfterMs?: number;
}

/**
 * Opened providers by `(alias, version)`. Each use asks the database for the current version
 * (one indexed read) and reopens when it changed, so an admin change reaches every node on its
 * next login. A provider that cannot be opened is unavailable on its own, retried after a
 * short backoff, and never affects the others.
 */
export class ProviderCache {
  readonly #options: Required<ProviderCacheOptions>;
  readonly #entries = new Map<string, Entry>();

  constructor(options: ProviderCacheOptions) {
    this.#options = { ...options, maxEntries: options.maxEntries ?? 200, retryAfterMs: options.retryAfterMs ?? 10_000 };
  }

  /** The current version of `alias`, opened. Throws `UnknownProviderError` or `ProviderError('unavailable')`. */
  async get(alias: string): Promise<ReadyProvider> {
    const version = await this.#options.providers.versionOf(alias);
    if (version === undefined) {
      this.#evict(alias);
      throw new UnknownProviderError(alias);
    }
    const entry = this.#entries.get(alias);
    if (entry && entry.version === version) {
      this.#touch(alias, entry);
      if (entry.state === 'ready') return entry.ready;
      if (entry.state === 'opening') return entry.promise;
      if (Date.now() < entry.retryAt) throw entry.error;
    }
    return this.#open(alias);
  }

  /** The display name last seen for `alias`, for error pages. */
  displayName(alias: string): string | undefined {
    const entry = this.#entries.get(alias);
    if (entry?.state === 'ready') return entry.ready.displayName;
    if (entry?.state === 'failed') return entry.displayName;
    return undefined;
  }

  /** Closes every opened provider. */
  clear(): void {
    for (const alias of [...this.#entries.keys()]) this.#evict(alias);
  }

  async #open(alias: string): Promise<ReadyProvider> {
    const stored = await this.#options.providers.load(alias);
    if (!stored) {
      this.#evict(alias);
      throw new UnknownProviderError(alias);
    }
    const refusal = this.#refusal(stored);
    if (refusal) {
      // Retrying cannot help until the provider changes (and its version with it).
      this.#fail(stored, refusal, Number.POSITIVE_INFINITY);
      throw refusal;
    }
    const promise = this.#openStored(stored);
    this.#set(alias, { state: 'opening', version: stored.version, promise });
    try {
      const ready = await promise;
      if (this.#entries.get(alias)?.version === stored.version) this.#set(alias, { state: 'ready', version: stored.version, ready });
      return ready;
    } catch (cause) {
      const error = cause instanceof ProviderError ? cause : new ProviderError('unavailable', { alias, detail: (cause as Error).message, cause });
      this.#fail(stored, error, Date.now() + this.#options.retryAfterMs);
      throw error;
    }
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

  async #openStored(stored: StoredProvider): Promise<ReadyProvider> {
    const opened = await providerTypeFor(stored.kind)!.open(stored, this.#options.context);
    this.#options.logger.info({ alias: stored.alias, version: stored.version, kind: stored.kind }, 'provider opened');
    return { opened, alias: stored.alias, displayName: stored.displayName, claimMappings: stored.claimMappings, version: stored.version };
  }

  #fail(stored: StoredProvider, error: ProviderError, retryAt: number): void {
    this.#options.logger[stored.enabled ? 'error' : 'info'](
      { alias: stored.alias, version: stored.version, code: error.code, err: error.cause ?? error },
      `provider ${stored.alias} is unavailable: ${error.message}`,
    );
    if (this.#entries.has(stored.alias) && this.#entries.get(stored.alias)!.version > stored.version) return;
    this.#set(stored.alias, { state: 'failed', version: stored.version, error, displayName: stored.displayName, retryAt });
  }

  #set(alias: string, entry: Entry): void {
    const previous = this.#entries.get(alias);
    if (previous?.state === 'ready' && previous !== entry && (entry.state !== 'ready' || previous.ready !== entry.ready)) previous.ready.opened.close?.();
    this.#entries.delete(alias);
    this.#entries.set(alias, entry);
    while (this.#entries.size > this.#options.maxEntries) this.#evict(this.#entries.keys().next().value!);
  }

  #touch(alias: string, entry: Entry): void {
    this.#entries.delete(alias);
    this.#entries.set(alias, entry);
  }

  #evict(alias: string): void {
    const entry = this.#entries.get(alias);
    if (entry?.state === 'ready') entry.ready.opened.close?.();
    this.#entries.delete(alias);
  }
}
