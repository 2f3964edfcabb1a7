import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { LinkingPolicy, UpstreamSession } from '../../providers/types.ts';
import type { MappedProfile } from '../accounts/claim-mapping.ts';
import { Sealer } from './seal.ts';
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
 * The longest sealed completion handed to the browser in its URL (characters); a larger one (a
 * SAML answer with many attributes) is stored instead, so the URL stays well inside what
 * browsers and proxies accept (8 KiB is a common request-line limit).
 */
export const MAX_SEALED_COMPLETION_LENGTH = 3072;

/** A completed transaction sealed for the browser, with the time it stops being accepted. */
interface SealedCompletion {
  transaction: CompletedTransaction;
  expiresAtMs: number;
}

/**
 * Login transactions in the shared database, sealed: any node can finish a login another began,
 * and each transaction is used once (taking it deletes it).
 *
 * A completed login (the validated upstream answer on its way from the callback to the
 * interaction) is handed over in the URL the browser follows next, sealed under a key of its own,
 * when it is small enough; nothing is stored then. It is bound like a stored one: to its
 * interaction (which only the browser holding that interaction's cookie can load), its provider
 * and its purpose, and it expires as a stored one would. What must outlive that next request (an
 * identity waiting for link confirmation, a login waiting for a second factor) the interaction
 * machine keeps in its own sealed state.
 */
export class LoginTransactionStore {
  readonly #table: SealedTransactionTable<LoginTransaction>;
  readonly #completions: Sealer;

  constructor(db: Knex, sealer: Sealer) {
    this.#table = new SealedTransactionTable(db, sealer);
    this.#completions = new Sealer(sealer.deriveKey('login completions v1'));
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

  /**
   * Hands a completed login over: returns the reference the browser brings back, the sealed
   * completion itself when it fits `MAX_SEALED_COMPLETION_LENGTH`, else the id of a stored row.
   */
  async handOver(transaction: CompletedTransaction, ttlSeconds = LOGIN_TRANSACTION_TTL_SECONDS): Promise<string> {
    const sealed = this.#completions.seal(JSON.stringify({ transaction, expiresAtMs: Date.now() + ttlSeconds * 1000 } satisfies SealedCompletion));
    if (sealed.length <= MAX_SEALED_COMPLETION_LENGTH) return sealed;
    const id = LoginTransactionStore.newId();
    await this.save(id, transaction, ttlSeconds);
    return id;
  }

  /** Takes the completed login `reference` names (see `handOver`) for provider `alias`: opened when sealed, taken once when stored. */
  async takeCompleted(reference: string, alias: string): Promise<{ ok: true; transaction: CompletedTransaction } | { ok: false; reason: TakeFailure }> {
    if (!reference.startsWith('v1.')) return this.take(reference, 'completed', alias);
    let opened: SealedCompletion;
    try {
      opened = JSON.parse(this.#completions.open(reference)) as SealedCompletion;
    } catch {
      return { ok: false, reason: 'missing' };
    }
    if (opened.expiresAtMs <= Date.now()) return { ok: false, reason: 'expired' };
    if (opened.transaction.kind !== 'completed') return { ok: false, reason: 'wrong_kind' };
    if (opened.transaction.alias !== alias) return { ok: false, reason: 'wrong_provider' };
    return { ok: true, transaction: opened.transaction };
  }

  /** Deletes expired rows of the table, sign-outs' included (they share it); returns how many. */
  purgeExpired(): Promise<number> {
    return this.#table.purgeExpired();
  }
}
