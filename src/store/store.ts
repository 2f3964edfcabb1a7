/**
 * The store: the repositories one node works with, and `transaction(fn)`, the one unit of work.
 * Inside `fn` every repository of the transaction runs on the same database transaction, which
 * commits when `fn` resolves and rolls back when it throws; workflows never hold a knex handle.
 */
import type { Knex } from 'knex';
import { endAccountSessions, type EndedAccountSessions } from '../accounts/account-sessions.ts';
import type { LogoutOutbox } from '../logout/outbox.ts';
import { AccountRepository } from './accounts.ts';
import { AuditLog } from './audit.ts';
import { EmailLinkRepository } from './email-links.ts';
import { ExternalIdentityRepository } from './external-identities.ts';
import { LoginTransactionStore } from './login-transactions.ts';
import { LogoutTransactionStore } from './logout-transactions.ts';
import { ReplayGuardRepository } from './replay-guard.ts';
import type { Sealer } from './seal.ts';
import { TermsAcceptanceRepository } from './terms-acceptances.ts';

/** The repositories of one unit of work, all on one transaction. */
export interface StoreTransaction {
  accounts: AccountRepository;
  identities: ExternalIdentityRepository;
  audit: AuditLog;
  termsAcceptances: TermsAcceptanceRepository;
  emailLinks: EmailLinkRepository;
  /** Ends every session of an account through the logout fan-out, in this transaction. */
  endAccountSessions(accountId: string): Promise<EndedAccountSessions>;
}

/** What the store is opened with besides the database. */
export interface StoreOptions {
  sealer: Sealer;
  /** The logout outbox, so that ending an account's sessions queues its notices in the same transaction. */
  outbox: LogoutOutbox;
}

/** Repositories on the database, and the unit of work that groups their writes. */
export class Store {
  readonly #db: Knex;
  readonly #options: StoreOptions;
  /** Local accounts. */
  readonly accounts: AccountRepository;
  /** Links between upstream identities and accounts. */
  readonly identities: ExternalIdentityRepository;
  /** The audit log of changes. */
  readonly audit: AuditLog;
  /** Terms-of-service versions each account accepted. */
  readonly termsAcceptances: TermsAcceptanceRepository;
  /** Single-use links sent by mail (email verification, password reset). */
  readonly emailLinks: EmailLinkRepository;
  /** Logins sent upstream, sealed, each taken once. */
  readonly loginTransactions: LoginTransactionStore;
  /** Sign-outs sent upstream, sealed in the same table, each taken once. */
  readonly logoutTransactions: LogoutTransactionStore;
  /** One-time ids (assertion ids, logout token jtis) seen by any node. */
  readonly replayGuard: ReplayGuardRepository;

  constructor(db: Knex, options: StoreOptions) {
    this.#db = db;
    this.#options = options;
    this.accounts = new AccountRepository(db);
    this.identities = new ExternalIdentityRepository(db);
    this.audit = new AuditLog(db);
    this.termsAcceptances = new TermsAcceptanceRepository(db);
    this.emailLinks = new EmailLinkRepository(db, options.sealer);
    this.loginTransactions = new LoginTransactionStore(db, options.sealer);
    this.logoutTransactions = new LogoutTransactionStore(db, options.sealer);
    this.replayGuard = new ReplayGuardRepository(db);
  }

  /** Runs `work` as one unit: its repositories share a transaction, committed when `work` resolves, rolled back when it throws. */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.#db.transaction((trx) =>
      work({
        accounts: new AccountRepository(trx),
        identities: new ExternalIdentityRepository(trx),
        audit: new AuditLog(trx),
        termsAcceptances: new TermsAcceptanceRepository(trx),
        emailLinks: new EmailLinkRepository(trx, this.#options.sealer),
        endAccountSessions: (accountId) => endAccountSessions({ db: this.#db, outbox: this.#options.outbox }, accountId, trx),
      }),
    );
  }
}
