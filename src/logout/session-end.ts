/**
 * Ending an engine session in the store: one transaction revokes the grants that do not outlive
 * logout, deletes the session and queues a back-channel logout notice for every application of
 * it that has a `backchannel_logout_uri`. Every way a session ends (RP-initiated logout, upstream
 * logout, the admin API, expiry) comes through here, so no application is ever forgotten, and a
 * crash leaves either the session and no notices, or neither session nor lost notices.
 */
import type { Store, StoreTransaction } from '../store/store.ts';
import type { LogoutNotice, LogoutReason } from './outbox.ts';

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

/** The grants of `authorizations` that do not outlive logout (no `offline_access`). */
function revocableGrants(authorizations: EndingSession['authorizations']): string[] {
  return Object.values(authorizations ?? {})
    .filter((a) => a.grantId && !a.persistsLogout)
    .map((a) => a.grantId!);
}

/**
 * Ends `session` inside `tx`: grants revoked, the Session rows of its uid deleted, notices queued.
 * Nothing is queued when the session was already gone.
 */
export async function endSessionIn(tx: StoreTransaction, session: EndingSession, reason: LogoutReason): Promise<SessionEnded> {
  await tx.engineSessions.revokeGrants(revocableGrants(session.authorizations));
  if (!(await tx.engineSessions.delete(session.uid))) return { ended: false, notified: [], clients: [] };
  const all = Object.entries(session.authorizations ?? {}).map(([clientId, a]) => ({ clientId, sid: a.sid }));
  const accountId = session.accountId;
  if (!accountId) return { ended: true, notified: [], clients: all };
  const clients = await tx.clients.withBackchannelLogout(Object.keys(session.authorizations ?? {}));
  const notices: LogoutNotice[] = clients.map((clientId) => ({
    sessionUid: session.uid,
    clientId,
    accountId,
    sid: session.authorizations?.[clientId]?.sid,
    reason,
  }));
  await tx.logoutDeliveries.enqueue(notices);
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
  store: Store,
  part: { sessionUid: string; accountId: string | undefined; clientId: string; authorization: NonNullable<EndingSession['authorizations']>[string] | undefined },
  reason: LogoutReason,
): Promise<{ notified: boolean }> {
  return store.transaction(async (tx) => {
    await tx.engineSessions.revokeGrants(revocableGrants(part.authorization ? { [part.clientId]: part.authorization } : {}));
    const [clientId] = await tx.clients.withBackchannelLogout([part.clientId]);
    if (!clientId || !part.accountId) return { notified: false };
    await tx.logoutDeliveries.enqueue([{ sessionUid: part.sessionUid, clientId, accountId: part.accountId, sid: part.authorization?.sid, reason }]);
    return { notified: true };
  });
}

/** `endSessionIn` in its own transaction. */
export function endSession(store: Store, session: EndingSession, reason: LogoutReason): Promise<SessionEnded> {
  return store.transaction((tx) => endSessionIn(tx, session, reason));
}

/**
 * Ends up to `limit` sessions whose lifetime or inactivity timeout has passed, each in its own
 * transaction with its notices (reason `expired`). Rows another node is ending are skipped.
 * Returns how many sessions ended.
 */
export async function endExpiredSessions(store: Store, limit: number): Promise<number> {
  let ended = 0;
  for (let i = 0; i < limit; i++) {
    const done = await store.transaction(async (tx) => {
      const session = await tx.engineSessions.lockNextExpired();
      if (!session) return false;
      await endSessionIn(tx, session, 'expired');
      return true;
    });
    if (!done) break;
    ended++;
  }
  return ended;
}

/** What ending a session by uid did, with its account. */
export type SessionEndedByUid = SessionEnded & { accountId: string | undefined };

/** Ends the session of `uid` inside `tx`, reading (and locking) its payload there; undefined when there is no such session. */
export async function endSessionByUidIn(tx: StoreTransaction, uid: string, reason: LogoutReason): Promise<SessionEndedByUid | undefined> {
  const session = await tx.engineSessions.lock(uid);
  if (!session) return undefined;
  const result = await endSessionIn(tx, session, reason);
  return { ...result, accountId: session.accountId };
}

/** `endSessionByUidIn` in its own transaction (upstream logout, bulk ends). */
export function endSessionByUid(store: Store, uid: string, reason: LogoutReason): Promise<SessionEndedByUid | undefined> {
  return store.transaction((tx) => endSessionByUidIn(tx, uid, reason));
}
