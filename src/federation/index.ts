import type { Router } from 'express';
import type { OpenContext } from '../../providers/types.ts';
import { ExternalIdentityRepository } from '../accounts/external-identities.ts';
import type { Services } from '../app.ts';
import { CsrfTokens } from '../interaction/csrf.ts';
import { ReplayGuardRepository } from '../store/replay-guard.ts';
import type { LoginPagePolicy } from '../interaction/routes.ts';
import { homeRealmLoginPage } from './login-page.ts';
import { LoginTransactionStore } from './login-transactions.ts';
import { ProviderCache } from './provider-cache.ts';
import { federationRoutes } from './routes.ts';
import { createOpenContext } from './upstream-fetch.ts';

/** The federation part of a node: its provider cache, login page policy and routes. */
export interface Federation {
  cache: ProviderCache;
  /** The open context providers are opened with (SSRF-guarded fetch, timeout, replay store); the admin API's provider test uses it too. */
  context: OpenContext;
  /** Home-realm discovery as the login page policy. */
  loginPage: LoginPagePolicy;
  routes: Router;
}

/** Builds federation over a node's services; `context` overrides parts of the open context. */
export function createFederation(services: Services, options: { context?: Partial<OpenContext>; retryAfterMs?: number } = {}): Federation {
  const context = createOpenContext(services.config, { replay: new ReplayGuardRepository(services.db), ...options.context });
  const cache = new ProviderCache({
    providers: services.providers,
    context,
    logger: services.logger,
    retryAfterMs: options.retryAfterMs,
  });
  const routes = federationRoutes({
    engine: services.engine,
    cache,
    transactions: new LoginTransactionStore(services.db, services.sealer),
    db: services.db,
    accounts: services.accounts,
    identities: new ExternalIdentityRepository(services.db),
    logger: services.logger,
    metrics: services.metrics,
    providers: services.providers,
    interaction: { engine: services.engine, csrf: new CsrfTokens(services.sealer.deriveKey('csrf')), views: services.views },
    issuer: services.config.issuer,
  });
  return { cache, context, loginPage: homeRealmLoginPage({ providers: services.providers }), routes };
}
