import type { Services } from '../app.ts';
import { endExpiredSessions } from '../logout/session-end.ts';

/** How long settled (delivered or dead-lettered) logout deliveries stay visible in the admin API. */
export const SETTLED_DELIVERY_RETENTION_SECONDS = 30 * 24 * 3600;

/** Sessions ended per run of the expiry job; the next run takes the rest. */
const EXPIRED_SESSIONS_PER_RUN = 500;

/**
 * Ends sessions past their lifetime or inactivity timeout, each with its logout notices, so
 * applications hear of an expiry as they hear of a logout. Returns how many ended.
 */
export async function endExpired(services: Pick<Services, 'store' | 'logger'>): Promise<number> {
  const ended = await endExpiredSessions(services.store, EXPIRED_SESSIONS_PER_RUN);
  if (ended) services.logger.info({ sessions: ended }, 'expired sessions ended');
  return ended;
}

/** Deletes expired engine artifacts, login rows, interaction states, mailed links, WebAuthn challenges, throttling and rate-limit rows, settled deliveries and retired keys (expired sessions are ended first). */
export async function purge(services: Services): Promise<Record<string, number>> {
  const counts = {
    sessions_ended: await endExpired(services),
    oidc_payloads: await services.store.engineSessions.purgeExpired(),
    login_sessions: await services.loginSessions.purgeExpired(),
    login_throttle: await services.throttle.purgeExpired(),
    login_transactions: await services.store.loginTransactions.purgeExpired(),
    interaction_states: await services.interactionStates.purgeExpired(),
    email_links: await services.emailLinks.purgeExpired(),
    webauthn_challenges: await services.store.webauthnChallenges.purgeExpired(),
    replay_guard: await services.store.replayGuard.purgeExpired(),
    rate_limits: await services.store.rateLimitCounters.purgeExpired(),
    logout_deliveries: await services.outbox.purgeSettled(new Date(Date.now() - SETTLED_DELIVERY_RETENTION_SECONDS * 1000)),
    signing_keys: await services.keys.purgeRemoved(),
  };
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (total) services.logger.info({ purged: counts }, 'expired rows purged');
  return counts;
}
