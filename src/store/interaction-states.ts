import type { Knex } from 'knex';
import { payloadKey, payloadOfRow, type PayloadRow } from './oidc-adapter.ts';
import { primeInRequest } from './request-scope.ts';
import type { Sealer } from './seal.ts';

interface Row {
  uid: string;
  sealed_state: string;
  expires_at: Date;
}

/**
 * The interaction state machine's state per interaction (`interaction_states`), sealed: what a
 * login has proved so far, a pending upstream identity waiting for link confirmation. Keyed by the
 * interaction uid and read only after the interaction was loaded through the browser's signed
 * interaction cookie, so it is bound to the browser that began it; any node can read it, and it
 * expires with its interaction.
 */
export class InteractionStateRepository<State extends object> {
  readonly #db: Knex;
  readonly #sealer: Sealer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** The state of interaction `uid`, or undefined when it has none (or it expired). */
  async get(uid: string): Promise<State | undefined> {
    const row = await this.#db('interaction_states').where({ uid }).where('expires_at', '>', this.#db.fn.now()).first<Row | undefined>();
    return row ? (JSON.parse(this.#sealer.open(row.sealed_state)) as State) : undefined;
  }

  /**
   * The state of interaction `uid` read together with the engine's `Interaction` of that uid,
   * which is left in this request's memo for the engine's adapter: an interaction page needs
   * both, and they come in one statement. The caller checks the interaction is bound to its
   * browser (the engine's interaction cookie) before it uses the state.
   */
  async getWithEngineInteraction(uid: string): Promise<State | undefined> {
    const db = this.#db;
    const row = await db('oidc_payloads as p')
      .leftJoin('interaction_states as s', (on) => on.on('s.uid', 'p.id').andOn(db.raw('s.expires_at > CURRENT_TIMESTAMP')))
      .where({ 'p.model': 'Interaction', 'p.id': uid })
      .andWhere((q) => q.whereNull('p.expires_at').orWhere('p.expires_at', '>', db.fn.now()))
      .first<(Pick<PayloadRow, 'payload' | 'consumed_at'> & { sealed_state: string | null }) | undefined>('p.payload', 'p.consumed_at', 's.sealed_state');
    primeInRequest(payloadKey('Interaction', uid), row && payloadOfRow(row));
    return row?.sealed_state ? (JSON.parse(this.#sealer.open(row.sealed_state)) as State) : undefined;
  }

  /** Stores (or replaces) the state of interaction `uid` until `expiresAt`. */
  async put(uid: string, state: State, expiresAt: Date): Promise<void> {
    await this.#db('interaction_states')
      .insert({ uid, sealed_state: this.#sealer.seal(JSON.stringify(state)), expires_at: expiresAt })
      .onConflict('uid')
      .merge();
  }

  /**
   * Takes the state of interaction `uid` out of the store: it is deleted as it is read, so what it
   * holds (a pending identity) is used once, even by two nodes at once.
   */
  async take(uid: string): Promise<State | undefined> {
    const [row] = await this.#db('interaction_states').where({ uid }).delete().returning<Row[]>('*');
    if (!row || new Date(row.expires_at).getTime() <= Date.now()) return undefined;
    return JSON.parse(this.#sealer.open(row.sealed_state)) as State;
  }

  /** Deletes the state of interaction `uid` (the login finished or was cancelled). */
  async delete(uid: string): Promise<void> {
    await this.#db('interaction_states').where({ uid }).delete();
  }

  /** Deletes states past their interaction's lifetime. */
  async purgeExpired(): Promise<number> {
    return this.#db('interaction_states').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
