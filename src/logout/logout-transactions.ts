import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Sealer } from '../store/seal.ts';

/** How long a browser may take at the upstream to sign out before Realmgate forgets where to send it back. */
export const LOGOUT_TRANSACTION_TTL_SECONDS = 600;

/** A sign-out sent upstream: the provider's data (SAML request ID) and where the browser goes afterwards. */
export interface LogoutTransaction {
  kind: 'logout';
  alias: string;
  /** The application's post_logout_redirect_uri with its state, or Realmgate's signed-out page. */
  continueTo: string;
  data: Record<string, unknown>;
}

interface Row {
  provider_alias: string;
  sealed_payload: string;
  expires_at: Date;
}

/**
 * Upstream sign-outs in progress, sealed in the shared `login_transactions` table (any node can
 * finish one), each taken once.
 */
export class LogoutTransactionStore {
  readonly #db: Knex;
  readonly #sealer: Sealer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** An unguessable id (256 bits, base64url). */
  static newId(): string {
    return crypto.randomBytes(32).toString('base64url');
  }

  /** Stores `transaction` under `id`. */
  async save(id: string, transaction: LogoutTransaction): Promise<void> {
    await this.#db('login_transactions').insert({
      id,
      provider_alias: transaction.alias,
      sealed_payload: this.#sealer.seal(JSON.stringify(transaction)),
      expires_at: new Date(Date.now() + LOGOUT_TRANSACTION_TTL_SECONDS * 1000),
    });
  }

  /** Takes (deletes) the sign-out `id` of provider `alias`; undefined when missing, expired, of another kind or provider. */
  async take(id: string, alias: string): Promise<LogoutTransaction | undefined> {
    if (!/^[\w-]{43}$/.test(id)) return undefined;
    const [row] = await this.#db('login_transactions').where({ id }).delete().returning<Row[]>(['provider_alias', 'sealed_payload', 'expires_at']);
    if (!row || new Date(row.expires_at).getTime() <= Date.now() || row.provider_alias !== alias) return undefined;
    const transaction = JSON.parse(this.#sealer.open(row.sealed_payload)) as Partial<LogoutTransaction>;
    return transaction.kind === 'logout' && transaction.alias === alias ? (transaction as LogoutTransaction) : undefined;
  }
}
