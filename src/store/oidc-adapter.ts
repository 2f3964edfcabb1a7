import type { Knex } from 'knex';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ClientRepository } from './clients.ts';
import { forgetAllInRequest, forgetInRequest, requestScoped } from './request-scope.ts';

interface PayloadRow {
  payload: AdapterPayload;
  consumed_at: Date | null;
}

/** A constructor oidc-provider calls once per model name. */
export type AdapterFactory = new (model: string) => Adapter;

/**
 * Builds oidc-provider's adapter on knex: every model in `oidc_payloads`, except `Client`,
 * which reads the `clients` table so client secrets stay sealed at rest. Within one request a
 * payload found by id is read once (the engine looks an interaction up twice to finish it); any
 * write to it in that request forgets the memo.
 */
export function knexAdapter(db: Knex, clients: Pick<ClientRepository, 'findForEngine'>): AdapterFactory {
  return class KnexAdapter implements Adapter {
    readonly #model: string;

    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.#model === 'Client') throw new Error('clients are managed through the admin API and CLI');
      forgetInRequest(this.#key(id));
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await db('oidc_payloads')
        .insert({
          model: this.#model,
          id,
          payload: JSON.stringify(payload),
          grant_id: payload.grantId ?? null,
          user_code: payload.userCode ?? null,
          uid: payload.uid ?? null,
          expires_at: expiresAt,
        })
        .onConflict(['model', 'id'])
        .merge();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#model === 'Client') return clients.findForEngine(id);
      const found = await requestScoped(this.#key(id), () => this.#findWhere({ id }));
      // Each caller gets its own copy: the engine builds mutable models from it.
      return found && structuredClone(found);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#findWhere({ user_code: userCode });
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#findWhere({ uid });
    }

    async consume(id: string): Promise<void> {
      forgetInRequest(this.#key(id));
      await db('oidc_payloads').where({ model: this.#model, id }).update({ consumed_at: db.fn.now() });
    }

    async destroy(id: string): Promise<void> {
      forgetInRequest(this.#key(id));
      await db('oidc_payloads').where({ model: this.#model, id }).delete();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      forgetAllInRequest('payload:');
      await db('oidc_payloads').where({ grant_id: grantId }).delete();
    }

    #key(id: string): string {
      return `payload:${this.#model}:${id}`;
    }

    async #findWhere(where: Record<string, string>): Promise<AdapterPayload | undefined> {
      const row = await db('oidc_payloads')
        .select('payload', 'consumed_at')
        .where({ model: this.#model, ...where })
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
        .first<PayloadRow | undefined>();
      if (!row) return undefined;
      return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
    }
  };
}

/**
 * Deletes expired token-engine rows; returns how many went. Sessions are left to the session
 * expiry job, which ends them with their logout notices.
 */
export async function purgeExpiredPayloads(db: Knex): Promise<number> {
  return db('oidc_payloads').where('expires_at', '<', db.fn.now()).whereNot('model', 'Session').delete();
}
