/**
 * The store: the repositories one node works with, and `transaction(fn)`, the one unit of work.
 * Inside `fn` every repository of the transaction runs on the same database transaction, which
 * commits when `fn` resolves and rolls back when it throws; workflows never hold a knex handle.
 */
import type { ChangedHere } from './change-notices.ts';
import type { Knex } from 'knex';
import { endAccountSessions, type EndedAccountSessions } from '../accounts/account-sessions.ts';
import { AccountRepository } from './accounts.ts';
import { AuditLog } from './audit.ts';
import { ClientRepository } from './clients.ts';
import { EmailLinkRepository } from './email-links.ts';
import { EngineSessionRepository } from './engine-sessions.ts';
import { ExternalIdentityRepository } from './external-identities.ts';
import { LoginSessionRepository } from './login-sessions.ts';
import { LoginTransactionStore } from './login-transactions.ts';
import { LogoutDeliveryRepository } from './logout-deliveries.ts';
import { LogoutTransactionStore } from './logout-transactions.ts';
import { migrationsCurrent } from './migrate.ts';
import { MfaFactorRepository } from './mfa-factors.ts';
import { knexAdapter, type AdapterFactory } from './oidc-adapter.ts';
import { holdPayloadWrites } from './payload-batch.ts';
import { ProviderRepository } from './providers.ts';
import { RateLimitCounters } from './rate-limit-counters.ts';
import { ReplayGuardRepository } from './replay-guard.ts';
import type { Sealer } from './seal.ts';
import { TermsAcceptanceRepository } from './terms-acceptances.ts';
import { WebauthnChallengeRepository } from './webauthn-challenges.ts';
import { WebauthnCredentialRepository } from './webauthn-credentials.ts';

/** The repositories that take part in a unit of work; the store has each, and so does each transaction. */
export interface Repositories {
  /** Local accounts. */
  accounts: AccountRepository;
  /** Links between upstream identities and accounts. */
  identities: ExternalIdentityRepository;
  /** The audit log of changes. */
  audit: AuditLog;
  /** Terms-of-service versions each account accepted. */
  termsAcceptances: TermsAcceptanceRepository;
  /** Single-use links sent by mail (email verification, password reset). */
  emailLinks: EmailLinkRepository;
  /** OAuth clients (secrets sealed). */
  clients: ClientRepository;
  /** Upstream identity providers (secrets sealed, versioned). */
  providers: ProviderRepository;
  /** Second factors (TOTP secrets sealed) and recovery codes (hashed). */
  mfaFactors: MfaFactorRepository;
  /** Passkeys (WebAuthn credentials: public keys, counters), rows of the second factors. */
  webauthnCredentials: WebauthnCredentialRepository;
  /** WebAuthn challenges, bound to an interaction or an account page session, each taken once. */
  webauthnChallenges: WebauthnChallengeRepository;
  /** How each engine session signed in, and the upstream session it came from. */
  loginSessions: LoginSessionRepository;
  /** The engine's sessions and grants, as logout ends them. */
  engineSessions: EngineSessionRepository;
  /** The logout outbox: back-channel logout deliveries to applications. */
  logoutDeliveries: LogoutDeliveryRepository;
}

/** The repositories of one unit of work, all on one transaction. */
export interface StoreTransaction extends Repositories {
  /** Ends every session of an account through the logout fan-out, in this transaction. */
  endAccountSessions(accountId: string): Promise<EndedAccountSessions>;
}

/** What the store is opened with besides the database. */
export interface StoreOptions {
  sealer: Sealer;
  /** How long a logout delivery is retried before it is dead-lettered (`failed`). */
  logoutRetryPeriodSeconds: number;
  /** Told of each client and provider this node changed, once committed (the node's change notices). */
  changes?: { changedHere: ChangedHere };
}

/** Repositories on the database, and the unit of work that groups their writes. */
export class Store implements Repositories {
  readonly #db: Knex;
  readonly #options: StoreOptions;
  /** Listeners of queued logout notices, shared by the outbox of the store and of every transaction. */
  readonly #deliveryListeners: (() => void)[] = [];
  readonly accounts: AccountRepository;
  readonly identities: ExternalIdentityRepository;
  readonly audit: AuditLog;
  readonly termsAcceptances: TermsAcceptanceRepository;
  readonly emailLinks: EmailLinkRepository;
  readonly clients: ClientRepository;
  readonly providers: ProviderRepository;
  readonly mfaFactors: MfaFactorRepository;
  readonly webauthnCredentials: WebauthnCredentialRepository;
  readonly webauthnChallenges: WebauthnChallengeRepository;
  readonly loginSessions: LoginSessionRepository;
  readonly engineSessions: EngineSessionRepository;
  readonly logoutDeliveries: LogoutDeliveryRepository;
  /** Logins sent upstream, sealed, each taken once. */
  readonly loginTransactions: LoginTransactionStore;
  /** Sign-outs sent upstream, sealed in the same table, each taken once. */
  readonly logoutTransactions: LogoutTransactionStore;
  /** One-time ids (assertion ids, logout token jtis) seen by any node. */
  readonly replayGuard: ReplayGuardRepository;
  /** The rate limits' request counters. */
  readonly rateLimitCounters: RateLimitCounters;

  constructor(db: Knex, options: StoreOptions) {
    this.#db = db;
    this.#options = options;
    const repositories = this.#repositories(db, (table, key) => this.#options.changes?.changedHere(table, key));
    this.accounts = repositories.accounts;
    this.identities = repositories.identities;
    this.audit = repositories.audit;
    this.termsAcceptances = repositories.termsAcceptances;
    this.emailLinks = repositories.emailLinks;
    this.clients = repositories.clients;
    this.providers = repositories.providers;
    this.mfaFactors = repositories.mfaFactors;
    this.webauthnCredentials = repositories.webauthnCredentials;
    this.webauthnChallenges = repositories.webauthnChallenges;
    this.loginSessions = repositories.loginSessions;
    this.engineSessions = repositories.engineSessions;
    this.logoutDeliveries = repositories.logoutDeliveries;
    this.loginTransactions = new LoginTransactionStore(db, options.sealer);
    this.logoutTransactions = new LogoutTransactionStore(db, options.sealer);
    this.replayGuard = new ReplayGuardRepository(db);
    this.rateLimitCounters = new RateLimitCounters(db);
  }

  /** Every repository of a unit of work, on `db` (the database, or one transaction of it). */
  #repositories(db: Knex, changed: ChangedHere): Repositories {
    const { sealer, logoutRetryPeriodSeconds } = this.#options;
    return {
      accounts: new AccountRepository(db),
      identities: new ExternalIdentityRepository(db),
      audit: new AuditLog(db),
      termsAcceptances: new TermsAcceptanceRepository(db),
      emailLinks: new EmailLinkRepository(db, sealer),
      clients: new ClientRepository(db, sealer, changed),
      providers: new ProviderRepository(db, sealer, changed),
      mfaFactors: new MfaFactorRepository(db, sealer),
      webauthnCredentials: new WebauthnCredentialRepository(db),
      webauthnChallenges: new WebauthnChallengeRepository(db),
      loginSessions: new LoginSessionRepository(db, sealer),
      engineSessions: new EngineSessionRepository(db),
      logoutDeliveries: new LogoutDeliveryRepository(db, { retryPeriodSeconds: logoutRetryPeriodSeconds, listeners: this.#deliveryListeners }),
    };
  }

  /** Resolves when the database answers a statement; rejects with the driver's error when it does not. */
  async ping(): Promise<void> {
    await this.#db.raw('select 1');
  }

  /** True when every migration in `migrations/` has been applied to the database. */
  migrationsCurrent(): Promise<boolean> {
    return migrationsCurrent(this.#db);
  }

  /** The token engine's storage adapter (`oidc_payloads`), reading client metadata through `clients` (the client cache). */
  engineAdapter(clients: Pick<ClientRepository, 'findForEngine'>): AdapterFactory {
    return knexAdapter(this.#db, clients);
  }

  /**
   * Runs `work` (one engine request, or an interaction page finishing at the engine) with the
   * engine adapter's writes held and sent in one statement when it ends; rejects when they could
   * not be written, so the request fails rather than answering for writes that were lost.
   */
  holdEngineWrites<T>(work: () => Promise<T>): Promise<T> {
    return holdPayloadWrites(this.#db, work);
  }

  /** Runs `work` as one unit: its repositories share a transaction, committed when `work` resolves, rolled back when it throws. */
  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    // Changes to cached rows are told once committed: a cache told earlier could fill again with the old row.
    const changed: Parameters<ChangedHere>[] = [];
    const result = await this.#db.transaction((trx) => {
      const tx: StoreTransaction = {
        ...this.#repositories(trx, (table, key) => changed.push([table, key])),
        endAccountSessions: (accountId) => endAccountSessions(tx, accountId),
      };
      return work(tx);
    });
    for (const [table, key] of changed) this.#options.changes?.changedHere(table, key);
    return result;
  }
}
