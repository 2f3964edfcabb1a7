/**
 * The delivery job of the logout outbox: claims due deliveries, signs a logout token for each
 * (OpenID Connect Back-Channel Logout 1.0 §2.4, with the engine's current key) and posts it to the
 * application's `backchannel_logout_uri` through the guarded outbound fetch. Failures are retried
 * with exponential backoff and jitter until the retry period ends, then dead-lettered.
 */
import crypto from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { LogoutDelivery, LogoutOutbox } from './outbox.ts';

/** The event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Deliveries claimed per run; they are sent concurrently. */
const BATCH_SIZE = 20;

/** The delay before retry `attempt` (1-based): `initialSeconds · 2^(attempt-1)`, at most an hour, with full jitter over its upper half. */
export function retryDelayMs(attempt: number, initialSeconds: number, random: () => number = Math.random): number {
  const ceilingMs = Math.min(initialSeconds * 2 ** Math.min(attempt - 1, 30), 3600) * 1000;
  return Math.round(ceilingMs / 2 + random() * (ceilingMs / 2));
}

/** The part of oidc-provider's Client this uses (`backchannelLogoutUri` and friends are untyped upstream). */
interface LogoutClient {
  clientId: string;
  backchannelLogoutUri?: string | undefined;
  backchannelLogoutSessionRequired?: boolean | undefined;
}

/** What the delivery job needs. */
export interface DeliveryDeps {
  outbox: LogoutOutbox;
  /** The engine's current provider (it changes after a key rotation, so it is asked each time). */
  provider: () => Provider;
  /** The guarded outbound fetch (SSRF guard and timeout). */
  fetch: typeof fetch;
  logger: Logger;
  metrics: Metrics;
  /** First retry delay; each next one doubles. */
  retryInitialSeconds: number;
  /** How long a claimed delivery is reserved for the node that claimed it. */
  leaseSeconds: number;
}

/**
 * Signs the logout token for one delivery: `iss`, `aud`, `iat`, `exp`, `jti`, `sub`, `events`,
 * `sid` (when the client asks for it), never `nonce`; header `typ: logout+jwt`. oidc-provider's
 * IdToken does the signing, so the client's ID token algorithm and encryption apply.
 */
async function logoutToken(provider: Provider, client: LogoutClient, delivery: LogoutDelivery): Promise<string> {
  const IdToken = provider.IdToken as unknown as new (claims: Record<string, unknown>, options: { client: unknown; ctx: undefined }) => {
    mask: Record<string, unknown>;
    set(name: string, value: unknown): void;
    issue(options: { use: 'logout' }): Promise<string>;
  };
  const token = new IdToken({ sub: delivery.accountId }, { client, ctx: undefined });
  token.mask = { sub: null };
  token.set('events', { [BACKCHANNEL_LOGOUT_EVENT]: {} });
  token.set('jti', crypto.randomUUID());
  if (client.backchannelLogoutSessionRequired && delivery.sid) token.set('sid', delivery.sid);
  return token.issue({ use: 'logout' });
}

/** Sends one delivery; resolves with undefined on success, or the reason it failed. */
async function send(deps: DeliveryDeps, delivery: LogoutDelivery): Promise<string | undefined> {
  const provider = deps.provider();
  const client = (await provider.Client.find(delivery.clientId).catch(() => undefined)) as unknown as LogoutClient | undefined;
  if (!client) return `client ${delivery.clientId} no longer exists`;
  if (!client.backchannelLogoutUri) return `client ${delivery.clientId} no longer has a backchannel_logout_uri`;
  const body = new URLSearchParams({ logout_token: await logoutToken(provider, client, delivery) });
  try {
    const response = await deps.fetch(client.backchannelLogoutUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await response.body?.cancel();
    // §2.8: 200 OK on success; many applications answer 204.
    if (response.status === 200 || response.status === 204) return undefined;
    return `${client.backchannelLogoutUri} answered HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Delivers one claimed delivery and records the outcome. */
async function deliver(deps: DeliveryDeps, delivery: LogoutDelivery): Promise<void> {
  const log = deps.logger.child({ delivery_id: delivery.id, client_id: delivery.clientId, session_uid: delivery.sessionUid });
  let failure: string | undefined;
  try {
    failure = await send(deps, delivery);
  } catch (error) {
    failure = `logout token could not be built: ${(error as Error).message}`;
  }
  if (failure === undefined) {
    await deps.outbox.recordDelivered(delivery.id);
    deps.metrics.logoutDeliveries.inc({ client_id: delivery.clientId, outcome: 'delivered' });
    log.info({ attempts: delivery.attempts }, 'back-channel logout delivered');
    return;
  }
  const retryAt = new Date(Date.now() + retryDelayMs(delivery.attempts, deps.retryInitialSeconds));
  const status = await deps.outbox.recordFailure(delivery.id, failure, retryAt);
  const outcome = status === 'failed' ? 'failed' : 'retry';
  deps.metrics.logoutDeliveries.inc({ client_id: delivery.clientId, outcome });
  if (outcome === 'failed') log.error({ attempts: delivery.attempts, reason: failure }, 'back-channel logout given up after its retry period');
  else log.warn({ attempts: delivery.attempts, reason: failure, retry_at: retryAt.toISOString() }, 'back-channel logout failed; will retry');
}

/** Claims and delivers due deliveries until none are due; returns how many were attempted. */
export async function deliverDue(deps: DeliveryDeps, options: { maxBatches?: number } = {}): Promise<number> {
  let attempted = 0;
  for (let batch = 0; batch < (options.maxBatches ?? 10); batch++) {
    const claimed = await deps.outbox.claimDue(BATCH_SIZE, deps.leaseSeconds);
    if (!claimed.length) break;
    await Promise.all(claimed.map((d) => deliver(deps, d)));
    attempted += claimed.length;
    if (claimed.length < BATCH_SIZE) break;
  }
  deps.metrics.logoutDeliveriesPending.set(await deps.outbox.countPending());
  return attempted;
}
