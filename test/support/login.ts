import * as oidc from 'openid-client';
import { expect } from 'vitest';
import { HttpSession, readForm, type PageResponse } from './http-session.ts';

/** An application's view of Realmgate: openid-client discovery over plain HTTP on loopback. */
export async function discoverAs(issuer: string, clientId: string, clientSecret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, clientSecret, clientSecret ? undefined : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** What an authorization request started with: the checks the application must make on the callback. */
export interface StartedLogin {
  url: URL;
  codeVerifier: string;
  state: string;
  nonce: string;
  browser: HttpSession;
}

/** Builds an authorization request (PKCE, state, nonce; optionally pushed with PAR) and opens it in a cookie-jar browser. */
export async function startLogin(
  config: oidc.Configuration,
  options: { redirectUri: string; scope?: string; params?: Record<string, string>; par?: boolean; browser?: HttpSession },
): Promise<StartedLogin & { page: PageResponse }> {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params = {
    redirect_uri: options.redirectUri,
    scope: options.scope ?? 'openid email profile offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...options.params,
  };
  const url = options.par ? await oidc.buildAuthorizationUrlWithPAR(config, params) : oidc.buildAuthorizationUrl(config, params);
  const browser = options.browser ?? new HttpSession();
  const page = await browser.follow(url, {}, options.redirectUri);
  return { url, codeVerifier, state, nonce, browser, page };
}

/** Submits the password form on a login page and returns where the browser ends up (the app callback has status 0). */
export async function submitPassword(browser: HttpSession, page: PageResponse, email: string, password: string, stopAt: string): Promise<PageResponse> {
  const form = readForm(page, /\/login$/);
  return browser.submit(form.action, { ...form.fields, email, password }, stopAt);
}

/** Full password login through the real pages; returns the tokens the application gets. */
export async function passwordLogin(
  config: oidc.Configuration,
  options: { redirectUri: string; email: string; password: string; scope?: string; params?: Record<string, string>; par?: boolean; DPoP?: oidc.DPoPHandle; browser?: HttpSession },
): Promise<{ tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers; browser: HttpSession }> {
  const started = await startLogin(config, options);
  expect(started.page.status, started.page.body.slice(0, 500)).toBe(200);
  let landed = await submitPassword(started.browser, started.page, options.email, options.password, options.redirectUri);
  if (landed.status === 200 && /\/confirm"/.test(landed.body)) {
    const consent = readForm(landed, /\/confirm$/);
    landed = await started.browser.submit(consent.action, consent.fields, options.redirectUri);
  }
  expect(landed.status, landed.body.slice(0, 500)).toBe(0);
  const tokens = await oidc.authorizationCodeGrant(
    config,
    landed.url,
    { pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: started.nonce },
    undefined,
    options.DPoP ? { DPoP: options.DPoP } : undefined,
  );
  return { tokens, browser: started.browser };
}
