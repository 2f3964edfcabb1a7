import * as oidc from 'openid-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint } from '../support/federation.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { HttpSession, readForm } from '../support/http-session.ts';
import { discoverAs, passwordLogin, startLogin, submitPassword } from '../support/login.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const APP = 'http://127.0.0.1:1/app/callback';

let database: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_LOGIN_MAX_FAILURES: '3' });
  await addUser(server.node, { email: 'edsger@example.com', password: 'goto-considered-harmful' });
  await addUser(server.node, { email: 'barbara@example.com', password: 'liskov-substitution' });
  await addClient(server.node, {
    client_id: 'web',
    client_name: 'Web <App>',
    redirect_uris: [APP],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }, 'web-secret-web-secret');
  await addClient(server.node, {
    client_id: 'mobile',
    redirect_uris: [APP],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

// Bad input must create no account, session, code, token or grant.
let before: Awaited<ReturnType<typeof loginFootprint>>;
beforeEach(async () => {
  before = await loginFootprint(database.db);
});
const expectNothingIssued = async () => expect(await loginFootprint(database.db)).toEqual(before);

describe('bad input gets the right error and creates no session or token', () => {
  it('answers a wrong password and an unknown email with the same page', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const wrong = await startLogin(config, { redirectUri: APP });
    const wrongPage = await submitPassword(wrong.browser, wrong.page, 'barbara@example.com', 'not-her-password', APP);
    const unknown = await startLogin(config, { redirectUri: APP });
    const unknownPage = await submitPassword(unknown.browser, unknown.page, 'nobody@example.com', 'not-her-password', APP);
    for (const page of [wrongPage, unknownPage]) {
      expect(page.status).toBe(401);
      expect(page.body).toContain('Wrong email or password.');
      expect(page.body).toContain('name="password"');
    }
    expect(wrongPage.body.replace(/nobody|barbara/g, '').replace(/[\w-]{20,}/g, '')).toBe(unknownPage.body.replace(/nobody|barbara/g, '').replace(/[\w-]{20,}/g, ''));
    await expectNothingIssued();
  });

  it('escapes what it echoes into pages', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const started = await startLogin(config, { redirectUri: APP });
    expect(started.page.body).toContain('Web &lt;App&gt;');
    const page = await submitPassword(started.browser, started.page, '"><script>alert(1)</script>@x', 'x', APP);
    expect(page.body).not.toContain('<script>alert(1)</script>');
  });

  it('shows an error page with a reference for an unknown client', async () => {
    const browser = new HttpSession();
    const page = await browser.follow(`${server.url}/auth?client_id=nope&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(APP)}`);
    expect(page.status).toBe(400);
    expect(page.body).toMatch(/reference <code class="ref">[2-9A-Z]{4}-[2-9A-Z]{2}<\/code>/);
    await expectNothingIssued();
  });

  it('refuses an unregistered redirect_uri without redirecting to it', async () => {
    const browser = new HttpSession();
    const page = await browser.request(`${server.url}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`);
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.body).toContain('redirect_uri');
    await expectNothingIssued();
  });

  it('refuses a public client that does not use PKCE', async () => {
    const browser = new HttpSession();
    const page = await browser.request(`${server.url}/auth?client_id=mobile&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(APP)}&state=s1`);
    expect(page.status).toBe(303);
    const location = new URL(page.headers.get('location')!);
    expect(location.toString().startsWith(APP)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/PKCE/);
    await expectNothingIssued();
  });

  it('rejects a tampered CSRF token', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const started = await startLogin(config, { redirectUri: APP });
    const form = readForm(started.page, /\/login$/);
    const page = await started.browser.submit(form.action, { ...form.fields, csrf: `${form.fields.csrf}x`, email: 'barbara@example.com', password: 'liskov-substitution' }, APP);
    expect(page.status).toBe(403);
    expect(page.body).toContain('This form was already used or has expired.');
    expect(page.body).toMatch(/class="ref"/);
    await expectNothingIssued();
  });

  it('rejects a form posted from another browser (no interaction cookie)', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const started = await startLogin(config, { redirectUri: APP });
    const form = readForm(started.page, /\/login$/);
    const page = await new HttpSession().submit(form.action, { ...form.fields, email: 'barbara@example.com', password: 'liskov-substitution' }, APP);
    expect(page.status).toBe(400);
    expect(page.body).toContain('has expired');
    await expectNothingIssued();
  });

  it('rejects an expired interaction', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const started = await startLogin(config, { redirectUri: APP });
    const uid = started.page.url.pathname.split('/').pop()!;
    await database.db('oidc_payloads').where({ model: 'Interaction', id: uid }).update({ expires_at: new Date(Date.now() - 1000) });
    const page = await submitPassword(started.browser, started.page, 'barbara@example.com', 'liskov-substitution', APP);
    expect(page.status).toBe(400);
    expect(page.body).toContain('Your sign-in took too long and has expired.');
    await expectNothingIssued();
  });

  it('throttles repeated failures for an account, even with the right password afterwards', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    for (let i = 0; i < 3; i++) {
      const s = await startLogin(config, { redirectUri: APP });
      expect((await submitPassword(s.browser, s.page, 'edsger@example.com', `guess-${i}`, APP)).status).toBe(401);
    }
    const s = await startLogin(config, { redirectUri: APP });
    const page = await submitPassword(s.browser, s.page, 'edsger@example.com', 'goto-considered-harmful', APP);
    expect(page.status).toBe(429);
    expect(page.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(page.body).toContain('Too many failed attempts');
    await expectNothingIssued();
  });

  it('asks for consent and returns access_denied when the user denies', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const s = await startLogin(config, { redirectUri: APP, scope: 'openid email' });
    const consent = await submitPassword(s.browser, s.page, 'barbara@example.com', 'liskov-substitution', APP);
    expect(consent.status).toBe(200);
    expect(consent.body).toContain('See your email address');
    const deny = readForm(consent, /\/abort$/);
    const back = await s.browser.submit(deny.action, deny.fields, APP);
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    await expect(oidc.authorizationCodeGrant(config, back.url, { pkceCodeVerifier: s.codeVerifier, expectedState: s.state })).rejects.toBeTruthy();
  });

  it('issues tokens after consent is given', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const { tokens } = await passwordLogin(config, { redirectUri: APP, email: 'barbara@example.com', password: 'liskov-substitution', scope: 'openid email' });
    expect(tokens.claims()?.idp).toBe('local');
  });
});
