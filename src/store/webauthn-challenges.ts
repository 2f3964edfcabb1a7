import crypto from 'node:crypto';
import type { Knex } from 'knex';

/** What a challenge was handed out for. */
export type ChallengePurpose = 'register' | 'second_factor' | 'passwordless';

/** How long a browser has to answer a challenge. */
export const CHALLENGE_TTL_SECONDS = 5 * 60;

/**
 * WebAuthn challenges handed to browsers (`webauthn_challenges`). Each is bound to what asked for
 * it (an interaction uid, or `account:<session uid>` for the account page) and, for a second
 * factor or a registration, to the account; `take` deletes and returns it in one statement, so a
 * challenge is answered at most once, and only where it was issued.
 */
export class WebauthnChallengeRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** A new random challenge (base64url, 32 bytes) for `purpose`, bound to `boundTo`. */
  async issue(purpose: ChallengePurpose, boundTo: string, accountId: string | null): Promise<string> {
    const challenge = crypto.randomBytes(32).toString('base64url');
    await this.#db('webauthn_challenges').insert({
      challenge,
      purpose,
      bound_to: boundTo,
      account_id: accountId,
      expires_at: new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000),
    });
    return challenge;
  }

  /** Takes the challenge once: true only when it was issued for this purpose and binding (and account) and has not expired. */
  async take(challenge: string, purpose: ChallengePurpose, boundTo: string, accountId: string | null): Promise<boolean> {
    const rows = await this.#db('webauthn_challenges')
      .where({ challenge, purpose, bound_to: boundTo })
      .delete()
      .returning<{ account_id: string | null; expires_at: Date }[]>(['account_id', 'expires_at']);
    const row = rows[0];
    return row !== undefined && row.account_id === accountId && new Date(row.expires_at).getTime() > Date.now();
  }

  /** Deletes challenges past their expiry; answers how many. */
  async purgeExpired(): Promise<number> {
    return this.#db('webauthn_challenges').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
