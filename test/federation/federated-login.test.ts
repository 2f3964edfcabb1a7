import { signsOutUpstream } from '../../providers/types.ts';
import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { ProviderCache } from '../../src/federation/provider-cache.ts';
import { createOpenContext } from '../../src/federation/upstream-fetch.ts';
import { addOidcProvider, federatedLogin, isUpstreamLogin, redirectTo, registerApp, signInUpstream, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const [alice, bob] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number], (typeof UPSTREAM_USERS)[number]];

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  idp = await startUpstreamIdp();
  await addOidcProvider(server.node, server.url, idp, {
    alias: 'acme',
    displayName: 'Acme Corp',
    domains: ['acme.example'],
    settings: { scopes: ['openid', 'email', 'profile', 'groups'] },
  });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

describe('a federated login through an upstream OpenID Connect provider', () => {
  it('signs the user in with idp and amr claims, links the upstream identity and stores the upstream session', async () => {
    const { tokens, claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });

    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload } = await jose.jwtVerify(tokens.id_token!, jwks, { issuer: server.url, audience: 'web' });
    expect(payload.idp).toBe('acme');
    expect(payload.amr).toContain('fed');
    expect(payload.sub).toBe(claims.sub);

    const link = await database.db('external_identities').where({ provider_alias: 'acme', subject: alice.sub }).first();
    expect(link.account_id).toBe(claims.sub);

    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, idp: 'acme', email: alice.email, email_verified: true, name: alice.name, given_name: 'Alice', family_name: 'Example' });
    expect(userinfo.amr).toContain('fed');

    const session = await database.db('login_sessions').where({ account_id: claims.sub }).first();
    expect(session).toMatchObject({ idp: 'acme', upstream_issuer: idp.issuer, upstream_subject: alice.sub });
    expect(session.upstream_session_id).toEqual(expect.any(String));
  });

  it('signs the same upstream user into the same account on a second login', async () => {
    const first = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    const second = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    expect(second.claims.sub).toBe(first.claims.sub);
    const links = await database.db('external_identities').where({ provider_alias: 'acme', subject: alice.sub });
    expect(links).toHaveLength(1);
  });

  it('provisions a separate account for a different upstream user', async () => {
    const a = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    const b = await federatedLogin(app, idp, bob, { params: { idp_hint: 'acme' } });
    expect(b.claims.sub).not.toBe(a.claims.sub);
    const account = await server.node.services.accounts.get(String(b.claims.sub));
    expect(account).toMatchObject({ email: bob.email, emailVerified: false, name: bob.name, hasPassword: false });
    expect(account!.claims.groups).toEqual(['sales']);
  });

  it('reuses the upstream session when the browser is already signed in there', async () => {
    const browser = new HttpSession();
    const first = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' }, browser });
    // A new application session in the same browser: Realmgate's session answers without going upstream.
    const again = await federatedLogin(app, idp, { email: 'nobody', password: 'never-asked' }, { params: { idp_hint: 'acme' }, browser });
    expect(again.claims.sub).toBe(first.claims.sub);
  });

  it('lets another node finish a login that one node started', async () => {
    // Node B shares the database and the issuer; only the upstream callback and the return to the interaction reach it.
    const nodeB = await startTestServer(database.db, { ISSUER: server.url });
    try {
      const browser = new HttpSession();
      const request = await app.authorizationUrl({ idp_hint: 'acme' });
      const page = await browser.follow(request.url, {}, app.redirectUri);
      const atCallback = await signInUpstream(browser, page, bob, `${server.url}/federation/acme/callback`);
      expect(atCallback.status).toBe(0);
      const onB = new URL(atCallback.url.pathname + atCallback.url.search, nodeB.url);
      const back = await browser.follow(onB, {}, app.redirectUri);
      expect(back.status).toBe(0);
      const tokens = await app.redeem(request, back.url);
      expect(tokens.claims()).toMatchObject({ idp: 'acme' });
    } finally {
      await nodeB.close();
    }
  });

  it('gives the upstream end_session URL for signing out there, with the ID token as hint', async () => {
    const ready = await new ProviderCache({
      providers: server.node.services.providers,
      context: createOpenContext(server.config),
      logger: server.node.services.logger,
    }).get('acme');
    if (!signsOutUpstream(ready.opened)) throw new Error('oidc providers sign out upstream');
    const start = await ready.opened.startLogout({ subject: alice.sub, idToken: 'header.payload.signature' }, { returnUrl: `${server.url}/federation/acme/logged-out`, transactionId: 'xyz' });
    if (start?.type !== 'redirect') throw new Error('an OIDC sign-out is a redirect');
    const logout = new URL(start.url);
    expect(logout.origin + logout.pathname).toBe(`${idp.issuer}/session/end`);
    expect(Object.fromEntries(logout.searchParams)).toEqual({
      client_id: upstreamClientFor('acme').clientId,
      id_token_hint: 'header.payload.signature',
      post_logout_redirect_uri: `${server.url}/federation/acme/logged-out`,
      state: 'xyz',
    });
  });

  it('passes login_hint, prompt=login and max_age upstream with PKCE, state and nonce, and the upstream asks again', async () => {
    const browser = new HttpSession();
    await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' }, browser });
    const { url } = await app.authorizationUrl({ idp_hint: 'acme', prompt: 'login', login_hint: alice.email, max_age: '600' });
    const upstream = await redirectTo(browser, url, idp.issuer);
    expect(Object.fromEntries(upstream.searchParams)).toMatchObject({
      login_hint: alice.email,
      prompt: 'login',
      max_age: '600',
      response_type: 'code',
      code_challenge_method: 'S256',
      redirect_uri: `${server.url}/federation/acme/callback`,
      scope: 'openid email profile groups',
    });
    expect(upstream.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    expect(upstream.searchParams.get('nonce')).toBeTruthy();
    expect(upstream.searchParams.get('code_challenge')).toBeTruthy();
    // The upstream session exists, yet prompt=login makes the upstream show its sign-in form.
    const page = await browser.follow(upstream);
    expect(isUpstreamLogin(page, idp)).toBe(true);
    // max_age makes openid-client require auth_time in the upstream ID token; the login completes.
    const back = await signInUpstream(browser, page, alice, app.redirectUri);
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('code')).toBeTruthy();
  });
});
