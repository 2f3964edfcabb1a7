import type { Knex } from 'knex';

/** An upstream identity `(provider alias, subject)` and the local account it signs in. */
export interface ExternalIdentity {
  providerAlias: string;
  subject: string;
  accountId: string;
  email: string | null;
  claims: Record<string, unknown>;
}

/** A link with its history, as the admin API shows an account's identities. */
export interface LinkedIdentity extends ExternalIdentity {
  createdAt: Date;
  lastLoginAt: Date | null;
}

interface ExternalIdentityRow {
  provider_alias: string;
  subject: string;
  account_id: string;
  email: string | null;
  claims: Record<string, unknown>;
  created_at: Date;
  last_login_at: Date | null;
}

const toIdentity = (row: ExternalIdentityRow): ExternalIdentity => ({
  providerAlias: row.provider_alias,
  subject: row.subject,
  accountId: row.account_id,
  email: row.email,
  claims: row.claims,
});

/** Stores links between upstream identities and local accounts (`external_identities`). */
export class ExternalIdentityRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Every upstream identity linked to an account, by provider alias then subject. */
  async listForAccount(accountId: string): Promise<LinkedIdentity[]> {
    const rows = await this.#db('external_identities').where({ account_id: accountId }).orderBy(['provider_alias', 'subject']).select<ExternalIdentityRow[]>();
    return rows.map((row) => ({ ...toIdentity(row), createdAt: row.created_at, lastLoginAt: row.last_login_at }));
  }

  /** The link for an upstream subject, if any. */
  async find(providerAlias: string, subject: string): Promise<ExternalIdentity | undefined> {
    const row = await this.#db('external_identities').where({ provider_alias: providerAlias, subject }).first<ExternalIdentityRow | undefined>();
    return row && toIdentity(row);
  }

  /** The aliases and subjects linked to an account, locked for update until the transaction this repository runs on ends (to count sign-in methods before an unlink). */
  async listForAccountForUpdate(accountId: string): Promise<ExternalIdentity[]> {
    const rows = await this.#db('external_identities').where({ account_id: accountId }).orderBy(['provider_alias', 'subject']).forUpdate().select<ExternalIdentityRow[]>();
    return rows.map(toIdentity);
  }

  /** Removes a link; true when there was one for that account. */
  async unlink(accountId: string, providerAlias: string, subject: string): Promise<boolean> {
    return (await this.#db('external_identities').where({ account_id: accountId, provider_alias: providerAlias, subject }).delete()) > 0;
  }

  /** The link for an upstream subject, locked for update until the transaction this repository runs on ends. */
  async findForUpdate(providerAlias: string, subject: string): Promise<ExternalIdentity | undefined> {
    const row = await this.#db('external_identities')
      .where({ provider_alias: providerAlias, subject })
      .forUpdate()
      .first<ExternalIdentityRow | undefined>();
    return row && toIdentity(row);
  }

  /** Links an upstream subject to an account; a concurrent link of the same subject fails with 23505. */
  async link(identity: ExternalIdentity): Promise<void> {
    await this.#db('external_identities').insert({
      provider_alias: identity.providerAlias,
      subject: identity.subject,
      account_id: identity.accountId,
      email: identity.email,
      claims: JSON.stringify(identity.claims),
      last_login_at: this.#db.fn.now(),
    });
  }

  /** Records a sign-in through a link with the claims the upstream sent this time; false when the link (to `accountId`, if given) is gone. */
  async recordLogin(
    providerAlias: string,
    subject: string,
    update: { email: string | null; claims: Record<string, unknown> },
    accountId?: string,
  ): Promise<boolean> {
    const q = this.#db('external_identities').where({ provider_alias: providerAlias, subject });
    if (accountId) q.andWhere({ account_id: accountId });
    return (await q.update({ email: update.email, claims: JSON.stringify(update.claims), last_login_at: this.#db.fn.now() })) > 0;
  }
}
