import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { LinkingPolicy, UpstreamSession } from '../../providers/types.ts';
import type { MappedProfile } from '../accounts/claim-mapping.ts';
import type { Sealer } from './seal.ts';
import { SealedTransactionTable } from './sealed-transactions.ts';

/** How long a browser may take at the upstream IdP before its login transaction expires. */
export const LOGIN_TRANSACTION_TTL_SECONDS = 600;

/** A login sent upstream: what the provider needs back, bound to one interaction. */
export interface UpstreamTransaction {
  kind: 'upstream';
  alias: string;
  /** The interaction the login belongs to (for `link`: the engine session); only it can finish the login. */
  uid: string;
  /** `login` (default) signs in through the interaction; `link` adds the identity to the signed-in account from its account page. */
  purpose?: LoginPurpose | undefined;
  /** Protocol data from `startLogin` (state, nonce, PKCE verifier, request id). */
  data: Record<string, unknown>;
}

/** A validated upstream identity, mapped, as a completed transaction keeps it. */
export interface CompletedIdentity {
  subject: string;
  profile: MappedProfile;
  claims: Record<string, unknown>;
  amr: string[];
  upstreamSession: UpstreamSession;
  /** The provider's linking policy when the answer was validated: what the interaction applies to it. */
  linkingPolicy: LinkingPolicy;
  /** The provider asks for a local second factor after its sign-in (`require_local_mfa`). */
  requireLocalMfa?: boolean | undefined;
}

/** Why a login was sent upstream. */
export type LoginPurpose = 'login' | 'link';

/** A validated upstream answer waiting for its browser to come back to the interaction. */
export interface CompletedTransaction {
  kind: 'completed';
  alias: string;
  uid: string;
  purpose?: LoginPurpose | undefined;
  outcome:
    | { type: 'identity'; identity: CompletedIdentity }
    | { type: 'error'; error: string; description: string };
}

/** Anything stored in `login_transactions`. */
export type LoginTransaction = UpstreamTransaction | CompletedTransaction;

/** Why `take` found nothing usable; only for the log. */
export type TakeFailure = 'missing' | 'expired' | 'wrong_kind' | 'wrong_provider';

/**
 * Login transactions in the shared database, sealed: any node can finish a login another began,
 * and each transaction is used once (taking it deletes it).
 */
export class LoginTransactionStore {
  readonly #table: SealedTransactionTable<LoginTransaction>;

  constructor(db: Knex, sealer: Sealer) {
    this.#table = new SealedTransactionTable(db, sealer);
  }

  /** An unguessable transaction id (256 bits, base64url). */
  static newId(): string {
    return crypto.randomBytes(32).toString('base64url');
  }

  /** True when `value` has the shape of `newId()`: a SAML RelayState that may name a transaction, unlike an IdP's own. */
  static isId(value: string): boolean {
    return /^[\w-]{43}$/.test(value);
  }

  /** Stores a transaction under `id` for `ttlSeconds`. */
  async save(id: string, transaction: LoginTransaction, ttlSeconds = LOGIN_TRANSACTION_TTL_SECONDS): Promise<void> {
    await this.#table.save(id, transaction, ttlSeconds);
  }

  /**
   * Takes a transaction of `kind` for provider `alias` out of the store: it is deleted whether or
   * not it is usable, so it can never be used twice, even by two nodes at once.
   */
  async take<K extends LoginTransaction['kind']>(
    id: string,
    kind: K,
    alias: string,
  ): Promise<{ ok: true; transaction: Extract<LoginTransaction, { kind: K }> } | { ok: false; reason: TakeFailure }> {
    if (!/^[\w-]{16,128}$/.test(id)) return { ok: false, reason: 'missing' };
    const taken = await this.#table.take(id);
    if (!taken.ok) return taken;
    const transaction = taken.value;
    if (transaction.kind !== kind) return { ok: false, reason: 'wrong_kind' };
    if (transaction.alias !== alias || taken.alias !== alias) return { ok: false, reason: 'wrong_provider' };
    return { ok: true, transaction: transaction as Extract<LoginTransaction, { kind: K }> };
  }

  /** Deletes expired rows of the table, sign-outs' included (they share it); returns how many. */
  purgeExpired(): Promise<number> {
    return this.#table.purgeExpired();
  }
}
