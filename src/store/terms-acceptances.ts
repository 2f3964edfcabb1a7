import type { Knex } from 'knex';

/** One terms-of-service document (by URI and version) an account accepted, and when. */
export interface TermsAcceptance {
  termsUri: string;
  termsVersion: string;
  /** The client whose login asked for the acceptance. */
  clientId: string;
  acceptedAt: Date;
}

interface Row {
  account_id: string;
  terms_uri: string;
  terms_version: string;
  client_id: string;
  accepted_at: Date;
}

const toAcceptance = (row: Row): TermsAcceptance => ({
  termsUri: row.terms_uri,
  termsVersion: row.terms_version,
  clientId: row.client_id,
  acceptedAt: new Date(row.accepted_at),
});

/** Stores `terms_acceptances`: which version of which terms each account accepted. */
export class TermsAcceptanceRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** True when the account accepted this version of these terms. */
  async hasAccepted(accountId: string, termsUri: string, termsVersion: string): Promise<boolean> {
    const row = await this.#db('terms_acceptances').where({ account_id: accountId, terms_uri: termsUri, terms_version: termsVersion }).first('account_id');
    return row !== undefined;
  }

  /** Records an acceptance; accepting the same version again keeps the first time. */
  async accept(accountId: string, terms: { termsUri: string; termsVersion: string; clientId: string }): Promise<void> {
    await this.#db('terms_acceptances')
      .insert({ account_id: accountId, terms_uri: terms.termsUri, terms_version: terms.termsVersion, client_id: terms.clientId })
      .onConflict(['account_id', 'terms_uri', 'terms_version'])
      .ignore();
  }

  /** Every acceptance of an account, newest first. */
  async listForAccount(accountId: string): Promise<TermsAcceptance[]> {
    const rows = await this.#db('terms_acceptances').where({ account_id: accountId }).orderBy('accepted_at', 'desc').select<Row[]>();
    return rows.map(toAcceptance);
  }
}
