import type { Request, Response } from 'express';
import type { LoginPage, LoginPagePolicy } from '../interaction/routes.ts';
import type { ProviderRepository } from '../store/providers.ts';
import {
  decideHomeRealm,
  homeRealmClient,
  loadHomeRealmProviders,
  type HomeRealmClient,
  type HomeRealmExplanation,
  type HomeRealmInput,
  type HomeRealmProvider,
} from './home-realm.ts';

/** Cookie naming the provider last used in this browser. */
export const LAST_PROVIDER_COOKIE = 'rg_last_idp';

const LAST_PROVIDER_MAX_AGE_MS = 180 * 24 * 3600 * 1000;

/** The value of one cookie of the request (no cookie parser is mounted). */
export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Remembers the provider this browser signed in with, for home-realm discovery next time. */
export function rememberProvider(res: Response, alias: string, secure: boolean): void {
  res.cookie(LAST_PROVIDER_COOKIE, alias, { path: '/interaction', httpOnly: true, sameSite: 'lax', secure, maxAge: LAST_PROVIDER_MAX_AGE_MS });
}

/** Where the browser goes to start a login at `alias` for interaction `uid`. */
export function startUrl(alias: string, uid: string): string {
  return `/federation/${encodeURIComponent(alias)}/start?interaction=${encodeURIComponent(uid)}`;
}

const param = (params: Record<string, unknown>, name: string) => (typeof params[name] === 'string' && params[name] ? (params[name] as string) : undefined);

/** The discovery inputs of an interaction: its authorization parameters and the last-used cookie. */
export function homeRealmInput(params: Record<string, unknown>, req: Request, email?: string): HomeRealmInput {
  return {
    idpHint: param(params, 'idp_hint'),
    kcIdpHint: param(params, 'kc_idp_hint'),
    acrValues: param(params, 'acr_values'),
    loginHint: param(params, 'login_hint'),
    email,
    lastUsed: readCookie(req, LAST_PROVIDER_COOKIE),
  };
}

/** The picker page offering the decision's candidates (with a notice when a typed email matched nothing). */
export function pickerPage(explanation: HomeRealmExplanation, client: HomeRealmClient, enabled: readonly HomeRealmProvider[]): LoginPage {
  const { decision, candidates } = explanation;
  const offered = enabled.filter((p) => candidates.includes(p.alias));
  const unmatched = decision.action === 'picker' ? decision.unmatchedDomain : undefined;
  return {
    providers: offered.map((p) => ({ alias: p.alias, display_name: p.displayName })),
    emailFirst: offered.some((p) => p.domains.length > 0),
    localLogin: client.localLogin,
    notice: unmatched !== undefined ? `No sign-in provider is set up for "${unmatched}". Choose one below.` : undefined,
  };
}

/**
 * The login page with home-realm discovery: redirects straight to the provider the rules pick,
 * answers a disallowed hint with an OAuth error, else shows the picker. Form posts to the page
 * (password login) only ask what the page offers; they are never redirected.
 */
export function homeRealmLoginPage(deps: { providers: Pick<ProviderRepository, 'listEnabled'> }): LoginPagePolicy {
  return async (details, client, req) => {
    const enabled = await loadHomeRealmProviders(deps.providers);
    const params = details.params as Record<string, unknown>;
    const clientRules = homeRealmClient(client);
    const explanation = decideHomeRealm(homeRealmInput(params, req), clientRules, enabled);
    const { decision } = explanation;
    if (req.method === 'GET' && decision.action === 'redirect') return { redirect: startUrl(decision.provider, details.uid) };
    if (decision.action === 'error') {
      return {
        error: 'invalid_request',
        errorDescription:
          decision.error === 'provider_not_allowed'
            ? `${explanation.rule} names provider "${decision.provider}", which this client may not use`
            : `${explanation.rule} names provider "${decision.provider}", which does not exist or is disabled`,
      };
    }
    // The picker, or a form post while a rule would redirect: offer every candidate.
    return pickerPage(explanation, clientRules, enabled);
  };
}
