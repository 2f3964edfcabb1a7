import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { RealmgateError } from '../errors.ts';

/** A local account: the stable `sub` of every token issued for this person. */
export interface Account {
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  claims: Record<string, unknown>;
  hasPassword: boolean;
  disabled: boolean;
  createdAt: Date;
  lastLoginAt: Date | null;
}

interface AccountRow {
  id: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  password_hash: string | null;
  claims: Record<string, unknown>;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
  last_login_at: Date | null;
}

/** Fields a new account may start with. */
export interface NewAccount {
  email?: string | null;
  emailVerified?: boolean;
  name?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  passwordHash?: string | null;
  claims?: Record<string, unknown>;
}

const toAccount = (row: AccountRow): Account => ({
  id: row.id,
  email: row.email,
  emailVerified: row.email_verified,
  name: row.name,
  givenName: row.given_name,
  familyName: row.family_name,
  claims: row.claims,
  hasPassword: row.password_hash !== null,
  disabled: row.disabled,
  createdAt: row.created_at,
  lastLoginAt: row.last_login_at,
});

/** The 409 for an email another password account already uses. */
export function emailTaken(email: string, cause?: unknown): RealmgateError {
  return new RealmgateError('email_taken', {
    params: { email },
    errors: [{ field: 'email', message: 'is already used by another account with a password' }],
    detail: `an account with a password already uses ${email}`,
    cause,
  });
}

/** Stores local accounts. */
export class AccountRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Creates an account with a new UUID. */
  async create(input: NewAccount): Promise<Account> {
    try {
      const [row] = await this.#db('accounts')
        .insert({
          id: crypto.randomUUID(),
          email: input.email ?? null,
          email_verified: input.emailVerified ?? false,
          name: input.name ?? null,
          given_name: input.givenName ?? null,
          family_name: input.familyName ?? null,
          password_hash: input.passwordHash ?? null,
          claims: JSON.stringify(input.claims ?? {}),
        })
        .returning<AccountRow[]>('*');
      return toAccount(row!);
    } catch (error) {
      if ((error as { code?: string }).code === '23505' && input.email) throw emailTaken(input.email, error);
      throw error;
    }
  }

  /** One account by id. */
  async get(id: string): Promise<Account | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const row = await this.#db('accounts').where({ id }).first<AccountRow | undefined>();
    return row && toAccount(row);
  }

  /**
   * Accounts whose verified email is `email` (case-insensitive), oldest first: the accounts an
   * upstream identity with that trusted email may be linked to. An unverified address proves nothing.
   */
  async findVerifiedByEmail(email: string): Promise<Account[]> {
    const rows = await this.#db('accounts').whereRaw('lower(email) = lower(?)', [email]).where({ email_verified: true }).orderBy('created_at').limit(10).select<AccountRow[]>();
    return rows.map(toAccount);
  }

  /** The account row locked for update until the transaction this repository runs on ends (before counting or removing its sign-in methods). */
  async getForUpdate(id: string): Promise<Account | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const row = await this.#db('accounts').where({ id }).forUpdate().first<AccountRow | undefined>();
    return row && toAccount(row);
  }

  /** Deletes an account; its links go with it (foreign key cascade). True when it existed. */
  async delete(id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return false;
    return (await this.#db('accounts').where({ id }).delete()) > 0;
  }

  /** The password account for an email (case-insensitive), with its hash, for sign-in. */
  async findLocalByEmail(email: string): Promise<{ account: Account; passwordHash: string } | undefined> {
    const row = await this.#db('accounts')
      .whereRaw('lower(email) = lower(?)', [email])
      .whereNotNull('password_hash')
      .first<AccountRow | undefined>();
    return row ? { account: toAccount(row), passwordHash: row.password_hash! } : undefined;
  }

  /** Accounts whose email matches (case-insensitive), paged by id. */
  async list(options: { email?: string; limit: number; afterId?: string }): Promise<Account[]> {
    const q = this.#db('accounts').orderBy('id').limit(options.limit);
    if (options.email) q.whereRaw('lower(email) = lower(?)', [options.email]);
    if (options.afterId) q.where('id', '>', options.afterId);
    return (await q.select<AccountRow[]>()).map(toAccount);
  }

  /**
   * The account an upstream identity is linked to, and, in the same statement, the sign-in
   * recorded on the link (the email and claims the upstream sent, `last_login_at`) when that
   * account is enabled. Undefined when the identity is not linked; `recorded` false when the
   * account is disabled (nothing is written then).
   */
  async getByIdentityRecordingLogin(
    providerAlias: string,
    subject: string,
    update: { email: string | null; claims: Record<string, unknown> },
  ): Promise<{ account: Account; recorded: boolean } | undefined> {
    const { rows } = await this.#db.raw<{ rows: (AccountRow & { login_recorded: boolean })[] }>(
      `with linked as (
         select "accounts".* from "accounts" join "external_identities" on "external_identities"."account_id" = "accounts"."id"
         where "external_identities"."provider_alias" = ? and "external_identities"."subject" = ?
       ), recorded as (
         update "external_identities" set "email" = ?, "claims" = ?::jsonb, "last_login_at" = CURRENT_TIMESTAMP
         where "provider_alias" = ? and "subject" = ? and "account_id" in (select "id" from linked where not "disabled")
         returning "account_id"
       )
       select linked.*, exists (select 1 from recorded) as login_recorded from linked`,
      [providerAlias, subject, update.email, JSON.stringify(update.claims), providerAlias, subject],
    );
    const row = rows[0];
    return row && { account: toAccount(row), recorded: row.login_recorded };
  }

  /**
   * An account with how engine session `sessionUid` signed in (its `login_sessions` idp and amr),
   * in one read: what the token engine's claims need.
   */
  async getWithSessionLogin(id: string, sessionUid: string | undefined): Promise<{ account: Account; login: { idp: string; amr: string[] } | undefined } | undefined> {
    const row = await this.#db('accounts')
      .leftJoin('login_sessions', (on) => on.on('login_sessions.session_uid', '=', this.#db.raw('?', [sessionUid ?? null])))
      .where('accounts.id', id)
      .first<(AccountRow & { login_idp: string | null; login_amr: string[] | null }) | undefined>('accounts.*', 'login_sessions.idp as login_idp', 'login_sessions.amr as login_amr');
    if (!row) return undefined;
    return { account: toAccount(row), login: row.login_idp !== null ? { idp: row.login_idp, amr: row.login_amr ?? [] } : undefined };
  }

  /** Updates profile fields; only the ones given change. */
  async update(id: string, changes: NewAccount & { disabled?: boolean }): Promise<Account | undefined> {
    const patch: Record<string, unknown> = { updated_at: this.#db.fn.now() };
    if (changes.email !== undefined) patch.email = changes.email;
    if (changes.emailVerified !== undefined) patch.email_verified = changes.emailVerified;
    if (changes.name !== undefined) patch.name = changes.name;
    if (changes.givenName !== undefined) patch.given_name = changes.givenName;
    if (changes.familyName !== undefined) patch.family_name = changes.familyName;
    if (changes.passwordHash !== undefined) patch.password_hash = changes.passwordHash;
    if (changes.claims !== undefined) patch.claims = JSON.stringify(changes.claims);
    if (changes.disabled !== undefined) patch.disabled = changes.disabled;
    const [row] = await this.#db('accounts').where({ id }).update(patch).returning<AccountRow[]>('*');
    return row && toAccount(row);
  }

  /** Records a successful sign-in. */
  async touchLogin(id: string): Promise<void> {
    await this.#db('accounts').where({ id }).update({ last_login_at: this.#db.fn.now() });
  }
}
