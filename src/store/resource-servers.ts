import type { Knex } from 'knex';

/** An API that receives JWT access tokens: its identifier (the `aud`), the scopes it accepts, token lifetime. */
export interface ResourceServer {
  identifier: string;
  scopes: string[];
  accessTokenTtlSeconds: number;
}

interface ResourceServerRow {
  identifier: string;
  scopes: string[];
  access_token_ttl_seconds: number;
}

const toResourceServer = (row: ResourceServerRow): ResourceServer => ({
  identifier: row.identifier,
  scopes: row.scopes,
  accessTokenTtlSeconds: row.access_token_ttl_seconds,
});

/** Stores resource servers (RFC 8707 resource indicators). */
export class ResourceServerRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** One resource server by identifier. */
  async get(identifier: string): Promise<ResourceServer | undefined> {
    const row = await this.#db('resource_servers').where({ identifier }).first<ResourceServerRow | undefined>();
    return row && toResourceServer(row);
  }

  /** Every resource server, ordered by identifier. */
  async list(): Promise<ResourceServer[]> {
    return (await this.#db('resource_servers').orderBy('identifier').select<ResourceServerRow[]>()).map(toResourceServer);
  }

  /** Creates or replaces a resource server. */
  async save(server: ResourceServer): Promise<void> {
    await this.#db('resource_servers')
      .insert({
        identifier: server.identifier,
        scopes: JSON.stringify(server.scopes),
        access_token_ttl_seconds: server.accessTokenTtlSeconds,
      })
      .onConflict('identifier')
      .merge();
  }

  /** Deletes a resource server; true when it existed. */
  async delete(identifier: string): Promise<boolean> {
    return (await this.#db('resource_servers').where({ identifier }).delete()) > 0;
  }
}
