/**
 * The sealed take-once table `login_transactions`, shared by logins and sign-outs sent upstream:
 * any node can finish what another began, and taking a row deletes it, so it is used once even
 * when two nodes take it at the same moment.
 */
import type { Knex } from 'knex';
import type { Sealer } from './seal.ts';

interface Row {
  provider_alias: string;
  sealed_payload: string;
  expires_at: Date;
}

/** What `take` found: the unsealed value and the provider it was stored for, or why there is none. */
export type Taken<T> = { ok: true; value: T; alias: string } | { ok: false; reason: 'missing' | 'expired' };

/** Values of type `T` sealed in `login_transactions`, each stored for one provider and taken once. */
export class SealedTransactionTable<T extends { alias: string }> {
  readonly #db: Knex;
  readonly #sealer: Sealer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** Stores `value` under `id` for `ttlSeconds`, for the provider `value.alias`. */
  async save(id: string, value: T, ttlSeconds: number): Promise<void> {
    await this.#db('login_transactions').insert({
      id,
      provider_alias: value.alias,
      sealed_payload: this.#sealer.seal(JSON.stringify(value)),
      expires_at: new Date(Date.now() + ttlSeconds * 1000),
    });
  }

  /** Deletes the row `id` and returns what it held: usable or not, it is gone. */
  async take(id: string): Promise<Taken<T>> {
    const [row] = await this.#db('login_transactions').where({ id }).delete().returning<Row[]>(['provider_alias', 'sealed_payload', 'expires_at']);
    if (!row) return { ok: false, reason: 'missing' };
    if (new Date(row.expires_at).getTime() <= Date.now()) return { ok: false, reason: 'expired' };
    return { ok: true, value: JSON.parse(this.#sealer.open(row.sealed_payload)) as T, alias: row.provider_alias };
  }

  /** Deletes rows past their expiry; returns how many. */
  async purgeExpired(): Promise<number> {
    return this.#db('login_transactions').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
