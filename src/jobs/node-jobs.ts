import type { Services } from '../app.ts';
import type { Federation } from '../federation/index.ts';
import { REFRESH_CHECK_INTERVAL_MS } from '../federation/provider-refresh.ts';
import { deliverDue } from '../logout/delivery.ts';
import { Jobs } from './index.ts';
import { endExpired, purge } from './purge.ts';

/** Names of a node's jobs, for `Jobs.run`. */
export const JOB = {
  signingKeys: 'signing-keys',
  purge: 'purge',
  providerRefresh: 'provider-refresh',
  logoutDeliveries: 'logout-deliveries',
  sessionExpiry: 'session-expiry',
} as const;

/** How often expired sessions are looked for (at most; the purge interval when shorter). */
const SESSION_EXPIRY_INTERVAL_MS = 60_000;

/** The periodic work of one node: key checks, purge, provider refresh, logout deliveries, session expiry. */
export function nodeJobs(services: Services, federation: Pick<Federation, 'refreshDue' | 'context'>): Jobs {
  const { config, engine, logger } = services;
  const jobs = new Jobs(
    [
      { name: JOB.signingKeys, intervalMs: config.keyRefreshSeconds * 1000, run: () => engine.refreshKeys() },
      { name: JOB.purge, intervalMs: config.purgeIntervalSeconds * 1000, run: () => purge(services) },
      { name: JOB.providerRefresh, intervalMs: REFRESH_CHECK_INTERVAL_MS, run: () => federation.refreshDue() },
      {
        name: JOB.logoutDeliveries,
        intervalMs: config.logoutDeliveryIntervalSeconds * 1000,
        run: () =>
          deliverDue({
            outbox: services.outbox,
            provider: () => engine.provider,
            fetch: federation.context.fetch,
            logger,
            metrics: services.metrics,
            retryInitialSeconds: config.logoutRetryInitialSeconds,
            // Longer than one attempt can take, so a delivery is never sent twice at once.
            leaseSeconds: Math.ceil(config.upstreamTimeoutMs / 1000) * 2 + 5,
          }),
      },
      { name: JOB.sessionExpiry, intervalMs: Math.min(SESSION_EXPIRY_INTERVAL_MS, config.purgeIntervalSeconds * 1000), run: () => endExpired(services) },
    ],
    logger,
  );
  // A session ended on this node: deliver its notices now rather than at the next run.
  services.outbox.onEnqueued(() => void jobs.run(JOB.logoutDeliveries).catch(() => undefined));
  return jobs;
}
