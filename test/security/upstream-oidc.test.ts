import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, oidcProviderBody, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { federatedLogin, isUpstreamLogin, loginFootprint, registerApp, signInUpstream, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;

let database: TestDatabase;
let server: TestServer;
let rsa: UpstreamIdp;
let ecOnly: UpstreamIdp;
let api: AdminApi;
let app: TestApp;

/** Registers Realmgate at `idp` for `alias` and adds the provider through the admin API by its issuer alone. */
async function addByIssuer(alias: string, idp: UpstreamIdp, settings: Record<string, unknown> = {}): Promise<void> {
  const { clientId, clientSecret } = upstreamClientFor(alias);
  idp.addClient({ client_id: clientId, client_secret: clientSecret, redirect_uris: [`${server.url}/federation/${alias}/callback`] });
  const body = oidcProviderBody(alias, idp.issuer, { displayName: `${alias} Corp` });
  const res = await api.post('/providers', { ...body, settings: { ...body.settings, ...settings } });
  expect(res.status).toBe(201);
}

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  rsa = await startUpstreamIdp();
  ecOnly = await startUpstreamIdp({ signingAlg: 'ES256', clientAuthMethods: ['client_secret_basic'] });
  await addByIssuer('acme', rsa);
  await addByIssuer('ecorp', ecOnly);
  await addByIssuer('ecorp-rs', ecOnly, { id_token_signed_response_alg: 'RS256' });
  await addByIssuer('ecorp-post', ecOnly, { token_endpoint_auth_method: 'client_secret_post' });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await rsa?.close();
  await ecOnly?.close();
  await database?.close();
});

describe('an upstream ID token issued in the future', () => {
  it('is refused when its iat is an hour ahead, beyond the clock skew', async () => {
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl({ idp_hint: 'acme' });
    const page = await browser.follow(url, {}, app.redirectUri);
    expect(isUpstreamLogin(page, rsa)).toBe(true);
    const before = await loginFootprint(database.db);
    rsa.tamper.idTokenClaims = (c) => ({ ...c, iat: c.iat! + 3600, exp: c.exp! + 3600 });
    try {
      const answer = await signInUpstream(browser, page, alice, app.redirectUri);
      expect(answer.status).toBe(502);
      expect(answer.body).toMatch(/could not verify the answer from acme Corp/);
    } finally {
      rsa.tamper.idTokenClaims = undefined;
    }
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('is accepted when its iat is a few seconds ahead, within the clock skew', async () => {
    rsa.tamper.idTokenClaims = (c) => ({ ...c, iat: c.iat! + 5 });
    try {
      const { claims } = await federatedLogin(app, rsa, alice, { params: { idp_hint: 'acme' } });
      expect(claims.idp).toBe('acme');
    } finally {
      rsa.tamper.idTokenClaims = undefined;
    }
  });
});

describe('an upstream whose ID tokens are signed ES256 only, added by its issuer alone', () => {
  it('passes the provider test, which names the algorithm taken from its discovery', async () => {
    const res = await api.post('/providers/ecorp/test');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      ok: true,
      checks: [
        { name: 'kind', ok: true },
        { name: 'settings', ok: true },
        { name: 'open', ok: true },
        { name: 'id_token_signing_alg', ok: true, detail: 'ID tokens signed ES256' },
        { name: 'token_endpoint_auth_method', ok: true, detail: 'client_secret_basic' },
      ],
    });
  });

  it('signs a user in', async () => {
    const { claims } = await federatedLogin(app, ecOnly, alice, { params: { idp_hint: 'ecorp' } });
    expect(claims.idp).toBe('ecorp');
    expect(claims.sub).toEqual(expect.any(String));
  });

  it('fails the provider test, before any login, when RS256 is set explicitly', async () => {
    const res = await api.post('/providers/ecorp-rs/test');
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    expect(res.body.checks).toContainEqual({ name: 'id_token_signing_alg', ok: false, detail: expect.stringMatching(/signs ID tokens with ES256, not RS256/) });
  });

  it('fails the provider test when its token endpoint does not accept the configured authentication method', async () => {
    const res = await api.post('/providers/ecorp-post/test');
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    expect(res.body.checks).toContainEqual({ name: 'token_endpoint_auth_method', ok: false, detail: "the upstream's token endpoint accepts client_secret_basic, not client_secret_post" });
  });
});
