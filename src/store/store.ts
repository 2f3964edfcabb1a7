/**
 * The store: the repositories one node works with, and `transaction(fn)`, the one unit of work.
 * Inside `fn` every repository of the transaction runs on the same database transaction, which
 * commits when `fn` resolves and rolls back when it throws; workflows never hold a knex handle.
 */
import type { Knex } from 'knex';
import { AccountRepository } from './accounts.ts';
import { AuditLog } from './audit.ts';
import { ExternalIdentityRepository } from './external-identities.ts';

/** The repositories of one unit of work, all on one transaction. */
export interface StoreTransaction {
  accounts: AccountRepository;
  identities: ExternalIdentityRepository;
  audit: AuditLog;
}

/** Repositories on the database, and the unit of work that groups their writes. */
export class Store {
  readonly #db: Knex;
  /** Local accounts. */
  readonly accounts: AccountRepository;
  /** Links between upstream identities and accounts. */
  readonly identities: ExternalIdentityRepository;
  /** The audit log of changes. */
  readonly audit: AuditLog;

  constructor(db: Knex) {
    this.#db = db;
    this.accounts = new AccountRepository(db);
    this.identities = new ExternalIdentityRepository(db);
    this.audit = new AuditLog(db);
  }

  /** Runs `work` as one unit: its repositories share a transaction, committed when `work` resolves, rolled back when it throws. */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.#db.transaction((trx) =>
      work({ accounts: new AccountRepository(trx), identities: new ExternalIdentityRepository(trx), audit: new AuditLog(trx) }),
    );
  }
}
