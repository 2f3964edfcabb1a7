import { endSessionIn } from '../logout/session-end.ts';
import type { StoreTransaction } from '../store/store.ts';

/** What ending an account's sessions did. */
export interface EndedAccountSessions {
  /** Uids of the engine sessions that were signed in to the account and ended now. */
  sessionUids: string[];
  /** client_ids queued for a back-channel logout notice, per session. */
  notified: Record<string, string[]>;
}

/**
 * Ends every session of an account, as disabling or deleting it must: each engine session signed
 * in to it ends through the logout fan-out (its grants that do not outlive logout revoked, a
 * back-channel logout notice queued for each of its applications), and its `login_sessions` rows
 * go. Offline grants are kept; the engine refuses them anyway once the account is disabled or
 * gone, because `findAccount` no longer finds it. Run it in the transaction of the change that
 * requires it (`tx`), so the notices exist exactly when the change does.
 */
export async function endAccountSessions(tx: StoreTransaction, accountId: string): Promise<EndedAccountSessions> {
  const ended: EndedAccountSessions = { sessionUids: [], notified: {} };
  for (const session of await tx.engineSessions.lockForAccount(accountId)) {
    const result = await endSessionIn(tx, session, 'admin');
    if (!result.ended) continue;
    ended.sessionUids.push(session.uid);
    ended.notified[session.uid] = result.notified;
  }
  await tx.loginSessions.deleteForAccount(accountId);
  return ended;
}
