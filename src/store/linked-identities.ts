import type { Knex } from 'knex';

/** An upstream identity linked to a local account, as stored in `external_identities`. */
export interface LinkedIdentity {
  providerAlias: string;
  subject: string;
  accountId: string;
  email: string | null;
  createdAt: Date;
  lastLoginAt: Date | null;
}

interface LinkedIdentityRow {
  provider_alias: string;
  subject: string;
  account_id: string;
  email: string | null;
  created_at: Date;
  last_login_at: Date | null;
}

/** Reads the upstream identities linked to accounts (the admin API's view of `external_identities`). */
export class LinkedIdentityReader {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Every identity linked to an account, by provider alias then subject. */
  async ofAccount(accountId: string): Promise<LinkedIdentity[]> {
    const rows = await this.#db('external_identities')
      .where({ account_id: accountId })
      .orderBy(['provider_alias', 'subject'])
      .select<LinkedIdentityRow[]>('provider_alias', 'subject', 'account_id', 'email', 'created_at', 'last_login_at');
    return rows.map((row) => ({
      providerAlias: row.provider_alias,
      subject: row.subject,
      accountId: row.account_id,
      email: row.email,
      createdAt: row.created_at,
      lastLoginAt: row.last_login_at,
    }));
  }
}
