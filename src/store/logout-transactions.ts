import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Sealer } from './seal.ts';
import { SealedTransactionTable } from './sealed-transactions.ts';

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

/**
 * Upstream sign-outs in progress, sealed in the shared `login_transactions` table beside the
 * logins (any node can finish one), each taken once.
 */
export class LogoutTransactionStore {
  readonly #table: SealedTransactionTable<LogoutTransaction>;

  constructor(db: Knex, sealer: Sealer) {
    this.#table = new SealedTransactionTable(db, sealer);
  }

  /** An unguessable id (256 bits, base64url). */
  static newId(): string {
    return crypto.randomBytes(32).toString('base64url');
  }

  /** Stores `transaction` under `id`. */
  async save(id: string, transaction: LogoutTransaction): Promise<void> {
    await this.#table.save(id, transaction, LOGOUT_TRANSACTION_TTL_SECONDS);
  }

  /** Takes (deletes) the sign-out `id` of provider `alias`; undefined when missing, expired, of another kind or provider. */
  async take(id: string, alias: string): Promise<LogoutTransaction | undefined> {
    if (!/^[\w-]{43}$/.test(id)) return undefined;
    const taken = await this.#table.take(id);
    if (!taken.ok || taken.alias !== alias) return undefined;
    const transaction = taken.value as Partial<LogoutTransaction>;
    return transaction.kind === 'logout' && transaction.alias === alias ? (transaction as LogoutTransaction) : undefined;
  }
}
