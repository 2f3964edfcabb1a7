import type { ChangeWatch } from './change-notices.ts';
import { LruMap } from './lru-map.ts';
import type { ResourceServer, ResourceServerRepository } from './resource-servers.ts';

/** Options of the resource-server cache. */
export interface ResourceServerCacheOptions {
  resourceServers: Pick<ResourceServerRepository, 'get'>;
  /** Change notices of the `resource_servers` table (`ChangeNotices.watch('resource_servers')`). */
  changes: ChangeWatch;
  /** Resource servers kept at most; the least recently used goes first. */
  maxEntries: number;
}

interface Entry {
  server: ResourceServer;
  /** The epoch of change notices in which the entry was read; undefined: read it again. */
  verifiedEpoch: number | undefined;
}

/**
 * Resource servers for the token engine (each JWT access token names one). Resource servers have
 * no version, so without change notices each use reads the row as before; while notices arrive
 * a row read in the current epoch is used as it is until a notice for it drops it. Unknown
 * identifiers are not remembered (anyone can send one).
 */
export class ResourceServerCache {
  readonly #options: ResourceServerCacheOptions;
  readonly #entries: LruMap<string, Entry>;

  constructor(options: ResourceServerCacheOptions) {
    this.#options = options;
    this.#entries = new LruMap(options.maxEntries);
    options.changes.subscribe({ changed: (identifier) => this.#entries.delete(identifier) });
  }

  /** One resource server by identifier, undefined when none is registered. */
  async get(identifier: string): Promise<ResourceServer | undefined> {
    const { changes, resourceServers } = this.#options;
    const entry = this.#entries.get(identifier);
    if (entry && changes.trusts(entry.verifiedEpoch)) {
      this.#entries.set(identifier, entry);
      return entry.server;
    }
    const { value: server, verifiedEpoch } = await changes.read(identifier, () => resourceServers.get(identifier));
    if (server) this.#entries.set(identifier, { server, verifiedEpoch });
    else this.#entries.delete(identifier);
    return server;
  }
}
