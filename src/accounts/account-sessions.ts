import type { Knex } from 'knex';
import { endSessionIn, type EndingSession } from '../logout/session-end.ts';
import type { LogoutOutbox } from '../logout/outbox.ts';

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
 * requires it (`trx`), so the notices exist exactly when the change does.
 */
export async function endAccountSessions(services: { db: Knex; outbox: LogoutOutbox }, accountId: string, trx: Knex = services.db): Promise<EndedAccountSessions> {
  const rows = await trx('oidc_payloads')
    .where({ model: 'Session' })
    .whereRaw("payload->>'accountId' = ?", [accountId])
    .forUpdate()
    .select<{ uid: string; payload: EndingSession }[]>('uid', 'payload');
  const ended: EndedAccountSessions = { sessionUids: [], notified: {} };
  for (const row of rows) {
    const uid = row.payload.uid ?? row.uid;
    const result = await endSessionIn(trx, services.outbox, { ...row.payload, uid }, 'admin');
    if (!result.ended) continue;
    ended.sessionUids.push(uid);
    ended.notified[uid] = result.notified;
  }
  await trx('login_sessions').where({ account_id: accountId }).delete();
  return ended;
}
