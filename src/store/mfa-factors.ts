import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Sealer } from './seal.ts';

/** Kinds of second factor Realmgate stores: an authenticator app, or a passkey / security key. */
export type FactorKind = 'totp' | 'webauthn';

/** What is shown of a passkey besides its label: never its key material. */
export interface WebauthnFactorDetails {
  /** How the browser can reach the authenticator (`internal`, `usb`, `hybrid`…), as it reported. */
  transports: string[];
  /** True when the credential is backed up (synced across devices). */
  backedUp: boolean;
  /** `singleDevice` (device-bound) or `multiDevice` (can be synced). */
  deviceType: 'singleDevice' | 'multiDevice';
}

/** One second factor of an account; never its secret. */
export interface MfaFactor {
  id: string;
  accountId: string;
  kind: FactorKind;
  label: string;
  createdAt: Date;
  /** Null while enrolment waits for its first code. */
  confirmedAt: Date | null;
  lastUsedAt: Date | null;
  /** For a passkey (`kind` `webauthn`): how it is stored, never its key. */
  webauthn?: WebauthnFactorDetails;
}

/** A row of `mfa_factors` (the passkey columns are null for a TOTP factor). */
export interface FactorRow {
  id: string;
  account_id: string;
  kind: FactorKind;
  label: string;
  sealed_secret: string | null;
  last_time_step: string | number | null;
  created_at: Date;
  confirmed_at: Date | null;
  last_used_at: Date | null;
  credential_id?: string | null;
  public_key?: string | null;
  sign_count?: string | number | null;
  transports?: string | null;
  backed_up?: boolean | null;
  device_type?: string | null;
}

/** A stored row as the factor it is. */
export const toFactor = (row: FactorRow): MfaFactor => ({
  id: row.id,
  accountId: row.account_id,
  kind: row.kind,
  label: row.label,
  createdAt: new Date(row.created_at),
  confirmedAt: row.confirmed_at ? new Date(row.confirmed_at) : null,
  lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
  ...(row.kind === 'webauthn'
    ? {
        webauthn: {
          transports: row.transports ? (JSON.parse(row.transports) as string[]) : [],
          backedUp: row.backed_up === true,
          deviceType: row.device_type === 'multiDevice' ? 'multiDevice' : 'singleDevice',
        },
      }
    : {}),
});

/**
 * Stores `mfa_factors` (the TOTP secret sealed, the last accepted time step; passkeys' own columns
 * are kept by `WebauthnCredentialRepository`) and
 * `mfa_recovery_codes` (keyed hashes only). Accepting a code is a compare-and-set on the time
 * step, so two nodes given the same code at once accept it once. Also keeps
 * `accounts.mfa_required_at` (the account page's rule for removing the last factor).
 */
export class MfaFactorRepository {
  readonly #db: Knex;
  readonly #sealer: Sealer;
  readonly #codeKey: Buffer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
    this.#codeKey = sealer.deriveKey('mfa recovery codes');
  }

  /** The account's factors, confirmed ones only unless `withPending`, oldest first. */
  async list(accountId: string, options: { withPending?: boolean; kind?: FactorKind } = {}): Promise<MfaFactor[]> {
    const query = this.#db('mfa_factors').where({ account_id: accountId }).orderBy('created_at').orderBy('id');
    if (options.kind) query.where({ kind: options.kind });
    if (!options.withPending) query.whereNotNull('confirmed_at');
    return (await query.select<FactorRow[]>()).map(toFactor);
  }

  /** True when the account has a confirmed factor. */
  async hasFactor(accountId: string): Promise<boolean> {
    return (await this.#db('mfa_factors').where({ account_id: accountId }).whereNotNull('confirmed_at').first('id')) !== undefined;
  }

  /** The kinds of the account's confirmed factors (what the second-factor step offers). */
  async kinds(accountId: string): Promise<Set<FactorKind>> {
    const rows = await this.#db('mfa_factors').where({ account_id: accountId }).whereNotNull('confirmed_at').distinct<{ kind: FactorKind }[]>('kind');
    return new Set(rows.map((r) => r.kind));
  }

  /** One TOTP factor of the account with its opened secret and last time step, or undefined. */
  async getWithSecret(accountId: string, factorId: string): Promise<{ factor: MfaFactor; secret: string; lastTimeStep: number | null } | undefined> {
    const row = await this.#db('mfa_factors').where({ account_id: accountId, id: factorId, kind: 'totp' }).first<FactorRow | undefined>();
    if (!row || row.sealed_secret === null) return undefined;
    return { factor: toFactor(row), secret: this.#sealer.open(row.sealed_secret), lastTimeStep: row.last_time_step === null ? null : Number(row.last_time_step) };
  }

  /** Starts an enrolment: a pending TOTP factor with this secret; earlier pending ones of the account are dropped. */
  async addPending(accountId: string, secret: string, label: string): Promise<MfaFactor> {
    return this.#db.transaction(async (trx) => {
      await trx('mfa_factors').where({ account_id: accountId }).whereNull('confirmed_at').delete();
      const [row] = await trx('mfa_factors')
        .insert({ id: crypto.randomUUID(), account_id: accountId, kind: 'totp', label, sealed_secret: this.#sealer.seal(secret) })
        .returning<FactorRow[]>('*');
      return toFactor(row!);
    });
  }

  /**
   * Records that `timeStep` of the factor was accepted (confirming a pending factor): only when no
   * later or equal step was accepted before. False when another request used it first.
   */
  async useTimeStep(factorId: string, timeStep: number): Promise<boolean> {
    const updated = await this.#db('mfa_factors')
      .where({ id: factorId })
      .where((q) => q.whereNull('last_time_step').orWhere('last_time_step', '<', timeStep))
      .update({ last_time_step: timeStep, last_used_at: this.#db.fn.now(), confirmed_at: this.#db.raw('coalesce(confirmed_at, now())') });
    return updated === 1;
  }

  /** Names one confirmed factor of the account anew; false when it has no such factor. */
  async rename(accountId: string, factorId: string, label: string): Promise<boolean> {
    return (await this.#db('mfa_factors').where({ account_id: accountId, id: factorId }).whereNotNull('confirmed_at').update({ label })) === 1;
  }

  /** Deletes one factor of the account; false when it has no such factor. */
  async remove(accountId: string, factorId: string): Promise<boolean> {
    return (await this.#db('mfa_factors').where({ account_id: accountId, id: factorId }).delete()) === 1;
  }

  /** Deletes every factor and recovery code of the account; answers how many factors went. */
  async removeAll(accountId: string): Promise<number> {
    await this.#db('mfa_recovery_codes').where({ account_id: accountId }).delete();
    await this.#db('accounts').where({ id: accountId }).update({ mfa_required_at: null });
    return this.#db('mfa_factors').where({ account_id: accountId }).delete();
  }

  /** Deletes the account's recovery codes (its last factor went); its factors stay as they are. */
  async removeRecoveryCodes(accountId: string): Promise<void> {
    await this.#db('mfa_recovery_codes').where({ account_id: accountId }).delete();
  }

  /** Records that the account signed in to a client requiring a second factor (first time kept). */
  async markRequired(accountId: string): Promise<void> {
    await this.#db('accounts').where({ id: accountId }).whereNull('mfa_required_at').update({ mfa_required_at: this.#db.fn.now() });
  }

  /** True when the account ever signed in to a client requiring a second factor (and no administrator reset its factors since). */
  async isRequired(accountId: string): Promise<boolean> {
    return (await this.#db('accounts').where({ id: accountId }).whereNotNull('mfa_required_at').first('id')) !== undefined;
  }

  #hash(code: string): string {
    return crypto.createHmac('sha256', this.#codeKey).update(code).digest('base64url');
  }

  /** Replaces the account's recovery codes with `codes` (stored as keyed hashes). */
  async replaceRecoveryCodes(accountId: string, codes: readonly string[]): Promise<void> {
    await this.#db('mfa_recovery_codes').where({ account_id: accountId }).delete();
    await this.#db('mfa_recovery_codes').insert(codes.map((code) => ({ account_id: accountId, code_hash: this.#hash(code) })));
  }

  /** Uses one recovery code: true once, when it is one of the account's unused codes. */
  async useRecoveryCode(accountId: string, code: string): Promise<boolean> {
    const updated = await this.#db('mfa_recovery_codes')
      .where({ account_id: accountId, code_hash: this.#hash(code) })
      .whereNull('used_at')
      .update({ used_at: this.#db.fn.now() });
    return updated === 1;
  }

  /** How many unused recovery codes the account has left. */
  async recoveryCodesLeft(accountId: string): Promise<number> {
    const row = await this.#db('mfa_recovery_codes').where({ account_id: accountId }).whereNull('used_at').count<{ count: string | number }[]>('* as count').first();
    return Number(row?.count ?? 0);
  }
}
