/**
 * The `oauth2` presets: per preset, the authorization request Realmgate builds with the preset's
 * real endpoints (taken unfetched from the redirect: those hosts are never resolved), and a whole
 * login against a stand-in on 127.0.0.1 answering as the provider documents, the preset's
 * endpoints overridden by explicit settings (which win over the preset).
 */
import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, redirectTo, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { startStandIn, type StandIn, type StandInClientAuth } from '../support/social-standin.ts';
import type { TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let app: TestApp;
const standIns: StandIn[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  app = await registerApp(server.node, server.url, 'social-presets', { local_login: false });
});

afterAll(async () => {
  for (const standIn of standIns) await standIn.close();
  await server?.close();
  await database?.close();
});

/** Creates provider `alias` with `settings` (a preset and credentials) through the admin API. */
async function create(alias: string, settings: Record<string, unknown>, secrets: Record<string, string> = { client_secret: `${alias}-secret` }, fields: Record<string, unknown> = {}) {
  const res = await api.post('/providers', { alias, kind: 'oauth2', display_name: `Preset ${alias}`, settings, secrets, ...fields });
  if (res.status !== 201) throw new Error(`provider ${alias} not created: ${res.status} ${res.text}`);
  return res.body;
}

/** The authorization request Realmgate sends the browser to for `alias`, unfetched (it is on `origin`). */
async function builtRequest(alias: string, origin: string, params: Record<string, string> = {}): Promise<URL> {
  return redirectTo(new HttpSession(), (await app.authorizationUrl({ idp_hint: alias, ...params })).url, origin);
}

/** The parameters every authorization request carries, and the callback of `alias`. */
function expectAuthorizationRequest(url: URL, alias: string, expected: { endpoint: string; clientId: string; scope: string; pkce: boolean }) {
  expect(`${url.origin}${url.pathname}`).toBe(expected.endpoint);
  expect(url.searchParams.get('client_id')).toBe(expected.clientId);
  expect(url.searchParams.get('response_type')).toBe('code');
  expect(url.searchParams.get('redirect_uri')).toBe(`${server.url}/federation/${alias}/callback`);
  expect(url.searchParams.get('scope')).toBe(expected.scope);
  expect(url.searchParams.get('state')).toMatch(/^[\w-]{20,}$/);
  expect(url.searchParams.get('code_challenge_method')).toBe(expected.pkce ? 'S256' : null);
}

/** A stand-in, closed after the file. */
async function standIn(auth: StandInClientAuth, options: { githubErrors?: boolean } = {}): Promise<StandIn> {
  const started = await startStandIn(auth, options);
  standIns.push(started);
  return started;
}

/** A whole login through `alias`; returns where it stopped, and the tokens' claims and userinfo when it reached the application. */
async function login(alias: string, at: StandIn): Promise<{ page: PageResponse; claims?: oidc.IDToken; userinfo?: oidc.UserInfoResponse }> {
  const browser = new HttpSession();
  const request = await app.authorizationUrl({ idp_hint: alias });
  let page = await browser.follow(request.url, {}, app.redirectUri);
  if (page.status === 200 && page.url.origin === at.url) {
    const post = readForm(page, /\/federation\/[^/]+\/callback$/);
    page = await browser.submit(post.action, post.fields, app.redirectUri);
  }
  if (page.status !== 0) return { page };
  const tokens = await app.redeem(request, page.url);
  const claims = tokens.claims()!;
  return { page, claims, userinfo: await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub) };
}

/** Runs `step` and checks it created no account, link, session or token. */
async function createsNothing(step: () => Promise<void>): Promise<void> {
  const before = await loginFootprint(database.db);
  await step();
  expect(await loginFootprint(database.db)).toEqual(before);
}

/** Expects the safe page a refused upstream answer shows. */
function expectRefused(page: PageResponse, alias: string) {
  expect(page.status).toBe(502);
  expect(page.body).toContain(`Preset ${alias}`);
  expect(page.body).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
}

describe('the github preset', () => {
  it('sends the browser to GitHub with read:user user:email, state and PKCE', async () => {
    await create('github', { preset: 'github', client_id: 'Iv1.github' });
    expectAuthorizationRequest(await builtRequest('github', 'https://github.com'), 'github', {
      endpoint: 'https://github.com/login/oauth/authorize', clientId: 'Iv1.github', scope: 'read:user user:email', pkce: true,
    });
  });

  it('signs in with the numeric id and the primary verified address of /user/emails, the secret posted', async () => {
    const at = await standIn({ method: 'client_secret_post', clientId: 'Iv1.hub', clientSecret: 'hub-secret' }, { githubErrors: true });
    await create('github-standin', {
      preset: 'github', client_id: 'Iv1.hub',
      authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, userinfo_endpoint: `${at.url}/userinfo`, emails_endpoint: `${at.url}/user/emails`,
    }, { client_secret: 'hub-secret' });
    at.answers = {
      userinfo: { login: 'octocat', id: 583231, name: 'The Octocat', email: null },
      emails: [
        { email: 'octo-old@github.example', primary: false, verified: true, visibility: null },
        { email: 'octocat@github.example', primary: true, verified: true, visibility: 'private' },
      ],
    };
    const { claims, userinfo } = await login('github-standin', at);
    expect(userinfo).toMatchObject({ email: 'octocat@github.example', email_verified: true, name: 'The Octocat' });
    expect(await database.db('external_identities').where({ provider_alias: 'github-standin', subject: '583231' }).first()).toMatchObject({ account_id: claims!.sub });
    expect(at.tokenRequests.at(-1)!.fields).toMatchObject({ client_id: 'Iv1.hub', client_secret: 'hub-secret', grant_type: 'authorization_code' });
    expect(at.tokenRequests.at(-1)!.fields.code_verifier).toMatch(/^[\w-]{43}$/);
  });

  it('refuses a code GitHub rejects (an error answered with HTTP 200), creating nothing', async () => {
    const at = standIns.at(-1)!;
    await createsNothing(async () => {
      const browser = new HttpSession();
      // The stand-in answers at once: its redirect to the callback is taken unfollowed, and its code replaced.
      const atCallback = await browser.follow((await app.authorizationUrl({ idp_hint: 'github-standin' })).url, {}, `${server.url}/federation/github-standin/callback`);
      expect(atCallback.status).toBe(0);
      const callback = atCallback.url;
      callback.searchParams.set('code', 'not-a-code-github-issued');
      const page = await browser.follow(callback, {}, app.redirectUri);
      expectRefused(page, 'github-standin');
      // Read as GitHub's own error (bad_verification_code), not as a malformed token response.
      expect(page.body).toContain('Preset github-standin did not complete your sign-in');
    });
    expect(at.authorizations.length).toBeGreaterThan(0);
  });
});

describe('the google preset', () => {
  it('sends the browser to Google with openid email profile, PKCE, the hosted domain and the login hint', async () => {
    await create('google', { preset: 'google', client_id: 'web.apps.googleusercontent.example', hd: 'example.com' });
    const url = await builtRequest('google', 'https://accounts.google.com', { login_hint: 'ann@example.com' });
    expectAuthorizationRequest(url, 'google', { endpoint: 'https://accounts.google.com/o/oauth2/v2/auth', clientId: 'web.apps.googleusercontent.example', scope: 'openid email profile', pkce: true });
    expect(url.searchParams.get('hd')).toBe('example.com');
    expect(url.searchParams.get('login_hint')).toBe('ann@example.com');
  });

  it('signs in a person of the hosted domain, and refuses one of another domain, creating nothing', async () => {
    const at = await standIn({ method: 'client_secret_basic', clientId: 'google-client', clientSecret: 'google-secret' });
    await create('google-standin', {
      preset: 'google', client_id: 'google-client', hd: 'example.com',
      authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, userinfo_endpoint: `${at.url}/userinfo`,
    }, { client_secret: 'google-secret' });
    at.answers = { userinfo: { sub: '110169484474386276334', email: 'ann@example.com', email_verified: true, hd: 'example.com', name: 'Ann Google' } };
    const { userinfo } = await login('google-standin', at);
    expect(userinfo).toMatchObject({ email: 'ann@example.com', email_verified: true, name: 'Ann Google' });
    expect(at.tokenRequests.at(-1)!.authorization).toMatch(/^Basic /);

    at.answers = { userinfo: { sub: '110169484474386276335', email: 'eve@gmail.example', email_verified: true, name: 'Eve' } };
    await createsNothing(async () => expectRefused((await login('google-standin', at)).page, 'google-standin'));
  });
});

describe('the gitlab preset', () => {
  it('sends the browser to GitLab with openid profile email and PKCE', async () => {
    await create('gitlab', { preset: 'gitlab', client_id: 'gl-app' });
    expectAuthorizationRequest(await builtRequest('gitlab', 'https://gitlab.com'), 'gitlab', { endpoint: 'https://gitlab.com/oauth/authorize', clientId: 'gl-app', scope: 'openid profile email', pkce: true });
  });

  it('signs in with GitLab\'s userinfo, an unconfirmed address released as unverified', async () => {
    const at = await standIn({ method: 'client_secret_basic', clientId: 'gl-client', clientSecret: 'gl-secret' });
    await create('gitlab-standin', {
      preset: 'gitlab', client_id: 'gl-client', authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, userinfo_endpoint: `${at.url}/userinfo`,
    }, { client_secret: 'gl-secret' });
    at.answers = { userinfo: { sub: '4711', name: 'Gil Lab', nickname: 'gil', email: 'gil@gitlab.example', email_verified: false } };
    const { userinfo } = await login('gitlab-standin', at);
    expect(userinfo).toMatchObject({ email: 'gil@gitlab.example', email_verified: false, name: 'Gil Lab' });
    expect(await database.db('external_identities').where({ provider_alias: 'gitlab-standin', subject: '4711' }).first()).toBeTruthy();
  });
});

describe('the facebook preset', () => {
  it('sends the browser to Facebook with email public_profile and PKCE', async () => {
    await create('facebook', { preset: 'facebook', client_id: '1234567890' });
    expectAuthorizationRequest(await builtRequest('facebook', 'https://www.facebook.com'), 'facebook', { endpoint: 'https://www.facebook.com/v19.0/dialog/oauth', clientId: '1234567890', scope: 'email public_profile', pkce: true });
  });

  it('asks /me for id, name and email and releases the address as unverified (Facebook does not say)', async () => {
    const at = await standIn({ method: 'client_secret_post', clientId: 'fb-app', clientSecret: 'fb-secret' });
    await create('facebook-standin', {
      preset: 'facebook', client_id: 'fb-app', authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, userinfo_endpoint: `${at.url}/me?fields=id,name,email`,
    }, { client_secret: 'fb-secret' });
    at.answers = { userinfo: { id: '10158034567890123', name: 'Fay Book', email: 'fay@facebook.example' } };
    const { userinfo } = await login('facebook-standin', at);
    expect(userinfo).toMatchObject({ email: 'fay@facebook.example', email_verified: false, name: 'Fay Book' });
    expect(at.resourceQueries.get('/me')!.get('fields')).toBe('id,name,email');
    expect((await api.get('/providers/facebook-standin')).body.email_trust).toBe('none');
  });
});

describe('the linkedin preset', () => {
  it('sends the browser to LinkedIn with openid profile email, without PKCE', async () => {
    await create('linkedin', { preset: 'linkedin', client_id: '86abc' });
    expectAuthorizationRequest(await builtRequest('linkedin', 'https://www.linkedin.com'), 'linkedin', { endpoint: 'https://www.linkedin.com/oauth/v2/authorization', clientId: '86abc', scope: 'openid profile email', pkce: false });
  });

  it('signs in with LinkedIn\'s userinfo', async () => {
    const at = await standIn({ method: 'client_secret_post', clientId: 'li-app', clientSecret: 'li-secret' });
    await create('linkedin-standin', {
      preset: 'linkedin', client_id: 'li-app', authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, userinfo_endpoint: `${at.url}/userinfo`,
    }, { client_secret: 'li-secret' });
    at.answers = { userinfo: { sub: '782bbtaQ', name: 'Lin Kedin', given_name: 'Lin', family_name: 'Kedin', email: 'lin@linkedin.example', email_verified: true } };
    const { userinfo } = await login('linkedin-standin', at);
    expect(userinfo).toMatchObject({ email: 'lin@linkedin.example', email_verified: true, name: 'Lin Kedin' });
    expect(at.tokenRequests.at(-1)!.fields.code_verifier).toBeUndefined();
  });
});

const TENANT = 'aaaaaaaa-1111-4111-8111-111111111111';
const OTHER_TENANT = 'bbbbbbbb-2222-4222-8222-222222222222';
const msIssuer = (tid: string) => `https://login.microsoftonline.com/${tid}/v2.0`;

describe('the microsoft preset', () => {
  it('sends the browser to the tenant\'s authorize endpoint with openid email profile, a nonce and PKCE', async () => {
    await create('microsoft', { preset: 'microsoft', client_id: '00000000-aaaa-bbbb-cccc-000000000001', tenant: 'organizations' });
    const url = await builtRequest('microsoft', 'https://login.microsoftonline.com', { login_hint: 'ann@contoso.example' });
    expectAuthorizationRequest(url, 'microsoft', { endpoint: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize', clientId: '00000000-aaaa-bbbb-cccc-000000000001', scope: 'openid email profile', pkce: true });
    expect(url.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
    expect(url.searchParams.get('login_hint')).toBe('ann@contoso.example');
  });

  describe('with tenant common and an allow-list', () => {
    let at: StandIn;
    const person = (tid: string, iss = msIssuer(tid)) => ({ idToken: { iss, tid, sub: `pairwise-${tid.slice(0, 4)}`, oid: crypto.randomUUID(), name: 'Meg Soft', email: 'meg@contoso.example' } });

    beforeAll(async () => {
      at = await standIn({ method: 'client_secret_post', clientId: 'ms-app', clientSecret: 'ms-secret' });
      await create('microsoft-standin', {
        preset: 'microsoft', client_id: 'ms-app', tenant: 'common', allowed_tenants: [TENANT],
        authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, jwks_uri: `${at.url}/jwks`,
      }, { client_secret: 'ms-secret' });
    });

    it('signs in a person of an allowed tenant from the verified ID token, the email unverified', async () => {
      at.answers = person(TENANT);
      const { userinfo } = await login('microsoft-standin', at);
      expect(userinfo).toMatchObject({ name: 'Meg Soft', email: 'meg@contoso.example', email_verified: false });
      expect(await database.db('login_sessions').where({ idp: 'microsoft-standin' }).first()).toMatchObject({ upstream_issuer: msIssuer(TENANT) });
    });

    it('refuses a tenant not on the allow-list, an issuer that is not the token\'s tenant, and another login\'s nonce, creating nothing', async () => {
      const otherNonce = { idToken: { ...person(TENANT).idToken, nonce: 'nonce-of-another-login' } };
      for (const answers of [person(OTHER_TENANT), person(TENANT, msIssuer(OTHER_TENANT)), otherNonce]) {
        at.answers = answers;
        await createsNothing(async () => expectRefused((await login('microsoft-standin', at)).page, 'microsoft-standin'));
      }
    });
  });

  it('with one tenant, refuses a token of another tenant', async () => {
    const at = await standIn({ method: 'client_secret_post', clientId: 'ms-single', clientSecret: 'ms-secret' });
    await create('microsoft-single', {
      preset: 'microsoft', client_id: 'ms-single', tenant: TENANT, authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, jwks_uri: `${at.url}/jwks`,
    }, { client_secret: 'ms-secret' });
    at.answers = { idToken: { iss: msIssuer(OTHER_TENANT), tid: OTHER_TENANT, sub: 'someone', name: 'X' } };
    await createsNothing(async () => expectRefused((await login('microsoft-single', at)).page, 'microsoft-single'));
    at.answers = { idToken: { iss: msIssuer(TENANT), tid: TENANT, sub: 'someone', name: 'X' } };
    expect((await login('microsoft-single', at)).claims?.idp).toBe('microsoft-single');
  });
});

describe('the apple preset', () => {
  const key = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const apple = { team_id: 'TEAM123456', key_id: 'KEY1234567' };

  it('needs the team id, key id and private key, and no client secret', async () => {
    const res = await api.post('/providers', { alias: 'apple-broken', kind: 'oauth2', display_name: 'Apple', settings: { preset: 'apple', client_id: 'com.example.web' }, secrets: { client_secret: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['secrets.client_secret', 'secrets.private_key', 'settings.key_id', 'settings.team_id']);
  });

  it('sends the browser to Apple with name email, form_post and a nonce', async () => {
    await create('apple', { preset: 'apple', client_id: 'com.example.web', ...apple }, { private_key: pem });
    const url = await builtRequest('apple', 'https://appleid.apple.com');
    expectAuthorizationRequest(url, 'apple', { endpoint: 'https://appleid.apple.com/auth/authorize', clientId: 'com.example.web', scope: 'name email', pkce: true });
    expect(url.searchParams.get('response_mode')).toBe('form_post');
    expect(url.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
  });

  describe('against a stand-in that verifies the client secret with the public key', () => {
    let at: StandIn;
    beforeAll(async () => {
      at = await standIn({ method: 'apple_jwt', clientId: 'com.example.standin', publicKey: key.publicKey, teamId: apple.team_id, keyId: apple.key_id });
      await create('apple-standin', {
        preset: 'apple', client_id: 'com.example.standin', ...apple, authorization_endpoint: `${at.url}/authorize`, token_endpoint: `${at.url}/token`, jwks_uri: `${at.url}/jwks`,
      }, { private_key: pem });
    });
    afterEach(() => {
      at.answers = {};
    });

    it('signs in through form_post with the verified ID token, and the name Apple sends on the first login', async () => {
      at.answers = {
        idToken: { iss: 'https://appleid.apple.com', sub: '001234.abcdef0123456789.1234', email: 'x7k2@privaterelay.appleid.example', email_verified: 'true', is_private_email: 'true' },
        appleUser: { name: { firstName: 'Ann', lastName: 'Apple' }, email: 'someone-else@evil.example' },
      };
      const { userinfo } = await login('apple-standin', at);
      expect(userinfo).toMatchObject({ email: 'x7k2@privaterelay.appleid.example', email_verified: true, name: 'Ann Apple', given_name: 'Ann', family_name: 'Apple' });
      const secret = at.tokenRequests.at(-1)!.fields.client_secret!;
      expect(secret.split('.')).toHaveLength(3);

      // Later logins carry no name: the account keeps the one of the first.
      at.answers = { idToken: at.answers.idToken };
      const again = await login('apple-standin', at);
      expect(again.userinfo).toMatchObject({ name: 'Ann Apple', email_verified: true });
    });

    it('is refused by Apple when the client secret is signed with another key, creating nothing', async () => {
      const other = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      expect((await api.patch('/providers/apple-standin', { secrets: { private_key: other } })).status).toBe(200);
      at.answers = { idToken: { iss: 'https://appleid.apple.com', sub: '009999.other', email: 'y@privaterelay.appleid.example', email_verified: 'true' } };
      await createsNothing(async () => expectRefused((await login('apple-standin', at)).page, 'apple-standin'));
    });
  });
});
