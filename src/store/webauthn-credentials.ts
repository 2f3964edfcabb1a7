import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { toFactor, type FactorRow, type MfaFactor } from './mfa-factors.ts';

/** A passkey as verification needs it: its factor, and the public part of its credential. */
export interface StoredCredential {
  factor: MfaFactor;
  /** The credential id (base64url). */
  credentialId: string;
  /** The COSE public key. */
  publicKey: Uint8Array<ArrayBuffer>;
  /** The last signature counter the authenticator reported (0 for authenticators that keep none). */
  signCount: number;
  transports: string[];
}

/** A verified new credential to store. */
export interface NewCredential {
  credentialId: string;
  publicKey: Uint8Array;
  signCount: number;
  transports: string[];
  backedUp: boolean;
  deviceType: 'singleDevice' | 'multiDevice';
}

const toCredential = (row: FactorRow): StoredCredential => ({
  factor: toFactor(row),
  credentialId: row.credential_id!,
  publicKey: new Uint8Array(Buffer.from(row.public_key!, 'base64url')),
  signCount: Number(row.sign_count ?? 0),
  transports: row.transports ? (JSON.parse(row.transports) as string[]) : [],
});

/**
 * Passkeys in `mfa_factors` (`kind = 'webauthn'`): added confirmed (the registration ceremony is
 * their proof), found by credential id (unique across accounts, so one authenticator's
 * credential belongs to one account), and their signature counter moved forward by a
 * compare-and-set, so two nodes given one assertion at once accept it once.
 */
export class WebauthnCredentialRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Adds a confirmed passkey factor for the account; undefined when the credential id is already stored (on any account). */
  async add(accountId: string, label: string, credential: NewCredential): Promise<MfaFactor | undefined> {
    const rows = await this.#db('mfa_factors')
      .insert({
        id: crypto.randomUUID(),
        account_id: accountId,
        kind: 'webauthn',
        label,
        sealed_secret: null,
        credential_id: credential.credentialId,
        public_key: Buffer.from(credential.publicKey).toString('base64url'),
        sign_count: credential.signCount,
        transports: JSON.stringify(credential.transports),
        backed_up: credential.backedUp,
        device_type: credential.deviceType,
        confirmed_at: this.#db.fn.now(),
      })
      .onConflict('credential_id')
      .ignore()
      .returning<FactorRow[]>('*');
    return rows[0] ? toFactor(rows[0]) : undefined;
  }

  /** The passkey with this credential id, whichever account it belongs to. */
  async find(credentialId: string): Promise<StoredCredential | undefined> {
    const row = await this.#db('mfa_factors').where({ credential_id: credentialId, kind: 'webauthn' }).whereNotNull('confirmed_at').first<FactorRow | undefined>();
    return row ? toCredential(row) : undefined;
  }

  /** The account's passkeys, oldest first (to list them as allowed credentials). */
  async forAccount(accountId: string): Promise<StoredCredential[]> {
    const rows = await this.#db('mfa_factors').where({ account_id: accountId, kind: 'webauthn' }).whereNotNull('confirmed_at').orderBy('created_at').orderBy('id').select<FactorRow[]>();
    return rows.map(toCredential);
  }

  /**
   * Records a verified use: the counter moves from `previous` to `next` (and the backed-up flag is
   * refreshed) only when it still is `previous`. False when another request used it first.
   */
  async recordUse(factorId: string, previous: number, next: number, backedUp: boolean): Promise<boolean> {
    const updated = await this.#db('mfa_factors')
      .where({ id: factorId, kind: 'webauthn', sign_count: previous })
      .update({ sign_count: next, backed_up: backedUp, last_used_at: this.#db.fn.now() });
    return updated === 1;
  }
}
