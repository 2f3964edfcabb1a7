import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { federatedLogin, isUpstreamLogin, loginFootprint, registerApp, signInUpstream, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';
import { AdminApi, oidcProviderBody, startAdminNode } from './admin-api.ts';

const [alice, bob] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number], (typeof UPSTREAM_USERS)[number]];

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let api: AdminApi;
let app: TestApp;

/** Registers Realmgate at the upstream for `alias` (with `secret`) and returns the admin API body of that provider. */
function upstreamProvider(alias: string, secret = upstreamClientFor(alias).clientSecret, domains: string[] = []) {
  idp.addClient({ client_id: upstreamClientFor(alias).clientId, client_secret: secret, redirect_uris: [`${server.url}/federation/${alias}/callback`] });
  return oidcProviderBody(alias, idp.issuer, { secret, domains });
}

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  idp = await startUpstreamIdp();
  api = await AdminApi.connect(server.url);
  app = await registerApp(server.node, server.url, 'portal');
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

describe('providers changed through the admin API take effect on the next login', () => {
  it('uses a provider created mid-test at once, and shows the linked identity and session', async () => {
    expect((await api.post('/providers', upstreamProvider('acme', undefined, ['acme.example']))).status).toBe(201);
    const { claims } = await federatedLogin(app, idp, alice, { params: { login_hint: alice.email } });
    expect(claims.idp).toBe('acme');

    const user = await api.get(`/users/${claims.sub}`);
    expect(user.body).toMatchObject({ email: alice.email, password_set: false, identities: [{ provider: 'acme', subject: alice.sub, email: alice.email }] });
    const sessions = await api.get(`/sessions?account_id=${claims.sub}&idp=acme`);
    expect(sessions.body.items).toEqual([expect.objectContaining({ idp: 'acme', upstream: expect.objectContaining({ issuer: idp.issuer, subject: alice.sub }) })]);
  });

  it('uses a changed client secret on the very next login', async () => {
    const { clientId } = upstreamClientFor('acme');
    // The upstream now only accepts a new secret: the stored one is refused.
    idp.addClient({ client_id: clientId, client_secret: 'acme-rotated-secret-9876543210', redirect_uris: [`${server.url}/federation/acme/callback`] });
    const before = await loginFootprint(database.db);
    await expect(federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } })).rejects.toThrow(/did not reach the application/);
    expect((await loginFootprint(database.db)).loginSessions).toBe(before.loginSessions);

    const changed = await api.patch('/providers/acme', { secrets: { client_secret: 'acme-rotated-secret-9876543210' } });
    expect(changed.status).toBe(200);
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    expect(claims.idp).toBe('acme');
  });

  it('no longer offers a disabled provider, and refuses a hint naming it', async () => {
    expect((await api.post('/providers', upstreamProvider('globex'))).status).toBe(201);
    const offered = async () => {
      const { url } = await app.authorizationUrl();
      const page = await new HttpSession().follow(url, {}, app.redirectUri);
      expect(page.status).toBe(200);
      return [...page.body.matchAll(/data-provider="([^"]+)"/g)].map((m) => m[1]).sort();
    };
    expect(await offered()).toEqual(['acme', 'globex']);

    expect((await api.post('/providers/globex/disable')).status).toBe(200);
    expect(await offered()).toEqual(['acme']);
    const { url: hinted } = await app.authorizationUrl({ idp_hint: 'globex' });
    const refused = await new HttpSession().follow(hinted, {}, app.redirectUri);
    expect(refused.status).toBe(0);
    expect(refused.url.searchParams.get('error')).toBe('invalid_request');
    expect(refused.url.searchParams.get('error_description')).toMatch(/globex/);

    expect((await api.patch('/providers/globex', { enabled: true })).status).toBe(200);
    expect(await offered()).toEqual(['acme', 'globex']);
    expect((await federatedLogin(app, idp, bob, { params: { idp_hint: 'globex' } })).claims.idp).toBe('globex');
  });

  it('rejects the callback of a provider deleted while the user was upstream, creating nothing', async () => {
    expect((await api.post('/providers', upstreamProvider('fleeting'))).status).toBe(201);
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl({ idp_hint: 'fleeting' });
    const page = await browser.follow(url, {}, app.redirectUri);
    expect(isUpstreamLogin(page, idp)).toBe(true);

    expect((await api.delete('/providers/fleeting')).status).toBe(204);
    const before = await loginFootprint(database.db);
    const landed = await signInUpstream(browser, page, bob, app.redirectUri);
    expect(landed.status).toBe(404);
    expect(landed.body).toMatch(/provider does not exist/);
    expect(landed.body).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
    expect(await loginFootprint(database.db)).toEqual(before);
    expect((await database.db('external_identities').where({ provider_alias: 'fleeting' })).length).toBe(0);
  });
});
