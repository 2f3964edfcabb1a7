import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideHomeRealm, explainHomeRealm, type HomeRealmProvider } from '../../src/federation/home-realm.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, isUpstreamLogin, registerApp, signInUpstream, type TestApp } from '../support/federation.ts';
import { LAST_PROVIDER_COOKIE } from '../../src/interaction/login-page.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;

describe('decideHomeRealm', () => {
  const enabled: HomeRealmProvider[] = [
    { alias: 'acme', displayName: 'Acme', domains: ['acme.example'] },
    { alias: 'globex', displayName: 'Globex', domains: ['globex.example'] },
    { alias: 'initech', displayName: 'Initech', domains: [] },
  ];
  const all = { localLogin: true };
  const onlyAcmeGlobex = { allowedProviders: ['acme', 'globex'], localLogin: true };

  it('follows idp_hint first, then kc_idp_hint, then acr_values idp:<alias>', () => {
    expect(decideHomeRealm({ idpHint: 'globex', kcIdpHint: 'acme', acrValues: 'idp:initech' }, all, enabled)).toMatchObject({ rule: 'idp_hint', decision: { action: 'redirect', provider: 'globex' } });
    expect(decideHomeRealm({ kcIdpHint: 'acme', acrValues: 'idp:initech' }, all, enabled)).toMatchObject({ rule: 'kc_idp_hint', decision: { provider: 'acme' } });
    expect(decideHomeRealm({ acrValues: 'urn:mace:incommon:iap:silver idp:initech' }, all, enabled)).toMatchObject({ rule: 'acr_values', decision: { provider: 'initech' } });
  });

  it('refuses a hint naming a provider the client may not use, or one that does not exist, instead of falling back', () => {
    expect(decideHomeRealm({ idpHint: 'initech', loginHint: 'a@acme.example' }, onlyAcmeGlobex, enabled)).toEqual({
      rule: 'idp_hint',
      decision: { action: 'error', error: 'provider_not_allowed', provider: 'initech' },
      candidates: ['acme', 'globex'],
    });
    expect(decideHomeRealm({ kcIdpHint: 'nope' }, all, enabled)).toMatchObject({ rule: 'kc_idp_hint', decision: { action: 'error', error: 'provider_unknown' } });
  });

  it('uses the domain of login_hint after hints, and skips a domain whose provider the client may not use', () => {
    expect(decideHomeRealm({ loginHint: 'Ada@GLOBEX.example', lastUsed: 'acme' }, all, enabled)).toMatchObject({ rule: 'login_hint', decision: { provider: 'globex' } });
    expect(decideHomeRealm({ loginHint: 'ada@globex.example' }, { allowedProviders: ['acme'], localLogin: true }, enabled)).toMatchObject({ rule: 'picker' });
  });

  it('uses a typed email, and shows the picker with the domain when it matches nothing', () => {
    expect(decideHomeRealm({ email: 'bo@acme.example', lastUsed: 'globex' }, all, enabled)).toMatchObject({ rule: 'email', decision: { action: 'redirect', provider: 'acme' } });
    expect(decideHomeRealm({ email: 'bo@elsewhere.example' }, all, enabled)).toMatchObject({ rule: 'email', decision: { action: 'picker', unmatchedDomain: 'elsewhere.example' } });
  });

  it('uses the provider last used in this browser only when the client may use it', () => {
    expect(decideHomeRealm({ lastUsed: 'initech' }, all, enabled)).toMatchObject({ rule: 'last_used', decision: { provider: 'initech' } });
    expect(decideHomeRealm({ lastUsed: 'initech' }, onlyAcmeGlobex, enabled)).toMatchObject({ rule: 'picker' });
  });

  it('goes straight to the only candidate when there is no password form, else shows the picker', () => {
    expect(decideHomeRealm({}, { allowedProviders: ['globex'], localLogin: false }, enabled)).toMatchObject({ rule: 'single_provider', decision: { provider: 'globex' } });
    expect(decideHomeRealm({}, { allowedProviders: ['globex'], localLogin: true }, enabled)).toMatchObject({
      rule: 'picker',
      decision: { action: 'picker', providers: ['globex'], localLogin: true, emailFirst: true },
    });
    expect(decideHomeRealm({}, { allowedProviders: [], localLogin: true }, enabled)).toMatchObject({ decision: { providers: [], emailFirst: false } });
  });
});

let database: TestDatabase;
let server: TestServer;
let acme: UpstreamIdp;
let globex: UpstreamIdp;
let open: TestApp; // every provider, password login too
let picky: TestApp; // acme and globex only
let single: TestApp; // acme only, no password login
let duo: TestApp; // acme and initech, password login too

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  acme = await startUpstreamIdp();
  globex = await startUpstreamIdp();
  await addOidcProvider(server.node, server.url, acme, { alias: 'acme', displayName: 'Acme Corp', domains: ['acme.example'] });
  await addOidcProvider(server.node, server.url, globex, { alias: 'globex', displayName: 'Globex', domains: ['globex.example'] });
  await addOidcProvider(server.node, server.url, acme, { alias: 'initech', displayName: 'Initech' });
  await addOidcProvider(server.node, server.url, acme, { alias: 'hooli', displayName: 'Hooli (disabled)', enabled: false });
  open = await registerApp(server.node, server.url, 'open');
  picky = await registerApp(server.node, server.url, 'picky', { allowed_providers: ['acme', 'globex', 'hooli'], local_login: false });
  single = await registerApp(server.node, server.url, 'single', { allowed_providers: ['acme'], local_login: false });
  duo = await registerApp(server.node, server.url, 'duo', { allowed_providers: ['acme', 'initech'] });
});

afterAll(async () => {
  await server?.close();
  await acme?.close();
  await globex?.close();
  await database?.close();
});

async function begin(app: TestApp, params: Record<string, string> = {}, browser = new HttpSession()): Promise<{ page: PageResponse; browser: HttpSession }> {
  const { url } = await app.authorizationUrl(params);
  return { page: await browser.follow(url, {}, app.redirectUri), browser };
}

const providersOn = (page: PageResponse) => [...page.body.matchAll(/data-provider="([^"]+)"/g)].map((m) => m[1]);

describe('home-realm discovery on /authorize', () => {
  it('sends idp_hint, kc_idp_hint and acr_values idp:<alias> straight to that provider', async () => {
    expect(isUpstreamLogin((await begin(open, { idp_hint: 'globex' })).page, globex)).toBe(true);
    expect(isUpstreamLogin((await begin(open, { kc_idp_hint: 'globex' })).page, globex)).toBe(true);
    expect(isUpstreamLogin((await begin(open, { acr_values: 'idp:globex' })).page, globex)).toBe(true);
  });

  it('returns invalid_request to the application for a hint naming a provider it may not use, or a disabled one', async () => {
    const hints: Record<string, string>[] = [{ idp_hint: 'initech' }, { kc_idp_hint: 'hooli' }, { acr_values: 'idp:nope' }];
    for (const params of hints) {
      const { page } = await begin(picky, params);
      expect(page.status).toBe(0);
      expect(page.url.searchParams.get('error')).toBe('invalid_request');
      expect(page.url.searchParams.get('error_description')).toMatch(/may not use|does not exist or is disabled/);
    }
  });

  it('sends a login_hint to the provider that owns its domain', async () => {
    expect(isUpstreamLogin((await begin(open, { login_hint: 'wile@globex.example' })).page, globex)).toBe(true);
  });

  it('sends an email typed on the email-first form to the provider that owns its domain', async () => {
    const { page, browser } = await begin(open);
    expect(providersOn(page)).toEqual(['acme', 'globex', 'initech']);
    const discover = readForm(page, /\/discover$/);
    const next = await browser.submit(discover.action, { ...discover.fields, email: 'wile@globex.example' });
    expect(isUpstreamLogin(next, globex)).toBe(true);
  });

  it('asks for the password next when a typed email matches no provider and local login is on', async () => {
    const { page, browser } = await begin(open);
    const discover = readForm(page, /\/discover$/);
    const next = await browser.submit(discover.action, { ...discover.fields, email: 'someone@nowhere.example' });
    expect(next.status).toBe(200);
    expect(providersOn(next)).toEqual(['acme', 'globex', 'initech']);
    const password = readForm(next, /\/login$/);
    expect(next.body).toContain('value="someone@nowhere.example"');
    expect(next.body.match(/name="email"/g)).toHaveLength(1);
    expect(password.action.pathname).toMatch(/\/login$/);
  });

  it('shows the picker again with a notice when a typed email matches no provider and there is no local login', async () => {
    const { page, browser } = await begin(picky);
    const discover = readForm(page, /\/discover$/);
    const next = await browser.submit(discover.action, { ...discover.fields, email: 'someone@nowhere.example' });
    expect(next.status).toBe(200);
    expect(next.body).toContain('No sign-in provider is set up for &quot;nowhere.example&quot;');
    expect(providersOn(next)).toEqual(['acme', 'globex']);
    expect(next.body).not.toContain('name="password"');
  });

  it('goes to the provider last used in this browser', async () => {
    const { page, browser } = await begin(open);
    const pick = readForm(page, /\/federate$/);
    const upstream = await browser.submit(pick.action, { ...pick.fields, provider: 'globex' });
    expect((await signInUpstream(browser, upstream, alice, open.redirectUri)).status).toBe(0);
    // A later login in the same browser, signed out of Realmgate: the cookie now picks Globex.
    const returning = new HttpSession();
    await returning.jar.setCookie(`${LAST_PROVIDER_COOKIE}=globex; Path=/interaction`, server.url);
    const again = await begin(open, {}, returning);
    expect(isUpstreamLogin(again.page, globex)).toBe(true);
    // A client that may not use the remembered provider still gets its picker.
    const elsewhere = await begin(duo, { prompt: 'login' }, browser);
    expect(elsewhere.page.url.origin).toBe(server.url);
    expect(providersOn(elsewhere.page)).toEqual(['acme', 'initech']);
  });

  it('offers only the enabled providers the client allows, with the password form only when local login is on', async () => {
    const pickyPage = (await begin(picky)).page;
    expect(providersOn(pickyPage)).toEqual(['acme', 'globex']);
    expect(pickyPage.body).not.toContain('name="password"');
    expect(pickyPage.body).not.toContain('ask for your password');
    const openPage = (await begin(open)).page;
    expect(providersOn(openPage)).toEqual(['acme', 'globex', 'initech']);
    // Providers claim domains, so the email comes first and the password is its next step.
    expect(openPage.body).toContain('ask for your password');
    expect(openPage.body.match(/name="email"/g)).toHaveLength(1);
  });

  it('starts the provider chosen in the picker', async () => {
    const { page, browser } = await begin(picky);
    const form = readForm(page, /\/federate$/);
    const next = await browser.submit(form.action, { ...form.fields, provider: 'globex' });
    expect(isUpstreamLogin(next, globex)).toBe(true);
  });

  it('refuses a picker post or a start URL for a provider the client may not use', async () => {
    const { page, browser } = await begin(picky);
    const form = readForm(page, /\/federate$/);
    const posted = await browser.submit(form.action, { ...form.fields, provider: 'initech' });
    expect(posted.status).toBe(403);
    expect(posted.body).toMatch(/does not allow that sign-in provider/);
    const uid = /\/interaction\/([^/]+)\/federate/.exec(form.action.pathname)![1]!;
    const started = await browser.follow(`${server.url}/federation/initech/start?interaction=${uid}`);
    expect(started.status).toBe(403);
  });

  it('redirects straight to the only provider a client without local login may use', async () => {
    expect(isUpstreamLogin((await begin(single)).page, acme)).toBe(true);
  });
});

describe('explainHomeRealm', () => {
  it('explains the decision for a stored client with the rule and the candidates', async () => {
    const services = server.node.services;
    expect(await explainHomeRealm(services, { clientId: 'picky', loginHint: 'x@globex.example' })).toEqual({
      decision: { action: 'redirect', provider: 'globex' },
      rule: 'login_hint',
      candidates: ['acme', 'globex'],
    });
    await expect(explainHomeRealm(services, { clientId: 'nobody' })).rejects.toMatchObject({ code: 'not_found', status: 404 });
  });
});
