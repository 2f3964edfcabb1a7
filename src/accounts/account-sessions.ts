import type { Knex } from 'knex';

/** What ending an account's sessions removed. */
export interface EndedAccountSessions {
  /** Uids of the engine sessions that were signed in to the account. */
  sessionUids: string[];
  /** Grants revoked with their tokens (those that do not outlive logout: no `offline_access`). */
  revokedGrantIds: string[];
}

/** The part of an engine Session payload this reads (oidc-provider's Session model). */
interface SessionPayload {
  uid?: string;
  authorizations?: Record<string, { grantId?: string; persistsLogout?: boolean }>;
}

/**
 * Ends every session of an account, as disabling or deleting it must: the token engine's
 * `Session` payloads signed in to it are deleted (its browsers must sign in again), the grants of
 * those sessions that do not outlive logout are revoked with their codes and tokens, and its
 * `login_sessions` rows go. Offline grants are kept here; the engine refuses them anyway once the
 * account is disabled or gone, because `findAccount` no longer finds it.
 *
 * This is the one place that ends an account's sessions: run it in the transaction of the change
 * that requires it (`trx`). It does not notify applications yet; the durable back-channel logout
 * fan-out will be routed through this function when it lands, so callers need not change.
 */
export async function endAccountSessions(services: { db: Knex }, accountId: string, trx: Knex = services.db): Promise<EndedAccountSessions> {
  const rows = await trx('oidc_payloads')
    .where({ model: 'Session' })
    .whereRaw("payload->>'accountId' = ?", [accountId])
    .select<{ id: string; payload: SessionPayload }[]>('id', 'payload');
  const revokedGrantIds = [
    ...new Set(rows.flatMap((row) => Object.values(row.payload.authorizations ?? {}).filter((a) => a.grantId && !a.persistsLogout).map((a) => a.grantId!))),
  ];
  if (revokedGrantIds.length) {
    await trx('oidc_payloads').whereIn('grant_id', revokedGrantIds).delete();
    await trx('oidc_payloads').where({ model: 'Grant' }).whereIn('id', revokedGrantIds).delete();
  }
  if (rows.length) await trx('oidc_payloads').where({ model: 'Session' }).whereIn('id', rows.map((r) => r.id)).delete();
  await trx('login_sessions').where({ account_id: accountId }).delete();
  return { sessionUids: rows.map((r) => r.payload.uid).filter((uid): uid is string => typeof uid === 'string'), revokedGrantIds };
}
