import type { ClientRepository } from './clients.ts';
import { requestScoped } from './request-scope.ts';

/** Options of the client cache. */
export interface ClientCacheOptions {
  clients: Pick<ClientRepository, 'versionOf' | 'loadForEngine'>;
  /** Clients kept at most; the least recently used goes first. */
  maxEntries: number;
}

interface Entry {
  version: number;
  properties: Record<string, unknown>;
}

/**
 * Client metadata for the token engine, by `(client_id, version)`: each use reads the client's
 * version (one primary-key read, once per request) and loads and unseals the row only when the
 * version changed, so the secret is unsealed once per version on each node. Every write to a
 * client bumps its version in the same statement, so a change reaches every node on its next use.
 */
export class ClientCache {
  readonly #options: ClientCacheOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: ClientCacheOptions) {
    this.#options = options;
  }

  /** The client's metadata with its unsealed secret, as oidc-provider's adapter returns it; undefined when absent. */
  async findForEngine(clientId: string): Promise<Record<string, unknown> | undefined> {
    return requestScoped(`client:${clientId}`, () => this.#find(clientId));
  }

  async #find(clientId: string): Promise<Record<string, unknown> | undefined> {
    const entry = this.#entries.get(clientId);
    if (entry) {
      // Known here: ask only whether its version moved.
      const version = await this.#options.clients.versionOf(clientId);
      if (version === undefined) {
        this.#entries.delete(clientId);
        return undefined;
      }
      if (entry.version === version) {
        this.#set(clientId, entry);
        return entry.properties;
      }
    }
    const loaded = await this.#options.clients.loadForEngine(clientId);
    if (!loaded) {
      this.#entries.delete(clientId);
      return undefined;
    }
    this.#set(clientId, loaded);
    return loaded.properties;
  }

  /** Stores an entry as the most recently used and drops the least recently used beyond the bound. */
  #set(clientId: string, entry: Entry): void {
    this.#entries.delete(clientId);
    this.#entries.set(clientId, entry);
    while (this.#entries.size > this.#options.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
