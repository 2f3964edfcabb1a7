import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Sealer } from './seal.ts';

/** What a mailed link is for. */
export type EmailLinkPurpose = 'register' | 'reset_password';

/** A link being created: what it is for, for whom, and what it carries (sealed at rest). */
export interface NewEmailLink {
  purpose: EmailLinkPurpose;
  email: string;
  accountId?: string | null;
  /** The interaction the link was asked for in (the browser bound to it can finish its login). */
  interactionUid: string;
  payload?: Record<string, unknown>;
  ttlSeconds: number;
}

/** A link that was valid when it was taken or looked at. */
export interface EmailLink {
  purpose: EmailLinkPurpose;
  email: string;
  accountId: string | null;
  interactionUid: string;
  payload: Record<string, unknown>;
  expiresAt: Date;
}

interface Row {
  token_hash: string;
  purpose: EmailLinkPurpose;
  email: string;
  account_id: string | null;
  interaction_uid: string;
  sealed_payload: string | null;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

/**
 * Single-use links sent by mail (`email_links`). The token in a link is 32 random bytes; the
 * store keeps only its HMAC under a key derived from the master key, so neither a copy of the
 * database nor a guess makes a working link. A link is taken once (marked used in the same
 * statement that checks it), and only before it expires.
 */
export class EmailLinkRepository {
  readonly #db: Knex;
  readonly #sealer: Sealer;
  readonly #key: Buffer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
    this.#key = sealer.deriveKey('email links v1');
  }

  #hash(token: string): string {
    return crypto.createHmac('sha256', this.#key).update(token).digest('base64url');
  }

  #toLink(row: Row): EmailLink {
    return {
      purpose: row.purpose,
      email: row.email,
      accountId: row.account_id,
      interactionUid: row.interaction_uid,
      payload: row.sealed_payload ? (JSON.parse(this.#sealer.open(row.sealed_payload)) as Record<string, unknown>) : {},
      expiresAt: new Date(row.expires_at),
    };
  }

  /** Stores a new link and returns its token (the only copy: it goes into the mail). */
  async create(link: NewEmailLink): Promise<string> {
    const token = crypto.randomBytes(32).toString('base64url');
    await this.#db('email_links').insert({
      token_hash: this.#hash(token),
      purpose: link.purpose,
      email: link.email,
      account_id: link.accountId ?? null,
      interaction_uid: link.interactionUid,
      sealed_payload: link.payload ? this.#sealer.seal(JSON.stringify(link.payload)) : null,
      expires_at: new Date(Date.now() + link.ttlSeconds * 1000),
    });
    return token;
  }

  /** The link with this token when it is unused and unexpired, without using it (to show its form). */
  async peek(purpose: EmailLinkPurpose, token: string): Promise<EmailLink | undefined> {
    if (!token) return undefined;
    const row = await this.#db('email_links')
      .where({ token_hash: this.#hash(token), purpose })
      .whereNull('used_at')
      .where('expires_at', '>', new Date())
      .first<Row | undefined>();
    return row && this.#toLink(row);
  }

  /** Uses the link with this token: undefined when it is unknown, used or expired (then nothing changes). */
  async take(purpose: EmailLinkPurpose, token: string): Promise<EmailLink | undefined> {
    if (!token) return undefined;
    const [row] = await this.#db('email_links')
      .where({ token_hash: this.#hash(token), purpose })
      .whereNull('used_at')
      .where('expires_at', '>', new Date())
      .update({ used_at: new Date() })
      .returning<Row[]>('*');
    return row && this.#toLink(row);
  }

  /** Deletes the link with this token (its mail could not be sent: it must not count, nor linger). */
  async discard(token: string): Promise<void> {
    await this.#db('email_links').where({ token_hash: this.#hash(token) }).delete();
  }

  /** How many links for this purpose and address were created since `since` (the per-address send limit). */
  async countSince(purpose: EmailLinkPurpose, email: string, since: Date): Promise<number> {
    const [row] = await this.#db('email_links')
      .where({ purpose })
      .whereRaw('lower(email) = lower(?)', [email])
      .where('created_at', '>', since)
      .count<{ n: string | number }[]>({ n: '*' });
    return Number(row?.n ?? 0);
  }

  /** Deletes links past their expiry (used or not). */
  async purgeExpired(): Promise<number> {
    return this.#db('email_links').where('expires_at', '<', new Date()).delete();
  }
}
