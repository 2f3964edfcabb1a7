/**
 * Account linking on the interaction state machine, with two real oidc-provider upstreams and a
 * cookie-jar browser walking the pages: confirmation with another provider, cancelling, the
 * planted-completion attack, concurrent first sign-ins, the account page, and the ways a person
 * gets back to the whole choice of sign-in methods.
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveFederatedIdentity } from '../../src/accounts/linking.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, isUpstreamLogin, loginFootprint, registerApp, signInUpstream, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp, type UpstreamUser } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;
const dave: UpstreamUser = { ...alice, sub: 'dave-0004', email: 'dave@acme.example', password: 'dave-upstream', name: 'Dave Example', given_name: 'Dave' };
const erin: UpstreamUser = { ...alice, sub: 'erin-0005', email: 'erin@acme.example', password: 'erin-upstream', name: 'Erin Example', given_name: 'Erin' };

let database: TestDatabase;
let server: TestServer;
let corp: UpstreamIdp;
let social: UpstreamIdp;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  corp = await startUpstreamIdp({ users: [alice, dave, erin] });
  social = await startUpstreamIdp({ users: [alice, dave, erin] });
  // The company IdP owns acme.example (its emails are trusted there) and asks before linking.
  await addOidcProvider(server.node, server.url, corp, { alias: 'corp', displayName: 'Acme Corp', domains: ['acme.example'] });
  // A social IdP that verifies every address it asserts, and never links by itself.
  await addOidcProvider(server.node, server.url, social, { alias: 'social', displayName: 'Social', linkingPolicy: { emailTrust: 'any', linking: 'none' } });
  app = await registerApp(server.node, server.url, 'linking-app');
});

afterAll(async () => {
  await server?.close();
  await corp?.close();
  await social?.close();
  await database?.close();
});

/** Starts a login at the app and follows it to the first page that is not a redirect (or the app). */
async function begin(params: Record<string, string>, browser = new HttpSession()) {
  const request = await app.authorizationUrl(params);
  return { request, browser, page: await browser.follow(request.url, {}, app.redirectUri) };
}

/** Signs `user` in at the upstream page the browser stands on, up to the app or a Realmgate page. */
async function atUpstream(browser: HttpSession, page: PageResponse, idp: UpstreamIdp, user: UpstreamUser): Promise<PageResponse> {
  expect(isUpstreamLogin(page, idp), `${page.status} ${page.url}`).toBe(true);
  return signInUpstream(browser, page, user, app.redirectUri);
}

async function finish(request: Awaited<ReturnType<TestApp['authorizationUrl']>>, page: PageResponse) {
  expect(page.status, page.body.slice(0, 800)).toBe(0);
  return (await app.redeem(request, page.url)).claims()!;
}

describe('link confirmation', () => {
  it('links after the person proves the account with another provider, then signs in with either', async () => {
    const first = await begin({ idp_hint: 'social' });
    const socialClaims = await finish(first.request, await atUpstream(first.browser, first.page, social, dave));

    const { request, browser, page } = await begin({ idp_hint: 'corp' });
    const confirm = await atUpstream(browser, page, corp, dave);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('data-link-method="social"');
    expect(confirm.body).not.toContain('data-link-method="local"');
    expect(confirm.body).toContain('Sign in with Social</button>');
    expect(confirm.body).toContain('To use <strong>Acme Corp</strong> with it');
    const viaSocial = readForm(confirm, /\/federate$/);
    // The proof is a fresh sign-in at the other provider.
    const upstream = await browser.submit(viaSocial.action, viaSocial.fields);
    const claims = await finish(request, await atUpstream(browser, upstream, social, dave));
    expect(claims).toMatchObject({ sub: socialClaims.sub, idp: 'corp' });

    const links = await database.db('external_identities').where({ account_id: socialClaims.sub }).orderBy('provider_alias');
    expect(links.map((l: { provider_alias: string }) => l.provider_alias)).toEqual(['corp', 'social']);
    const audit = await database.db('audit_log').where({ resource_type: 'user', resource_id: socialClaims.sub, action: 'link' }).first();
    expect(audit.after).toMatchObject({ provider: 'corp', subject: dave.sub, rule: 'confirm' });

    // Next time the company IdP signs straight into the same account.
    const again = await begin({ idp_hint: 'corp', prompt: 'login' });
    expect((await finish(again.request, await atUpstream(again.browser, again.page, corp, dave))).sub).toBe(socialClaims.sub);
  });

  it('ends the login with access_denied when the person cancels, linking nothing', async () => {
    const local = await addUser(server.node, { email: erin.email, password: 'erin-local-password' });
    const { browser, page } = await begin({ idp_hint: 'corp' });
    const confirm = await atUpstream(browser, page, corp, erin);
    expect(confirm.body).toContain('data-link-method="local"');
    expect(confirm.body).toContain('data-link-cancel');
    const before = await loginFootprint(database.db);
    const cancel = readForm(confirm, /\/abort$/);
    const back = await browser.submit(cancel.action, cancel.fields, app.redirectUri);
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    expect(await loginFootprint(database.db)).toEqual(before);
    expect(await database.db('external_identities').where({ account_id: local.id })).toEqual([]);
  });

  it('does not link when the password proves another account, and keeps the confirmation open', async () => {
    await addUser(server.node, { email: 'mallory@acme.example', password: 'mallory-password-1' });
    const { request, browser, page } = await begin({ idp_hint: 'corp', prompt: 'login' });
    const confirm = await atUpstream(browser, page, corp, erin);
    const form = readForm(confirm, /\/login$/);
    const wrong = await browser.submit(form.action, { ...form.fields, email: 'mallory@acme.example', password: 'mallory-password-1' }, app.redirectUri);
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain('not the account shown here');
    expect(await database.db('external_identities').where({ provider_alias: 'corp', subject: erin.sub })).toEqual([]);
    const right = readForm(wrong, /\/login$/);
    const claims = await finish(request, await browser.submit(right.action, { ...right.fields, password: 'erin-local-password' }, app.redirectUri));
    const local = (await server.node.services.accounts.findLocalByEmail(erin.email))!.account;
    expect(claims.sub).toBe(local.id);
  });
});

describe('binding every step to the browser that began it', () => {
  it('refuses to start a login for an interaction whose cookie this browser does not have, creating nothing', async () => {
    const victim = await begin({});
    const uid = victim.page.url.pathname.split('/')[2]!;
    expect(victim.page.url.pathname).toBe(`/interaction/${uid}`);
    const before = await loginFootprint(database.db);
    const attacker = new HttpSession();
    for (const start of [`${server.url}/federation/corp/start?interaction=${uid}`, `${server.url}/interaction/${uid}/start/corp`]) {
      const page = await attacker.follow(start);
      expect(page.status).toBe(400);
      expect(page.url.origin).toBe(server.url);
      expect(page.body).toContain('start again');
    }
    expect(await loginFootprint(database.db)).toEqual(before);
    // The browser that began it may use the same URL.
    expect(isUpstreamLogin(await victim.browser.follow(`${server.url}/federation/corp/start?interaction=${uid}`), corp)).toBe(true);
  });

  it("refuses a completion URL made in one browser when opened in another", async () => {
    const attacker = await begin({ idp_hint: 'corp', prompt: 'login' });
    const form = readForm(attacker.page, /\/login$/);
    const completion = await attacker.browser.submit(form.action, { ...form.fields, login: alice.email, password: alice.password }, `${server.url}/interaction/`);
    expect(completion.url.pathname).toMatch(/^\/interaction\/[^/]+\/federated\/corp\//);
    const victim = await begin({});
    const before = await loginFootprint(database.db);
    const planted = await victim.browser.follow(completion.url, {}, app.redirectUri);
    expect(planted.status).toBe(400);
    expect(await loginFootprint(database.db)).toEqual(before);
  });
});

describe('one identity, one account', () => {
  it('gives concurrent first sign-ins of one identity one account', async () => {
    const identity = {
      providerAlias: 'social',
      subject: 'concurrent-0001',
      profile: { email: 'concurrent@else.example', emailVerified: true, name: null, givenName: null, familyName: null, claims: {} },
      upstreamClaims: {},
    };
    const linking = { store: server.node.services.store };
    const policy = { emailTrust: 'any', linking: 'none', provisioning: 'auto' } as const;
    const results = await Promise.all(Array.from({ length: 6 }, () => resolveFederatedIdentity(linking, identity, policy)));
    const ids = new Set(results.map((r) => (r.type === 'account' ? r.account.id : r.type)));
    expect(ids.size).toBe(1);
    expect(await database.db('external_identities').where({ subject: 'concurrent-0001' })).toHaveLength(1);
    expect(await database.db('accounts').where({ email: 'concurrent@else.example' })).toHaveLength(1);
  });
});

describe('choosing another way to sign in', () => {
  it('advertises prompt=select_account and shows the whole choice for it, even with a remembered provider', async () => {
    const config = await oidc.discovery(new URL(server.url), app.clientId, 'x', undefined, { execute: [oidc.allowInsecureRequests] });
    expect(config.serverMetadata().prompt_values_supported).toContain('select_account');
    const browser = new HttpSession();
    await browser.jar.setCookie('rg_last_idp=corp; Path=/interaction', server.url);
    expect(isUpstreamLogin((await begin({}, browser)).page, corp)).toBe(true);
    const chosen = await begin({ prompt: 'select_account' }, new HttpSession());
    await chosen.browser.jar.setCookie('rg_last_idp=corp; Path=/interaction', server.url);
    const page = (await begin({ prompt: 'select_account' }, chosen.browser)).page;
    expect(page.url.origin).toBe(server.url);
    expect(page.body).toContain('data-provider="corp"');
    expect(page.body).toContain('data-provider="social"');
  });

  it('offers "use another way" on a page after the remembered provider, and shows every method from it', async () => {
    const browser = new HttpSession();
    await browser.jar.setCookie('rg_last_idp=corp; Path=/interaction', server.url);
    const { page } = await begin({}, browser);
    expect(isUpstreamLogin(page, corp)).toBe(true);
    // Back at the login page (the browser's back button): the choice, with "use another way".
    const uid = String(browser.jar.toJSON()!.cookies.find((c) => c.key === '_interaction')!.path).split('/')[2]!;
    const back = await browser.follow(`${server.url}/interaction/${uid}`);
    expect(back.status).toBe(200);
    expect(back.body).toContain('data-other-method');
    const other = await browser.follow(`${server.url}/interaction/${uid}/choose`);
    expect(other.status).toBe(200);
    expect(other.body).toContain('data-provider="social"');
    expect(other.body).not.toContain('data-other-method');
  });
});

describe('the account page', () => {
  /** Signs in to /account with a password; returns the browser standing on the account page. */
  async function accountPage(email: string, password: string) {
    const browser = new HttpSession();
    const start = await browser.follow(`${server.url}/account`);
    expect(start.url.pathname).toMatch(/^\/interaction\//);
    // Email first (a provider claims a domain), then the password.
    const discover = readForm(start, /\/discover$/);
    const login = await browser.submit(discover.action, { ...discover.fields, email });
    const form = readForm(login, /\/login$/);
    const page = await browser.submit(form.action, { ...form.fields, email, password });
    expect(page.url.pathname).toBe('/account');
    return { browser, page };
  }

  it('links another provider, unlinks it, and never removes the last sign-in method', async () => {
    const account = await addUser(server.node, { email: 'frank@else.example', password: 'frank-password-12' });
    const { browser, page } = await accountPage('frank@else.example', 'frank-password-12');
    expect(page.body).toContain('data-identity="local"');
    expect(page.body).toContain('data-link-provider="social"');
    const link = readForm(page, /\/account\/link$/, { provider: 'social' });
    const upstream = await browser.submit(link.action, link.fields);
    expect(isUpstreamLogin(upstream, social)).toBe(true);
    const linked = await signInUpstream(browser, upstream, alice);
    expect(linked.url.pathname).toMatch(/^\/account\/linked\/social\//);
    expect(linked.body).toContain('is now linked to your account');
    expect(linked.body).toContain('data-identity="social"');
    expect(await database.db('external_identities').where({ provider_alias: 'social', subject: alice.sub }).first()).toMatchObject({ account_id: account.id });

    const unlink = readForm(linked, /\/account\/unlink$/);
    const after = await browser.submit(unlink.action, unlink.fields);
    expect(after.status).toBe(200);
    expect(after.body).not.toContain('data-identity="social"');
    expect(await database.db('audit_log').where({ resource_id: account.id, action: 'unlink' }).first()).toMatchObject({ actor: `account:${account.id}` });

    // A password-only account has one method left: no remove button, and a forged post is refused.
    expect(after.body).toContain("can't be removed");
    await database.db('accounts').where({ id: account.id }).update({ password_hash: null });
    await database.db('external_identities').insert({ provider_alias: 'social', subject: 'frank-only', account_id: account.id, claims: '{}' });
    const only = await browser.follow(`${server.url}/account`);
    expect(only.body).toContain('data-identity="social"');
    expect(only.body).not.toContain('data-unlink=');
    const refused = await browser.submit(`${server.url}/account/unlink`, { csrf: readForm(only, /\/account\/link$/).fields.csrf!, provider: 'social', subject: 'frank-only' });
    expect(refused.status).toBe(409);
    expect(refused.body).toContain('only way to sign in');
    expect(await database.db('external_identities').where({ account_id: account.id })).toHaveLength(1);
  });

  it('refuses to link an identity that already belongs to another account', async () => {
    await addUser(server.node, { email: 'grace@else.example', password: 'grace-password-12' });
    const { browser, page } = await accountPage('grace@else.example', 'grace-password-12');
    const link = readForm(page, /\/account\/link$/, { provider: 'social' });
    // dave's social identity is linked to dave's account (first test).
    const upstream = await browser.submit(link.action, link.fields);
    const refused = await signInUpstream(browser, upstream, dave);
    expect(refused.status).toBe(409);
    expect(refused.body).toContain('already belongs to another account');
  });

  it('refuses account page forms without the CSRF token of this session', async () => {
    await addUser(server.node, { email: 'heidi@else.example', password: 'heidi-password-12' });
    const { browser } = await accountPage('heidi@else.example', 'heidi-password-12');
    const page = await browser.submit(`${server.url}/account/link`, { csrf: 'forged', provider: 'social' });
    expect(page.status).toBe(403);
  });
});
