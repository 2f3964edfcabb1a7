/**
 * The terms-of-service and profile-completion steps of the interaction state machine, walked with
 * a cookie-jar browser by openid-client as the application, after a local password sign-in and
 * after a federated one at a real oidc-provider upstream; clients configured through the admin API.
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, isUpstreamLogin, registerApp, signInUpstream, type AuthorizationRequest, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp, type UpstreamUser } from '../support/upstream-idp.ts';

const TERMS_URI = 'https://app.example.test/terms';
/** An upstream user whose IdP sends no family name. */
const frank: UpstreamUser = { ...UPSTREAM_USERS[0]!, sub: 'frank-0006', email: 'frank@corp.example', password: 'frank-upstream', name: 'Frank', given_name: 'Frank', family_name: '' };

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let corp: UpstreamIdp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  corp = await startUpstreamIdp({ users: [frank] });
  await addOidcProvider(server.node, server.url, corp, { alias: 'corp', displayName: 'Corp' });
});

afterAll(async () => {
  await server?.close();
  await corp?.close();
  await database?.close();
});

/** Registers an app whose client carries `metadata`, through the same validation as the admin API. */
const appWith = (clientId: string, metadata: Record<string, unknown>) => registerApp(server.node, server.url, clientId, { claims_in_id_token: true, ...metadata });

/** Starts a login at `app` and follows it to the first page (or the app). */
async function begin(app: TestApp, params: Record<string, string> = {}) {
  const browser = new HttpSession();
  const request = await app.authorizationUrl(params);
  return { browser, request, page: await browser.follow(request.url, {}, app.redirectUri) };
}

/** Signs in with a password on the login page the browser stands on. */
function password(app: TestApp, browser: HttpSession, page: PageResponse, email: string, secret: string) {
  const form = readForm(page, /\/login$/);
  return browser.submit(form.action, { ...form.fields, email, password: secret }, app.redirectUri);
}

async function redeem(app: TestApp, request: AuthorizationRequest, page: PageResponse) {
  expect(page.status, page.body.slice(0, 1200)).toBe(0);
  return app.redeem(request, page.url);
}

const acceptances = (accountId: string) => database.db('terms_acceptances').where({ account_id: accountId }).orderBy('accepted_at');

describe('client fields in the admin API', () => {
  it('refuses invalid terms, required claims and registration fields, naming each, and stores nothing', async () => {
    const res = await api.post('/clients', {
      client_id: 'bad-steps',
      redirect_uris: ['https://app.example.test/cb'],
      terms_uri: 'not a url',
      terms_version: '',
      required_claims: ['given_name', 'shoe_size'],
      registration: 'yes',
    });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['registration', 'required_claims.1', 'terms_uri', 'terms_version']);
    expect((await api.get('/clients/bad-steps')).status).toBe(404);
  });

  it('refuses a terms version without the terms URI, and a claim named twice', async () => {
    const res = await api.post('/clients', { client_id: 'half-terms', redirect_uris: ['https://app.example.test/cb'], terms_version: '1', required_claims: ['email', 'email'] });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['required_claims', 'terms_uri']);
    expect((await api.get('/clients/half-terms')).status).toBe(404);
  });

  it('stores and returns the fields, and the OpenAPI document describes them', async () => {
    const body = { client_id: 'good-steps', redirect_uris: ['https://app.example.test/cb'], terms_uri: TERMS_URI, terms_version: '2026-12', required_claims: ['given_name', 'family_name'], registration: true };
    expect((await api.post('/clients', body)).status).toBe(201);
    expect((await api.get('/clients/good-steps')).body).toMatchObject(body);
    const schema = (await api.get('/openapi.json')).body.components.schemas.Client.properties;
    expect(Object.keys(schema)).toEqual(expect.arrayContaining(['terms_uri', 'terms_version', 'required_claims', 'registration']));
  });
});

describe('terms of service', () => {
  it('asks once after a password sign-in, records version and time, and shows them in the admin API', async () => {
    const app = await appWith('terms-app', { terms_uri: TERMS_URI, terms_version: '2026-12' });
    const user = await addUser(server.node, { email: 'tess@example.test', password: 'tess-password-1' });
    const first = await begin(app);
    const terms = await password(app, first.browser, first.page, 'tess@example.test', 'tess-password-1');
    expect(terms.status).toBe(200);
    expect(terms.body).toContain('data-accept-terms');
    expect(terms.body).toContain(`href="${TERMS_URI}"`);
    expect(terms.body).toContain('version 2026-12');
    expect(await acceptances(user.id)).toEqual([]);
    const accept = readForm(terms, /\/terms$/);
    const claims = (await redeem(app, first.request, await first.browser.submit(accept.action, accept.fields, app.redirectUri))).claims()!;
    expect(claims.sub).toBe(user.id);

    const [row] = await acceptances(user.id);
    expect(row).toMatchObject({ terms_uri: TERMS_URI, terms_version: '2026-12', client_id: 'terms-app' });
    const shown = (await api.get(`/users/${user.id}`)).body.terms_accepted;
    expect(shown).toEqual([{ terms_uri: TERMS_URI, terms_version: '2026-12', client_id: 'terms-app', accepted_at: new Date(row.accepted_at).toISOString() }]);
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items;
    expect(audit.map((a: { action: string }) => a.action)).toContain('accept_terms');

    // Accepted once: the next login goes straight back to the application.
    const again = await begin(app, { prompt: 'login' });
    await redeem(app, again.request, await password(app, again.browser, again.page, 'tess@example.test', 'tess-password-1'));
  });

  it('lets another node take the acceptance: the step\'s state is in the database', async () => {
    const app = await appWith('two-node-app', { terms_uri: TERMS_URI, terms_version: 'N1' });
    const user = await addUser(server.node, { email: 'nell@example.test', password: 'nell-password-1' });
    const other = await startAdminNode(database.db);
    try {
      const { browser, request, page } = await begin(app);
      const terms = await password(app, browser, page, 'nell@example.test', 'nell-password-1');
      const accept = readForm(terms, /\/terms$/);
      const onOther = new URL(accept.action.pathname, other.url);
      const landed = await browser.submit(onOther, accept.fields, app.redirectUri);
      await redeem(app, request, landed);
      expect((await acceptances(user.id)).map((r: { terms_version: string }) => r.terms_version)).toEqual(['N1']);
    } finally {
      await other.close();
    }
  });

  it('asks again when the client publishes a new version', async () => {
    const app = await appWith('versioned-app', { terms_uri: TERMS_URI, terms_version: '1' });
    const user = await addUser(server.node, { email: 'vera@example.test', password: 'vera-password-1' });
    const first = await begin(app);
    const terms = await password(app, first.browser, first.page, 'vera@example.test', 'vera-password-1');
    const accept = readForm(terms, /\/terms$/);
    await redeem(app, first.request, await first.browser.submit(accept.action, accept.fields, app.redirectUri));

    expect((await api.patch('/clients/versioned-app', { terms_version: '2' })).status).toBe(200);
    const next = await begin(app);
    const newTerms = await password(app, next.browser, next.page, 'vera@example.test', 'vera-password-1');
    expect(newTerms.body).toContain('version 2');
    const acceptNew = readForm(newTerms, /\/terms$/);
    await redeem(app, next.request, await next.browser.submit(acceptNew.action, acceptNew.fields, app.redirectUri));
    expect((await acceptances(user.id)).map((r: { terms_version: string }) => r.terms_version)).toEqual(['1', '2']);
  });

  it('ends the login with access_denied when the person declines, recording nothing', async () => {
    const app = await appWith('decline-app', { terms_uri: TERMS_URI, terms_version: '1' });
    const user = await addUser(server.node, { email: 'dan@example.test', password: 'dan-password-1' });
    const { browser, page } = await begin(app);
    const terms = await password(app, browser, page, 'dan@example.test', 'dan-password-1');
    const decline = readForm(terms, /\/abort$/);
    const back = await browser.submit(decline.action, decline.fields, app.redirectUri);
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    expect(await acceptances(user.id)).toEqual([]);
  });

  it('refuses an acceptance from another browser, or of a version that is no longer current, recording nothing', async () => {
    const app = await appWith('stale-app', { terms_uri: TERMS_URI, terms_version: 'A' });
    const user = await addUser(server.node, { email: 'sam@example.test', password: 'sam-password-1' });
    const { browser, request, page } = await begin(app);
    const terms = await password(app, browser, page, 'sam@example.test', 'sam-password-1');
    const accept = readForm(terms, /\/terms$/);

    const elsewhere = await new HttpSession().submit(accept.action, accept.fields, app.redirectUri);
    expect(elsewhere.status).toBe(400);
    expect(await acceptances(user.id)).toEqual([]);

    expect((await api.patch('/clients/stale-app', { terms_version: 'B' })).status).toBe(200);
    const stale = await browser.submit(accept.action, accept.fields, app.redirectUri);
    expect(stale.status).toBe(400);
    expect(stale.body).toContain('updated while you were reading');
    expect(stale.body).toContain('version B');
    expect(await acceptances(user.id)).toEqual([]);
    const current = readForm(stale, /\/terms$/);
    await redeem(app, request, await browser.submit(current.action, current.fields, app.redirectUri));
    expect((await acceptances(user.id)).map((r: { terms_version: string }) => r.terms_version)).toEqual(['B']);
  });
});

describe('a browser already signed in', () => {
  it('walks the terms of another client for the signed-in account without a new sign-in; prompt=none gets interaction_required', async () => {
    const plain = await appWith('plain-app', {});
    const strict = await appWith('strict-app', { terms_uri: TERMS_URI, terms_version: 'S1', required_claims: ['family_name'] });
    const user = await addUser(server.node, { email: 'sso@example.test', password: 'sso-password-1' });
    const first = await begin(plain);
    const browser = first.browser;
    await redeem(plain, first.request, await password(plain, browser, first.page, 'sso@example.test', 'sso-password-1'));

    const silent = await strict.authorizationUrl({ prompt: 'none' });
    const refused = await browser.follow(silent.url, {}, strict.redirectUri);
    expect(refused.status).toBe(0);
    expect(refused.url.searchParams.get('error')).toBe('interaction_required');
    expect(await acceptances(user.id)).toEqual([]);

    const request = await strict.authorizationUrl();
    const terms = await browser.follow(request.url, {}, strict.redirectUri);
    expect(terms.body).toContain('data-accept-terms');
    expect(terms.body).not.toContain('name="password"');
    const accept = readForm(terms, /\/terms$/);
    const profile = await browser.submit(accept.action, accept.fields, strict.redirectUri);
    const form = readForm(profile, /\/profile$/);
    const claims = (await redeem(strict, request, await browser.submit(form.action, { ...form.fields, family_name: 'Single' }, strict.redirectUri))).claims()!;
    expect(claims).toMatchObject({ sub: user.id, idp: 'local', amr: ['pwd'], family_name: 'Single' });

    // Done once: the signed-in browser now goes straight through, silently too.
    const quiet = await strict.authorizationUrl({ prompt: 'none' });
    await redeem(strict, quiet, await browser.follow(quiet.url, {}, strict.redirectUri));
  });
});

describe('profile completion', () => {
  it('asks a local account for the claims it lacks, checks them, stores them and releases them in tokens', async () => {
    const app = await appWith('profile-app', { required_claims: ['given_name', 'family_name', 'nickname'] });
    const user = await addUser(server.node, { email: 'pat@example.test', password: 'pat-password-1', name: 'Pat' });
    await server.node.services.accounts.update(user.id, { givenName: 'Pat' });
    const { browser, request, page } = await begin(app);
    const profile = await password(app, browser, page, 'pat@example.test', 'pat-password-1');
    expect(profile.status).toBe(200);
    // Only what is missing is asked, each input named by its claim and labelled.
    expect(profile.body).not.toContain('name="given_name"');
    expect(profile.body).toMatch(/<label for="claim-family_name">Last name<\/label>/);
    expect(profile.body).toMatch(/<input id="claim-family_name" type="text" name="family_name"/);
    expect(profile.body).toContain('name="nickname"');

    const form = readForm(profile, /\/profile$/);
    const invalid = await browser.submit(form.action, { ...form.fields, family_name: '   ', nickname: 'Patty' }, app.redirectUri);
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatch(/name="family_name" value="   "[^>]*aria-invalid="true" aria-describedby="claim-family_name-error"/);
    expect(invalid.body).toContain('id="claim-family_name-error">Enter your last name.</p>');
    expect(invalid.body).toContain('value="Patty"');
    const unchanged = (await server.node.services.accounts.get(user.id))!;
    expect([unchanged.familyName, unchanged.claims.nickname]).toEqual([null, undefined]);

    const valid = readForm(invalid, /\/profile$/);
    const tokens = await redeem(app, request, await browser.submit(valid.action, { ...valid.fields, family_name: ' Example ', nickname: 'Patty' }, app.redirectUri));
    expect(tokens.claims()).toMatchObject({ sub: user.id, given_name: 'Pat', family_name: 'Example', nickname: 'Patty', idp: 'local' });
    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, user.id);
    expect(userinfo).toMatchObject({ family_name: 'Example', nickname: 'Patty' });
    expect((await api.get(`/users/${user.id}`)).body).toMatchObject({ family_name: 'Example', claims: { nickname: 'Patty' } });

    const again = await begin(app, { prompt: 'login' });
    await redeem(app, again.request, await password(app, again.browser, again.page, 'pat@example.test', 'pat-password-1'));
  });
});

describe('after a federated sign-in', () => {
  it('walks terms, then profile completion, then finishes at the application with the new claim', async () => {
    const app = await appWith('fed-steps-app', { terms_uri: TERMS_URI, terms_version: 'F1', required_claims: ['given_name', 'family_name'] });
    const { browser, request, page } = await begin(app, { idp_hint: 'corp' });
    expect(isUpstreamLogin(page, corp)).toBe(true);
    const terms = await signInUpstream(browser, page, frank, app.redirectUri);
    expect(terms.body).toContain('data-accept-terms');
    const accept = readForm(terms, /\/terms$/);
    const profile = await browser.submit(accept.action, accept.fields, app.redirectUri);
    expect(profile.status).toBe(200);
    expect(profile.body).toContain('name="family_name"');
    expect(profile.body).not.toContain('name="given_name"');
    const form = readForm(profile, /\/profile$/);
    const claims = (await redeem(app, request, await browser.submit(form.action, { ...form.fields, family_name: 'Federated' }, app.redirectUri))).claims()!;
    expect(claims).toMatchObject({ idp: 'corp', given_name: 'Frank', family_name: 'Federated' });
    expect((await acceptances(String(claims.sub))).map((r: { terms_version: string }) => r.terms_version)).toEqual(['F1']);

    // Both steps are done for this account: the next federated login finishes straight away.
    const again = await begin(app, { idp_hint: 'corp', prompt: 'login' });
    const back = await signInUpstream(again.browser, again.page, frank, app.redirectUri);
    expect((await redeem(app, again.request, back)).claims()!.sub).toBe(claims.sub);
  });
});
