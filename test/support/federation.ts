import * as oidc from 'openid-client';
import type { Knex } from 'knex';
import type { ClientMetadata } from 'oidc-provider';
import type { Realmgate } from '../../src/app.ts';
import type { ProviderInput } from '../../src/store/providers.ts';
import { addClient } from './fixtures.ts';
import { HttpSession, readForm, type PageResponse } from './http-session.ts';
import { discoverAs } from './login.ts';
import type { UpstreamIdp, UpstreamUser } from './upstream-idp.ts';

/** Realmgate's client at an upstream test IdP: the upstream's client_id and secret for provider `alias`. */
export function upstreamClientFor(alias: string): { clientId: string; clientSecret: string } {
  return { clientId: `realmgate-${alias}`, clientSecret: `${alias}-upstream-secret-0123456789` };
}

/**
 * Stores an OIDC provider pointing at `idp` through the repository (in a transaction) and
 * registers Realmgate as a client at the upstream with the callback URL of `server`.
 */
export async function addOidcProvider(
  node: Realmgate,
  serverUrl: string,
  idp: UpstreamIdp,
  input: {
    alias: string;
    displayName?: string;
    domains?: string[];
    settings?: Record<string, unknown>;
    secrets?: Record<string, string>;
    claimMappings?: Record<string, string>;
    enabled?: boolean;
    linkingPolicy?: ProviderInput['linkingPolicy'];
    /** Overrides of Realmgate's client registration at the upstream (auth method, jwks...). */
    upstreamClient?: Partial<ClientMetadata>;
  },
): Promise<void> {
  const { clientId, clientSecret } = upstreamClientFor(input.alias);
  idp.addClient({
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [`${serverUrl}/federation/${input.alias}/callback`],
    post_logout_redirect_uris: [`${serverUrl}/federation/${input.alias}/logged-out`],
    backchannel_logout_uri: `${serverUrl}/federation/${input.alias}/backchannel-logout`,
    backchannel_logout_session_required: true,
    ...input.upstreamClient,
  });
  const provider: ProviderInput = {
    alias: input.alias,
    kind: 'oidc',
    displayName: input.displayName ?? `${input.alias} IdP`,
    enabled: input.enabled ?? true,
    domains: input.domains ?? [],
    settings: { issuer: idp.issuer, client_id: clientId, ...input.settings },
    secrets: input.secrets ?? { client_secret: clientSecret },
    claimMappings: input.claimMappings ?? {},
    linkingPolicy: input.linkingPolicy,
  };
  await node.services.store.transaction((tx) => tx.providers.create(provider));
}

/** An application registered at Realmgate, driven by openid-client. */
export interface TestApp {
  clientId: string;
  redirectUri: string;
  config: oidc.Configuration;
  /** Builds an authorization URL; returns it with the PKCE verifier, state and nonce. */
  authorizationUrl(params?: Record<string, string>): Promise<AuthorizationRequest>;
  /** Redeems the code in `callback` (the redirect_uri the browser landed on) with the checks `request` started with. */
  redeem(request: AuthorizationRequest, callback: URL): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers>;
}

/** An authorization request of a test app: its URL and the checks its callback must pass. */
export interface AuthorizationRequest {
  url: URL;
  codeVerifier: string;
  state: string;
  nonce: string;
}

/** Registers a confidential code-flow client at Realmgate and discovers Realmgate with openid-client. */
export async function registerApp(node: Realmgate, serverUrl: string, clientId: string, metadata: Record<string, unknown> = {}): Promise<TestApp> {
  const redirectUri = `http://127.0.0.1:1/${clientId}/callback`;
  const secret = `${clientId}-secret-0123456789abcdef`;
  await addClient(node, {
    client_id: clientId,
    client_name: `${clientId} app`,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    require_consent: false,
    ...metadata,
  }, secret);
  const config = await discoverAs(serverUrl, clientId, secret);
  return {
    clientId,
    redirectUri,
    config,
    async authorizationUrl(params = {}) {
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...params,
      });
      return { url, codeVerifier, state, nonce };
    },
    redeem: (request, callback) =>
      oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce }),
  };
}

/** True when `page` is the upstream test IdP's sign-in form. */
export function isUpstreamLogin(page: PageResponse, idp: UpstreamIdp): boolean {
  return page.status === 200 && page.url.origin === idp.issuer && page.body.includes('Upstream IdP');
}

/** Signs `user` in on the upstream's form and follows redirects, stopping at `stopAt`. */
export async function signInUpstream(browser: HttpSession, page: PageResponse, user: Pick<UpstreamUser, 'email' | 'password'>, stopAt?: string): Promise<PageResponse> {
  const form = readForm(page, /\/login$/);
  return browser.submit(form.action, { ...form.fields, login: user.email, password: user.password }, stopAt);
}

/** Signs in at the app through Realmgate and the upstream; returns the tokens (the ID token claims checked by openid-client). */
export async function federatedLogin(
  app: TestApp,
  idp: UpstreamIdp,
  user: Pick<UpstreamUser, 'email' | 'password'>,
  options: { params?: Record<string, string>; browser?: HttpSession } = {},
) {
  const browser = options.browser ?? new HttpSession();
  const request = await app.authorizationUrl(options.params);
  let page = await browser.follow(request.url, {}, app.redirectUri);
  if (isUpstreamLogin(page, idp)) page = await signInUpstream(browser, page, user, app.redirectUri);
  // response_mode=form_post: the upstream answers with a page that posts itself to the callback.
  if (page.status === 200 && page.url.origin === idp.issuer && /\/federation\/[^/"]+\/callback"/.test(page.body)) {
    const post = readForm(page, /\/federation\/[^/]+\/callback$/);
    page = await browser.submit(post.action, post.fields, app.redirectUri);
  }
  if (page.status !== 0) throw new Error(`login did not reach the application: ${page.status} ${page.url}\n${page.body.slice(0, 1500)}`);
  const tokens = await app.redeem(request, page.url);
  return { tokens, claims: tokens.claims()!, browser };
}

/** Follows redirects from `start` and returns the first location on `origin`, unfetched. */
export async function redirectTo(browser: HttpSession, start: URL | string, origin: string): Promise<URL> {
  const page = await browser.follow(start, {}, `${origin}/`);
  if (page.status !== 0) throw new Error(`no redirect to ${origin}; stopped at ${page.status} ${page.url}\n${page.body.slice(0, 1500)}`);
  return page.url;
}

/** Rows that a login creates, to show a failure created none. */
export async function loginFootprint(db: Knex) {
  const count = async (q: Knex.QueryBuilder) => Number(((await q.count<{ n: string | number }[]>({ n: '*' }))[0]!).n);
  const artifacts = (model: string) => count(db('oidc_payloads').where({ model }));
  return {
    accounts: await count(db('accounts')),
    identities: await count(db('external_identities')),
    loginSessions: await count(db('login_sessions')),
    signedInSessions: await count(db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' is not null")),
    codes: await artifacts('AuthorizationCode'),
    accessTokens: await artifacts('AccessToken'),
    refreshTokens: await artifacts('RefreshToken'),
    grants: await artifacts('Grant'),
  };
}
