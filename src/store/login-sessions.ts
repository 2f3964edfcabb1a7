import type { Knex } from 'knex';
import type { UpstreamLogoutMatch, UpstreamSession } from '../../providers/types.ts';
import { currentPayloadBatch } from './payload-batch.ts';
import type { Sealer } from './seal.ts';
import { TTL } from '../token-server/ttl.ts';

/** How one engine session signed in, and the upstream session it came from (if federated). */
export interface LoginSession {
  sessionUid: string;
  accountId: string;
  idp: string;
  amr: string[];
  upstream?: UpstreamSession | undefined;
}

/** Where a session started: the client address the engine saw and the browser's User-Agent. */
export interface SessionOrigin {
  ip: string | null;
  userAgent: string | null;
}

/** A stored login session with its lifetime, as the admin API lists it. */
export interface LoginSessionRecord extends LoginSession {
  createdAt: Date;
  expiresAt: Date;
  /** Where it started; null for sessions recorded before this was kept. */
  origin: SessionOrigin;
}

/** An active session of an account as its own page lists it: its record and the applications signed in through it. */
export interface AccountSession extends LoginSessionRecord {
  clientIds: string[];
}

/** Longest User-Agent kept for a session (enough to tell browsers apart; the rest is noise). */
const USER_AGENT_MAX_LENGTH = 256;

interface LoginSessionRow {
  session_uid: string;
  account_id: string;
  idp: string;
  amr: string[];
  upstream_issuer: string | null;
  upstream_subject: string | null;
  upstream_session_id: string | null;
  name_id: string | null;
  session_index: string | null;
  name_id_format: string | null;
  name_qualifier: string | null;
  sp_name_qualifier: string | null;
  /** The upstream ID token (kept for `id_token_hint`), sealed: a bearer credential of the user at the upstream. */
  sealed_upstream_id_token: string | null;
  started_ip: string | null;
  started_user_agent: string | null;
  created_at: Date;
  expires_at: Date;
}

/** A row as a record with its lifetime and origin. */
const toRecord = (row: LoginSessionRow): LoginSessionRecord => ({
  ...toLoginSession(row),
  createdAt: new Date(row.created_at),
  expiresAt: new Date(row.expires_at),
  origin: { ip: row.started_ip ?? null, userAgent: row.started_user_agent ?? null },
});

const orUndefined = <T>(v: T | null): T | undefined => v ?? undefined;

/** A row as the repository's `LoginSession`; `idToken` is the opened upstream ID token, when asked for. */
const toLoginSession = (row: LoginSessionRow, idToken?: string): LoginSession => ({
  sessionUid: row.session_uid,
  accountId: row.account_id,
  idp: row.idp,
  amr: row.amr,
  upstream: row.upstream_subject
    ? {
        issuer: orUndefined(row.upstream_issuer),
        subject: orUndefined(row.upstream_subject),
        sessionId: orUndefined(row.upstream_session_id),
        nameId: orUndefined(row.name_id),
        sessionIndex: orUndefined(row.session_index),
        nameIdFormat: orUndefined(row.name_id_format),
        nameQualifier: orUndefined(row.name_qualifier),
        spNameQualifier: orUndefined(row.sp_name_qualifier),
        idToken,
      }
    : undefined,
});

/** Stores `login_sessions`: the idp and amr claims of each session and its upstream reference (the upstream ID token sealed). */
export class LoginSessionRepository {
  readonly #db: Knex;
  readonly #sealer: Sealer;

  constructor(db: Knex, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** Records (or replaces, after a new sign-in) how a session signed in, and where. Kept as long as its refresh tokens. */
  async save(login: LoginSession, origin?: SessionOrigin): Promise<void> {
    const row = {
      session_uid: login.sessionUid,
      account_id: login.accountId,
      idp: login.idp,
      amr: JSON.stringify(login.amr),
      upstream_issuer: login.upstream?.issuer ?? null,
      upstream_subject: login.upstream?.subject ?? null,
      upstream_session_id: login.upstream?.sessionId ?? null,
      name_id: login.upstream?.nameId ?? null,
      session_index: login.upstream?.sessionIndex ?? null,
      name_id_format: login.upstream?.nameIdFormat ?? null,
      name_qualifier: login.upstream?.nameQualifier ?? null,
      sp_name_qualifier: login.upstream?.spNameQualifier ?? null,
      sealed_upstream_id_token: login.upstream?.idToken ? this.#sealer.seal(login.upstream.idToken) : null,
      started_ip: origin?.ip ?? null,
      started_user_agent: origin?.userAgent?.slice(0, USER_AGENT_MAX_LENGTH) ?? null,
      created_at: this.#db.fn.now(),
      expires_at: new Date(Date.now() + Math.max(TTL.session, TTL.refreshToken) * 1000),
    };
    const upsert = this.#db('login_sessions').insert(row).onConflict('session_uid').merge();
    // Saved as the engine finishes the request that signed the session in: sent with the
    // engine's own writes of that session (a transaction's writes stay in the transaction).
    const batch = this.#db.isTransaction ? undefined : currentPayloadBatch();
    if (batch) return batch.alongside(upsert.toSQL());
    await upsert;
  }

  /** How a session signed in, if known, with the upstream ID token opened. */
  async get(sessionUid: string): Promise<LoginSession | undefined> {
    const row = await this.#db('login_sessions').where({ session_uid: sessionUid }).first<LoginSessionRow | undefined>();
    return row && toLoginSession(row, row.sealed_upstream_id_token ? this.#sealer.open(row.sealed_upstream_id_token) : undefined);
  }

  /**
   * Sessions still signed in (the engine's Session exists and is unexpired; a row outlives its
   * session while refresh tokens need it), ordered by uid, after `afterUid`, filtered by account
   * or provider alias.
   */
  async list(options: { limit: number; afterUid?: string | undefined; uid?: string | undefined; accountId?: string | undefined; idp?: string | undefined }): Promise<LoginSessionRecord[]> {
    const now = this.#db.fn.now();
    const q = this.#db('login_sessions')
      .whereExists((s) =>
        s.select(this.#db.raw('1')).from('oidc_payloads')
          .where('oidc_payloads.model', 'Session')
          .whereRaw('oidc_payloads.uid = login_sessions.session_uid')
          .andWhere((e) => e.whereNull('oidc_payloads.expires_at').orWhere('oidc_payloads.expires_at', '>', now)),
      )
      .orderBy('session_uid')
      .limit(options.limit);
    if (options.afterUid) q.where('session_uid', '>', options.afterUid);
    if (options.uid) q.where('session_uid', options.uid);
    if (options.accountId) q.where('account_id', options.accountId);
    if (options.idp) q.where('idp', options.idp);
    return (await q.select<LoginSessionRow[]>()).map(toRecord);
  }

  /**
   * The account's sessions still signed in, newest first, each with the client_ids of the
   * applications it signed in to (from the engine's session), at most `limit`.
   */
  async listForAccount(accountId: string, limit: number): Promise<AccountSession[]> {
    const rows = await this.#db('login_sessions')
      .join('oidc_payloads', (j) => j.on('oidc_payloads.uid', '=', 'login_sessions.session_uid').andOnVal('oidc_payloads.model', '=', 'Session'))
      .where('login_sessions.account_id', accountId)
      .andWhere((e) => e.whereNull('oidc_payloads.expires_at').orWhere('oidc_payloads.expires_at', '>', this.#db.fn.now()))
      .orderBy('login_sessions.created_at', 'desc')
      .orderBy('login_sessions.session_uid')
      .limit(limit)
      .select<(LoginSessionRow & { payload: { authorizations?: Record<string, unknown> } | string })[]>('login_sessions.*', 'oidc_payloads.payload');
    return rows.map((row) => {
      const payload = typeof row.payload === 'string' ? (JSON.parse(row.payload) as { authorizations?: Record<string, unknown> }) : row.payload;
      return { ...toRecord(row), clientIds: Object.keys(payload.authorizations ?? {}).sort() };
    });
  }

  /** The stored row of a session, signed in or not (its row outlives it while refresh tokens need it). */
  async record(sessionUid: string): Promise<LoginSessionRecord | undefined> {
    const row = await this.#db('login_sessions').where({ session_uid: sessionUid }).first<LoginSessionRow | undefined>();
    return row && toRecord(row);
  }

  /** Forgets how a session signed in (the session is ending); true when a row went. */
  async delete(sessionUid: string): Promise<boolean> {
    return (await this.#db('login_sessions').where({ session_uid: sessionUid }).delete()) > 0;
  }

  /** Forgets how every session of `accountId` signed in (its sessions are ending); returns how many rows went. */
  async deleteForAccount(accountId: string): Promise<number> {
    return this.#db('login_sessions').where({ account_id: accountId }).delete();
  }

  /**
   * The uids of the signed-in sessions of provider `alias` that an upstream logout `match` names,
   * in uid order; an empty match names nothing. Only sessions the engine still has count.
   */
  async matchingUpstream(alias: string, match: UpstreamLogoutMatch): Promise<string[]> {
    if (!match.sessionId && !match.subject && !match.nameId) return [];
    const db = this.#db;
    const q = db('login_sessions')
      .where({ idp: alias, upstream_issuer: match.issuer })
      .whereExists((s) => s.select(db.raw('1')).from('oidc_payloads').where('oidc_payloads.model', 'Session').whereRaw('oidc_payloads.uid = login_sessions.session_uid'));
    if (match.sessionId) q.where('upstream_session_id', match.sessionId);
    if (match.subject) q.where('upstream_subject', match.subject);
    if (match.nameId) {
      const { value, format, nameQualifier, spNameQualifier } = match.nameId;
      q.where('name_id', value);
      // Absent attributes match absent ones only (SAML core §3.7.3.2: the NameID must be identical).
      for (const [column, v] of [['name_id_format', format], ['name_qualifier', nameQualifier], ['sp_name_qualifier', spNameQualifier]] as const) {
        if (v === undefined) q.whereNull(column);
        else q.where(column, v);
      }
    }
    if (match.sessionIndexes?.length) q.whereIn('session_index', match.sessionIndexes);
    return (await q.orderBy('session_uid').select<{ session_uid: string }[]>('session_uid')).map((r) => r.session_uid);
  }

  /** Deletes rows past their lifetime. */
  async purgeExpired(): Promise<number> {
    return this.#db('login_sessions').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
