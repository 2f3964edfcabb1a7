import express, { type Router } from 'express';
import type { OpenContext } from '../../providers/types.ts';
import type { Services } from '../app.ts';
import type { FederationDeps } from './login-flow.ts';
import { ProviderCache } from './provider-cache.ts';
import { refreshDueProviders, refreshProvider, type RefreshStatus } from './provider-refresh.ts';
import { federationRoutes } from './routes.ts';
import { samlRoutes } from './saml-routes.ts';
import { logoutRoutes } from './logout-routes.ts';
import { signOutUpstream } from '../logout/upstream-signout.ts';
import { createOpenContext } from './upstream-fetch.ts';

/** The federation part of a node: its provider cache, upstream login flow and routes. */
export interface Federation {
  cache: ProviderCache;
  /** The open context providers are opened with (SSRF-guarded fetch, timeout, replay store); the admin API's provider test uses it too. */
  context: OpenContext;
  /** What the upstream login flow runs on; the interaction starts logins and takes completed ones through it. */
  flow: FederationDeps;
  /** `/federation/*` routes: start hand-off, callbacks, SAML endpoints. */
  routes: Router;
  /** Refreshes one provider's upstream configuration now (SAML metadata URL) and records it in its status; undefined for kinds without refresh. */
  refresh(alias: string): Promise<RefreshStatus | undefined>;
  /** Refreshes every enabled provider whose refresh is due; the node calls it on a timer. */
  refreshDue(): Promise<number>;
}

/** Builds federation over a node's services; `context` overrides parts of the open context. */
export function createFederation(services: Services, options: { context?: Partial<OpenContext>; retryAfterMs?: number } = {}): Federation {
  const context = createOpenContext(services.config, { replay: services.store.replayGuard, ...options.context });
  const cache = new ProviderCache({
    providers: services.providers,
    changes: services.changes.watch('identity_providers'),
    context,
    logger: services.logger,
    maxEntries: services.config.providerCacheSize,
    retryAfterMs: options.retryAfterMs,
  });
  const flow: FederationDeps = {
    cache,
    transactions: services.store.loginTransactions,
    logger: services.logger,
    metrics: services.metrics,
  };
  const routes = express.Router();
  routes.use(federationRoutes({ ...flow, issuer: services.config.issuer }));
  routes.use(samlRoutes({ ...flow, providers: services.providers, clients: services.clients, context, issuer: services.config.issuer }));
  const logout = { cache, loginSessions: services.loginSessions, logoutTransactions: services.store.logoutTransactions, context, views: services.views, logger: services.logger };
  routes.use(logoutRoutes({ ...logout, services, clients: services.clients, issuer: services.config.issuer }));
  services.engine.onLogout((sessionUid, location) => signOutUpstream(logout, sessionUid, location));
  const refreshDeps = { providers: services.providers, context, logger: services.logger };
  return {
    cache,
    context,
    flow,
    routes,
    refresh: (alias) => refreshProvider(refreshDeps, alias),
    refreshDue: () => refreshDueProviders(refreshDeps),
  };
}
