import type { Knex } from 'knex';
import type { ChangedHere } from './change-notices.ts';
import type { Sealer } from './seal.ts';

/** OpenID Connect client metadata as stored (snake_case), without the secret. */
export type ClientMetadata = { client_id: string } & Record<string, unknown>;

/** A stored client: its metadata, whether a secret is set, and its version. */
export interface StoredClient {
  metadata: ClientMetadata;
  secretSet: boolean;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

interface ClientRow {
  client_id: string;
  metadata: ClientMetadata;
  sealed_secret: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const toStored = (row: ClientRow): StoredClient => ({
  metadata: row.metadata,
  secretSet: row.sealed_secret !== null,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** Stores OAuth clients; secrets are sealed and only ever handed to the token engine. */
export class ClientRepository {
  readonly #db: Knex;
  readonly #sealer: Sealer;
  readonly #changed: ChangedHere;

  /** `changed` hears each client this repository wrote (after the commit, in a unit of work). */
  constructor(db: Knex, sealer: Sealer, changed: ChangedHere = () => {}) {
    this.#db = db;
    this.#sealer = sealer;
    this.#changed = changed;
  }

  /** Metadata with the unsealed secret, in the shape oidc-provider's Client model expects. */
  async findForEngine(clientId: string): Promise<Record<string, unknown> | undefined> {
    return (await this.loadForEngine(clientId))?.properties;
  }

  /** Metadata with the unsealed secret and the version it belongs to (what the client cache keeps). */
  async loadForEngine(clientId: string): Promise<{ properties: Record<string, unknown>; version: number } | undefined> {
    const row = await this.#db('clients').where({ client_id: clientId }).first<ClientRow | undefined>();
    if (!row) return undefined;
    const secret = row.sealed_secret ? { client_secret: this.#sealer.open(row.sealed_secret) } : {};
    return { properties: { ...row.metadata, ...secret }, version: row.version };
  }

  /** The current version of a client, or undefined when it does not exist (one primary-key read, for cache checks). */
  async versionOf(clientId: string): Promise<number | undefined> {
    const row = await this.#db('clients').where({ client_id: clientId }).first<{ version: number } | undefined>('version');
    return row?.version;
  }

  /** One client, or undefined. */
  async get(clientId: string): Promise<StoredClient | undefined> {
    const row = await this.#db('clients').where({ client_id: clientId }).first<ClientRow | undefined>();
    return row && toStored(row);
  }

  /** One client with its row locked until the transaction this repository runs on (`tx.clients`) ends, so a conditional write sees no concurrent change. */
  async lock(clientId: string): Promise<StoredClient | undefined> {
    const row = await this.#db('clients').where({ client_id: clientId }).forUpdate().first<ClientRow | undefined>();
    return row && toStored(row);
  }

  /** The display name (`client_name`, else the client_id) of each of `clientIds` that exists, in one read. */
  async displayNames(clientIds: readonly string[]): Promise<Map<string, string>> {
    if (!clientIds.length) return new Map();
    const rows = await this.#db('clients').whereIn('client_id', [...clientIds]).select<{ client_id: string; metadata: ClientMetadata }[]>('client_id', 'metadata');
    return new Map(rows.map((r) => [r.client_id, typeof r.metadata.client_name === 'string' && r.metadata.client_name ? r.metadata.client_name : r.client_id]));
  }

  /** The client_ids among `clientIds` that registered a back-channel logout URI, sorted. */
  async withBackchannelLogout(clientIds: readonly string[]): Promise<string[]> {
    if (!clientIds.length) return [];
    const rows = await this.#db('clients')
      .whereIn('client_id', clientIds)
      .whereRaw("coalesce(metadata->>'backchannel_logout_uri', '') <> ''")
      .select<{ client_id: string }[]>('client_id');
    return rows.map((r) => r.client_id).sort();
  }

  /** A page of clients ordered by id, after `afterId` when given. */
  async list(options: { limit: number; afterId?: string }): Promise<StoredClient[]> {
    const q = this.#db('clients').orderBy('client_id').limit(options.limit);
    if (options.afterId) q.where('client_id', '>', options.afterId);
    return (await q.select<ClientRow[]>()).map(toStored);
  }

  /**
   * Creates the client, or replaces it when it exists (version bumped). `secret` undefined keeps
   * the stored secret, null removes it.
   */
  async save(metadata: ClientMetadata, secret: string | null | undefined): Promise<StoredClient> {
    const { client_secret: _ignored, ...clean } = metadata;
    const sealed = secret === undefined ? undefined : secret === null ? null : this.#sealer.seal(secret);
    const insert = { client_id: metadata.client_id, metadata: JSON.stringify(clean), sealed_secret: sealed ?? null };
    const merge: Record<string, unknown> = {
      metadata: JSON.stringify(clean),
      version: this.#db.raw('clients.version + 1'),
      updated_at: this.#db.fn.now(),
    };
    if (sealed !== undefined) merge.sealed_secret = sealed;
    const [row] = await this.#db('clients').insert(insert).onConflict('client_id').merge(merge).returning<ClientRow[]>('*');
    this.#changed('clients', metadata.client_id);
    return toStored(row!);
  }

  /** Deletes a client; true when it existed. */
  async delete(clientId: string): Promise<boolean> {
    const deleted = (await this.#db('clients').where({ client_id: clientId }).delete()) > 0;
    if (deleted) this.#changed('clients', clientId);
    return deleted;
  }
}
