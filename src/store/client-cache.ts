import type { ChangeWatch } from './change-notices.ts';
import type { ClientRepository } from './clients.ts';
import { LruMap } from './lru-map.ts';
import { requestScoped } from './request-scope.ts';

/** Options of the client cache. */
export interface ClientCacheOptions {
  clients: Pick<ClientRepository, 'versionOf' | 'loadForEngine'>;
  /** Change notices of the `clients` table (`ChangeNotices.watch('clients')`). */
  changes: ChangeWatch;
  /** Clients kept at most; the least recently used goes first. */
  maxEntries: number;
}

interface Entry {
  version: number;
  properties: Record<string, unknown>;
  /** The epoch of change notices in which the entry was last confirmed current; undefined: ask the database. */
  verifiedEpoch: number | undefined;
}

/**
 * Client metadata for the token engine, by `(client_id, version)`, the secret unsealed once per
 * version on each node. While change notices arrive (`change-notices.ts`) a confirmed entry is
 * used as it is and a notice for the client drops its confirmation; otherwise (no listener, a
 * notice, a reconnect) each use reads the client's version (one primary-key read, once per
 * request) and reloads the row only when the version changed. Every write to a client bumps its
 * version in the same statement, so a change reaches every node on its next use either way.
 */
export class ClientCache {
  readonly #options: ClientCacheOptions;
  readonly #entries: LruMap<string, Entry>;

  constructor(options: ClientCacheOptions) {
    this.#options = options;
    this.#entries = new LruMap(options.maxEntries);
    options.changes.subscribe({ changed: (clientId) => this.#unconfirm(clientId) });
  }

  /** The client's metadata with its unsealed secret, as oidc-provider's adapter returns it; undefined when absent. */
  async findForEngine(clientId: string): Promise<Record<string, unknown> | undefined> {
    const entry = this.#entries.get(clientId);
    if (entry && this.#options.changes.trusts(entry.verifiedEpoch)) {
      this.#entries.set(clientId, entry);
      return entry.properties;
    }
    return requestScoped(`client:${clientId}`, () => this.#find(clientId));
  }

  async #find(clientId: string): Promise<Record<string, unknown> | undefined> {
    const { changes, clients } = this.#options;
    const entry = this.#entries.get(clientId);
    if (entry) {
      // Known here: ask only whether its version moved.
      const { value: version, verifiedEpoch } = await changes.read(clientId, () => clients.versionOf(clientId));
      if (version === undefined) {
        this.#entries.delete(clientId);
        return undefined;
      }
      if (entry.version === version) {
        entry.verifiedEpoch = verifiedEpoch;
        this.#entries.set(clientId, entry);
        return entry.properties;
      }
    }
    const { value: loaded, verifiedEpoch } = await changes.read(clientId, () => clients.loadForEngine(clientId));
    if (!loaded) {
      this.#entries.delete(clientId);
      return undefined;
    }
    this.#entries.set(clientId, { ...loaded, verifiedEpoch });
    return loaded.properties;
  }

  /** A notice for the client: its entry is confirmed again (one version read) on next use. */
  #unconfirm(clientId: string): void {
    const entry = this.#entries.get(clientId);
    if (entry) entry.verifiedEpoch = undefined;
  }
}
