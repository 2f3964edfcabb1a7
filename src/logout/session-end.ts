/**
 * Ending an engine session in the store: one transaction revokes the grants that do not outlive
 * logout, deletes the session and queues a back-channel logout notice for every application of
 * it that has a `backchannel_logout_uri`. Every way a session ends (RP-initiated logout, upstream
 * logout, the admin API, expiry) comes through here, so no application is ever forgotten, and a
 * crash leaves either the session and no notices, or neither session nor lost notices.
 */
import type { Knex } from 'knex';
import type { LogoutOutbox, LogoutNotice, LogoutReason } from './outbox.ts';

/** What ending a session needs of oidc-provider's Session payload. */
export interface EndingSession {
  uid: string;
  accountId?: string | undefined;
  /** Per client_id: the `sid` the application knows, its grant, and whether the grant outlives logout (`offline_access`). */
  authorizations?: Record<string, { sid?: string | undefined; grantId?: string | undefined; persistsLogout?: boolean | undefined }> | undefined;
}

/** What ending a session did. */
export interface SessionEnded {
  /** False when the session was already gone (another node, or another path, ended it first). */
  ended: boolean;
  /** client_ids queued for a back-channel logout token. */
  notified: string[];
  /** Every application of the session and the `sid` it knows it by (for front-channel logout). */
  clients: { clientId: string; sid: string | undefined }[];
}

/** The client_ids among `clientIds` that registered a back-channel logout URI. */
async function backchannelClients(trx: Knex, clientIds: string[]): Promise<string[]> {
  if (!clientIds.length) return [];
  const rows = await trx('clients')
    .whereIn('client_id', clientIds)
    .whereRaw("coalesce(metadata->>'backchannel_logout_uri', '') <> ''")
    .select<{ client_id: string }[]>('client_id');
  return rows.map((r) => r.client_id).sort();
}

/** Revokes the grants (and every token of them) that do not persist logout, inside `trx`. */
async function revokeGrants(trx: Knex, session: EndingSession): Promise<void> {
  const grantIds = Object.values(session.authorizations ?? {})
    .filter((a) => a.grantId && !a.persistsLogout)
    .map((a) => a.grantId!);
  if (!grantIds.length) return;
  await trx('oidc_payloads')
    .whereIn('grant_id', grantIds)
    .orWhere((q) => q.where('model', 'Grant').whereIn('id', grantIds))
    .delete();
}

/**
 * Ends `session` inside `trx`: grants revoked, the Session rows of its uid deleted, notices queued.
 * Nothing is queued when the session was already gone.
 */
export async function endSessionIn(trx: Knex, outbox: LogoutOutbox, session: EndingSession, reason: LogoutReason): Promise<SessionEnded> {
  await revokeGrants(trx, session);
  const deleted = await trx('oidc_payloads').where({ model: 'Session', uid: session.uid }).delete();
  if (!deleted) return { ended: false, notified: [], clients: [] };
  const all = Object.entries(session.authorizations ?? {}).map(([clientId, a]) => ({ clientId, sid: a.sid }));
  const accountId = session.accountId;
  if (!accountId) return { ended: true, notified: [], clients: all };
  const clients = await backchannelClients(trx, Object.keys(session.authorizations ?? {}));
  const notices: LogoutNotice[] = clients.map((clientId) => ({
    sessionUid: session.uid,
    clientId,
    accountId,
    sid: session.authorizations?.[clientId]?.sid,
    reason,
  }));
  await outbox.enqueue(trx, notices);
  return { ended: true, notified: clients, clients: all };
}

/**
 * Ends one application's part of a session that stays signed in (on the logout confirmation the
 * user chose to stay signed in: oidc-provider then ends only the asking application's part): its
 * grant revoked unless it outlives logout (`offline_access`), and its back-channel notice queued
 * when it registered a back-channel URI, in one transaction. The session and its other
 * applications are left alone.
 */
export function endApplicationSession(
  db: Knex,
  outbox: LogoutOutbox,
  part: { sessionUid: string; accountId: string | undefined; clientId: string; authorization: NonNullable<EndingSession['authorizations']>[string] | undefined },
  reason: LogoutReason,
): Promise<{ notified: boolean }> {
  return db.transaction(async (trx) => {
    await revokeGrants(trx, { uid: part.sessionUid, authorizations: part.authorization ? { [part.clientId]: part.authorization } : {} });
    const [clientId] = await backchannelClients(trx, [part.clientId]);
    if (!clientId || !part.accountId) return { notified: false };
    await outbox.enqueue(trx, [{ sessionUid: part.sessionUid, clientId, accountId: part.accountId, sid: part.authorization?.sid, reason }]);
    return { notified: true };
  });
}

/** `endSessionIn` in its own transaction. */
export function endSession(db: Knex, outbox: LogoutOutbox, session: EndingSession, reason: LogoutReason): Promise<SessionEnded> {
  return db.transaction((trx) => endSessionIn(trx, outbox, session, reason));
}

interface SessionRow {
  uid: string;
  payload: EndingSession;
}

/**
 * Ends up to `limit` sessions whose lifetime or inactivity timeout has passed, each in its own
 * transaction with its notices (reason `expired`). Rows another node is ending are skipped.
 * Returns how many sessions ended.
 */
export async function endExpiredSessions(db: Knex, outbox: LogoutOutbox, limit: number): Promise<number> {
  let ended = 0;
  for (let i = 0; i < limit; i++) {
    const done = await db.transaction(async (trx) => {
      const row = await trx('oidc_payloads')
        .where({ model: 'Session' })
        .where('expires_at', '<', trx.fn.now())
        .forUpdate()
        .skipLocked()
        .first<SessionRow | undefined>('uid', 'payload');
      if (!row) return false;
      await endSessionIn(trx, outbox, { ...row.payload, uid: row.payload.uid ?? row.uid }, 'expired');
      return true;
    });
    if (!done) break;
    ended++;
  }
  return ended;
}

/** What ending a session by uid did, with its account. */
export type SessionEndedByUid = SessionEnded & { accountId: string | undefined };

/** Ends the session of `uid` inside `trx`, reading (and locking) its payload there; undefined when there is no such session. */
export async function endSessionByUidIn(trx: Knex, outbox: LogoutOutbox, uid: string, reason: LogoutReason): Promise<SessionEndedByUid | undefined> {
  const row = await trx('oidc_payloads').where({ model: 'Session', uid }).forUpdate().first<SessionRow | undefined>('uid', 'payload');
  if (!row) return undefined;
  const result = await endSessionIn(trx, outbox, { ...row.payload, uid }, reason);
  return { ...result, accountId: row.payload.accountId };
}

/** `endSessionByUidIn` in its own transaction (upstream logout, bulk ends). */
export function endSessionByUid(db: Knex, outbox: LogoutOutbox, uid: string, reason: LogoutReason): Promise<SessionEndedByUid | undefined> {
  return db.transaction((trx) => endSessionByUidIn(trx, outbox, uid, reason));
}
