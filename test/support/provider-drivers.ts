import type { TestApp } from './federation.ts';
import { addOidcProvider, isUpstreamLogin, signInUpstream } from './federation.ts';
import type { HttpSession, PageResponse } from './http-session.ts';
import { addOAuth2Provider, GITHUB_PROFILES, startOAuth2Upstream, type OAuth2Upstream } from './oauth2-upstream.ts';
import { addSamlProvider, answer, goToSamlIdp, postToAcs, spCertificateOf } from './saml-federation.ts';
import { TestSamlIdp, generateTestKey, type TestKey } from './saml-idp.ts';
import type { TestServer } from './server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from './upstream-idp.ts';

/** The two upstream users every driver can sign in. */
export type SuiteUser = 'first' | 'second';

/** A login started at Realmgate whose browser now stands at the upstream IdP. */
export interface PendingLogin {
  browser: HttpSession;
  server: TestServer;
  alias: string;
  /** Protocol state the driver needs to answer (the upstream's page, the AuthnRequest). */
  state: unknown;
}

/**
 * One provider kind as the shared provider suite drives it: a real upstream of that protocol,
 * a way to store a provider pointing at it, and the upstream's half of a login.
 */
export interface ProviderDriver {
  readonly kind: 'oidc' | 'saml' | 'oauth2';
  start(): Promise<void>;
  close(): Promise<void>;
  /** Stores an enabled provider `alias` of this kind at `server`, pointing at the upstream. */
  addProvider(server: TestServer, alias: string, input: { displayName: string; domains: string[] }): Promise<void>;
  /** Follows Realmgate's redirects from the application's authorization URL to the upstream. */
  begin(server: TestServer, alias: string, authorizationUrl: URL, browser: HttpSession): Promise<PendingLogin>;
  /** The upstream signs `user` in and answers Realmgate (`forged`: with a signature Realmgate must refuse); follows redirects up to `stopAt`. */
  complete(pending: PendingLogin, user: SuiteUser, stopAt: string, options?: { forged?: boolean }): Promise<PageResponse>;
  /** The upstream subject and email of `user`, as Realmgate links and stores them. */
  identityOf(user: SuiteUser): { subject: string; email: string };
  /** The upstream issuer recorded with the local session. */
  upstreamIssuer(): string;
}

/** The OpenID Connect driver: a real oidc-provider upstream with its own sign-in page. */
export function oidcDriver(): ProviderDriver {
  let idp: UpstreamIdp;
  const users = { first: UPSTREAM_USERS[0]!, second: UPSTREAM_USERS[1]! };
  return {
    kind: 'oidc',
    async start() {
      idp = await startUpstreamIdp();
    },
    async close() {
      await idp?.close();
    },
    async addProvider(server, alias, input) {
      await addOidcProvider(server.node, server.url, idp, { alias, ...input });
    },
    async begin(server, alias, authorizationUrl, browser) {
      const page = await browser.follow(authorizationUrl);
      if (!isUpstreamLogin(page, idp)) throw new Error(`not at the upstream sign-in page: ${page.status} ${page.url}`);
      return { browser, server, alias, state: page };
    },
    async complete(pending, user, stopAt, options = {}) {
      idp.tamper.signWithForeignKey = !!options.forged;
      try {
        return await signInUpstream(pending.browser, pending.state as PageResponse, users[user], stopAt);
      } finally {
        idp.tamper.signWithForeignKey = false;
      }
    },
    identityOf: (user) => ({ subject: users[user].sub, email: users[user].email }),
    upstreamIssuer: () => idp.issuer,
  };
}

/** The SAML driver: a test IdP answering each AuthnRequest with a response signed by its key. */
export function samlDriver(): ProviderDriver {
  let idp: TestSamlIdp;
  let stranger: TestKey;
  const users = {
    first: { subject: 'first-user', email: 'first@suite.example', name: 'First User' },
    second: { subject: 'second-user', email: 'second@suite.example', name: 'Second User' },
  };
  return {
    kind: 'saml',
    async start() {
      idp = await TestSamlIdp.create('https://idp.suite.example/saml');
      stranger = await generateTestKey('not the IdP');
    },
    async close() {
      await idp?.close();
    },
    async addProvider(server, alias, input) {
      await addSamlProvider(server.node, idp, { alias, ...input });
    },
    async begin(server, alias, authorizationUrl, browser) {
      const at = await goToSamlIdp(browser, authorizationUrl, idp, await spCertificateOf(server.node, alias));
      return { browser, server, alias, state: at.request };
    },
    async complete(pending, user, stopAt, options = {}) {
      const request = pending.state as Awaited<ReturnType<typeof goToSamlIdp>>['request'];
      const u = users[user];
      const response = await idp.response(
        answer(pending.server.url, pending.alias, request, {
          nameId: u.subject,
          attributes: [
            { name: 'urn:oid:0.9.2342.19200300.100.1.3', friendlyName: 'mail', values: [u.email] },
            { name: 'urn:oid:2.16.840.1.113730.3.1.241', friendlyName: 'displayName', values: [u.name] },
          ],
          ...(options.forged ? { signingKey: stranger } : {}),
        }),
      );
      return postToAcs(pending.browser, pending.server.url, pending.alias, response, request.relayState, stopAt);
    },
    identityOf: (user) => ({ subject: users[user].subject, email: users[user].email }),
    upstreamIssuer: () => idp.entityId,
  };
}

/**
 * The OAuth 2.0 driver: a plain OAuth 2.0 authorization server (oidc-provider, no ID token) with
 * a GitHub-shaped `/user` and `/user/emails` API. A forged answer is a code the server never issued.
 */
export function oauth2Driver(): ProviderDriver {
  let upstream: OAuth2Upstream;
  const users = { first: UPSTREAM_USERS[0]!, second: UPSTREAM_USERS[1]! };
  return {
    kind: 'oauth2',
    async start() {
      upstream = await startOAuth2Upstream();
    },
    async close() {
      await upstream?.close();
    },
    async addProvider(server, alias, input) {
      await addOAuth2Provider(server.node, server.url, upstream, { alias, ...input });
    },
    async begin(server, alias, authorizationUrl, browser) {
      const page = await browser.follow(authorizationUrl);
      if (!isUpstreamLogin(page, upstream.idp)) throw new Error(`not at the upstream sign-in page: ${page.status} ${page.url}`);
      return { browser, server, alias, state: page };
    },
    async complete(pending, user, stopAt, options = {}) {
      if (!options.forged) return signInUpstream(pending.browser, pending.state as PageResponse, users[user], stopAt);
      const callback = `${pending.server.url}/federation/${pending.alias}/callback`;
      const answer = await signInUpstream(pending.browser, pending.state as PageResponse, users[user], callback);
      if (answer.status !== 0) throw new Error(`the upstream did not answer the callback: ${answer.status} ${answer.url}`);
      answer.url.searchParams.set('code', 'a-code-the-server-never-issued');
      return pending.browser.follow(answer.url, {}, stopAt);
    },
    identityOf: (user) => {
      const profile = GITHUB_PROFILES[users[user].sub]!;
      return { subject: String(profile.id), email: profile.emails.find((e) => e.primary)!.email };
    },
    upstreamIssuer: () => upstream.issuer,
  };
}
