/**
 * The `oauth2` kind beyond the shared provider suite: created through the admin API, PKCE on and
 * off, the user cancelling upstream, and bad answers (no subject, no verified email) that change
 * nothing. The upstream is a plain OAuth 2.0 server with a GitHub-shaped API (test/support/oauth2-upstream.ts).
 */
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { federatedLogin, isUpstreamLogin, loginFootprint, registerApp, signInUpstream, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession } from '../support/http-session.ts';
import { GITHUB_PROFILES, startOAuth2Upstream, type OAuth2Upstream } from '../support/oauth2-upstream.ts';
import type { TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let upstream: OAuth2Upstream;
let app: TestApp;
const [alice, bob] = [() => upstream.users[0]!, () => upstream.users[1]!];

/** Creates provider `alias` through the admin API, pointing at the test upstream, with `extra` settings and fields. */
async function createProvider(alias: string, extra: { settings?: Record<string, unknown>; [field: string]: unknown } = {}) {
  const { clientId, clientSecret } = upstreamClientFor(alias);
  upstream.idp.addClient({ client_id: clientId, client_secret: clientSecret, redirect_uris: [`${server.url}/federation/${alias}/callback`] });
  const { settings, ...fields } = extra;
  return api.post('/providers', {
    alias,
    kind: 'oauth2',
    display_name: `Social ${alias}`,
    settings: { ...upstream.settings(clientId), ...settings },
    secrets: { client_secret: clientSecret },
    ...fields,
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  upstream = await startOAuth2Upstream();
  app = await registerApp(server.node, server.url, 'social-app', { local_login: false });
});

afterEach(() => {
  upstream.tamper.noSubject = false;
  upstream.tamper.unverifiedEmails = false;
});

afterAll(async () => {
  await server?.close();
  await upstream?.close();
  await database?.close();
});

describe('an oauth2 provider added through the admin API', () => {
  it('is created with its secret write-only and signs a user in with the primary verified email', async () => {
    const created = await createProvider('hub', { email_trust: 'any' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ alias: 'hub', kind: 'oauth2', email_trust: 'any', secrets_set: ['client_secret'] });
    expect(created.text).not.toContain(upstreamClientFor('hub').clientSecret);

    const { tokens, claims } = await federatedLogin(app, upstream.idp, alice(), { params: { idp_hint: 'hub', scope: 'openid email profile' } });
    expect(claims.idp).toBe('hub');
    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ email: alice().email, email_verified: true, name: 'Alice Octo' });
    const link = await database.db('external_identities').where({ provider_alias: 'hub', subject: String(GITHUB_PROFILES[alice().sub]!.id) }).first();
    expect(link.account_id).toBe(claims.sub);
  });

  it('is tested without a user: endpoints answer, the client credentials are accepted, and what it cannot check is said', async () => {
    const tested = await api.post('/providers/hub/test');
    expect(tested.status).toBe(200);
    const byName = Object.fromEntries((tested.body.checks as { name: string; ok: boolean; detail?: string }[]).map((c) => [c.name, c]));
    expect(tested.body.ok).toBe(true);
    expect(Object.keys(byName)).toEqual(['kind', 'settings', 'open', 'identity_source', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'emails_endpoint', 'not_checked']);
    expect(byName.token_endpoint!.detail).toContain('accepted the client credentials');
    expect(byName.not_checked!.detail).toContain('redirect URI');

    const { clientId } = upstreamClientFor('hub');
    await createProvider('wrong-secret');
    expect((await api.patch('/providers/wrong-secret', { secrets: { client_secret: 'not-the-secret' }, settings: { ...upstream.settings(clientId), userinfo_endpoint: `${upstream.issuer}/api/nowhere` } })).status).toBe(200);
    const refused = await api.post('/providers/wrong-secret/test');
    expect(refused.body.ok).toBe(false);
    const failed = (refused.body.checks as { name: string; ok: boolean; detail?: string }[]).filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['token_endpoint', 'userinfo_endpoint']);
    expect(failed[0]!.detail).toContain('refused the client credentials');
  });

  it('lists every settings problem at once', async () => {
    const res = await api.post('/providers', {
      alias: 'broken-social',
      kind: 'oauth2',
      display_name: 'Broken',
      settings: { client_id: 'x', token_endpoint: 'ftp://x', subject_pointer: 'id', tenant: 'common', colour: 'red' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual([
      'secrets.client_secret',
      'settings.authorization_endpoint',
      'settings.colour',
      'settings.subject_pointer',
      'settings.tenant',
      'settings.token_endpoint',
      'settings.userinfo_endpoint',
    ]);
    expect(await database.db('identity_providers').where({ alias: 'broken-social' }).first()).toBeUndefined();
  });

  it('takes a preset with only the client credentials, and the preset\'s email trust unless one is given', async () => {
    const github = await api.post('/providers', { alias: 'gh', kind: 'oauth2', display_name: 'GitHub', settings: { preset: 'github', client_id: 'Iv1.abc' }, secrets: { client_secret: 's3cret' } });
    expect(github.status).toBe(201);
    expect(github.body).toMatchObject({ email_trust: 'any', settings: { preset: 'github', client_id: 'Iv1.abc' } });
    const facebook = await api.post('/providers', { alias: 'fb', kind: 'oauth2', display_name: 'Facebook', settings: { preset: 'facebook', client_id: '123' }, secrets: { client_secret: 's3cret' } });
    expect(facebook.body.email_trust).toBe('none');
    const chosen = await api.post('/providers', { alias: 'gh2', kind: 'oauth2', display_name: 'GitHub', email_trust: 'domains', settings: { preset: 'github', client_id: 'Iv1.abc' }, secrets: { client_secret: 's3cret' } });
    expect(chosen.body.email_trust).toBe('domains');
    const unknown = await api.post('/providers', { alias: 'gh3', kind: 'oauth2', display_name: 'X', settings: { preset: 'myspace', client_id: 'a' }, secrets: { client_secret: 's' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toContainEqual({ field: 'settings.preset', message: expect.stringContaining('github, google, microsoft, apple, facebook, gitlab, linkedin') });
  });
});

describe('an oauth2 login', () => {
  beforeAll(async () => {
    expect((await createProvider('plain', { settings: { pkce: false } })).status).toBe(201);
  });

  it('sends a PKCE S256 challenge when pkce is on, and none when it is off (and still signs in)', async () => {
    const withPkce = await new HttpSession().follow((await app.authorizationUrl({ idp_hint: 'hub' })).url, {}, `${upstream.issuer}/`);
    expect(withPkce.url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(withPkce.url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(withPkce.url.searchParams.get('scope')).toBe('read:user user:email');
    expect(withPkce.url.searchParams.get('state')).toBeTruthy();

    const withoutPkce = await new HttpSession().follow((await app.authorizationUrl({ idp_hint: 'plain' })).url, {}, `${upstream.issuer}/`);
    expect(withoutPkce.url.searchParams.has('code_challenge')).toBe(false);
    const { claims } = await federatedLogin(app, upstream.idp, bob(), { params: { idp_hint: 'plain' } });
    expect(claims.idp).toBe('plain');
  });

  it('returns access_denied to the application when the user cancels upstream, creating nothing', async () => {
    const browser = new HttpSession();
    const request = await app.authorizationUrl({ idp_hint: 'hub' });
    const page = await browser.follow(request.url);
    expect(isUpstreamLogin(page, upstream.idp)).toBe(true);
    const before = await loginFootprint(database.db);
    const cancel = /<form method="post" action="([^"]*\/abort)"/.exec(page.body)![1]!;
    const back = await browser.submit(new URL(cancel, page.url), {}, app.redirectUri);
    expect(Object.fromEntries(back.url.searchParams)).toMatchObject({ error: 'access_denied', state: request.state });
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('refuses an answer without a subject with a safe page and creates nothing', async () => {
    upstream.tamper.noSubject = true;
    const browser = new HttpSession();
    const page = await browser.follow((await app.authorizationUrl({ idp_hint: 'plain' })).url);
    const before = await loginFootprint(database.db);
    const refused = await signInUpstream(browser, page, alice(), app.redirectUri);
    expect(refused.status).toBe(502);
    expect(refused.body).toContain('We could not verify the answer from Social plain');
    expect(refused.body).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('treats an address the emails endpoint does not call verified as unverified: no silent link under trusted_email', async () => {
    const created = await createProvider('trusting', { email_trust: 'any', linking: 'trusted_email' });
    expect(created.status).toBe(201);
    const local = await addUser(server.node, { email: alice().email, password: 'alice-local-password' });
    upstream.tamper.unverifiedEmails = true;
    const browser = new HttpSession();
    const page = await browser.follow((await app.authorizationUrl({ idp_hint: 'trusting' })).url);
    const before = await loginFootprint(database.db);
    const stopped = await signInUpstream(browser, page, alice(), app.redirectUri);
    // Not linked silently: the person is asked to prove the account is theirs, and nothing changed.
    expect(stopped.status).toBe(200);
    expect(stopped.body).toContain('data-link-method="local"');
    expect(await loginFootprint(database.db)).toEqual(before);
    expect(await database.db('external_identities').where({ provider_alias: 'trusting' }).first()).toBeUndefined();

    upstream.tamper.unverifiedEmails = false;
    const { claims } = await federatedLogin(app, upstream.idp, alice(), { params: { idp_hint: 'trusting' } });
    expect(claims.sub).toBe(local.id);
  });
});

describe('oauth2 providers on the login page', () => {
  it('are buttons with their display names and icons from Realmgate\'s own origin, in the order of the client\'s allowed_providers', async () => {
    expect((await api.patch('/providers/hub', { settings: { icon_url: '/assets/icons/hub.svg' } })).status).toBe(200);
    const ordered = await registerApp(server.node, server.url, 'ordered-app', { local_login: false, allowed_providers: ['trusting', 'plain', 'hub'] });
    const page = await new HttpSession().follow((await ordered.authorizationUrl()).url);
    expect(page.status).toBe(200);
    const buttons = [...page.body.matchAll(/<button[^>]*data-provider="([^"]+)"[^>]*>([\s\S]*?)<\/button>/g)].map((m) => ({ alias: m[1], inner: m[2]! }));
    expect(buttons.map((b) => b.alias)).toEqual(['trusting', 'plain', 'hub']);
    expect(buttons[2]!.inner).toContain('<img src="/assets/icons/hub.svg" alt=""');
    expect(buttons[2]!.inner).toContain('Continue with Social hub');
    expect(buttons[0]!.inner).not.toContain('<img');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
  });

  it('refuses an icon from another origin, which the page\'s CSP would block', async () => {
    for (const icon of ['https://cdn.example/github.svg', '//cdn.example/github.svg', 'javascript:alert(1)']) {
      const res = await api.patch('/providers/hub', { settings: { icon_url: icon } });
      expect(res.status, icon).toBe(400);
      expect(res.body.errors).toContainEqual({ field: 'settings.icon_url', message: expect.stringContaining("Realmgate's own origin") });
    }
  });
});
