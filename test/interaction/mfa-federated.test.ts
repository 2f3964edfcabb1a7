/**
 * The MFA step after federated sign-ins at a real oidc-provider upstream: trusted to the upstream
 * by default, a local TOTP factor after it when the provider has `require_local_mfa` (set through
 * the admin API), with openid-client as the application and codes computed by the test from the
 * key the enrolment page shows.
 */
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, isUpstreamLogin, registerApp, signInUpstream, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp, type UpstreamUser } from '../support/upstream-idp.ts';

const gina: UpstreamUser = { ...UPSTREAM_USERS[0]!, sub: 'gina-0007', email: 'gina@strict.example', password: 'gina-upstream' };
const hal: UpstreamUser = { ...UPSTREAM_USERS[0]!, sub: 'hal-0008', email: 'hal@trusted.example', password: 'hal-upstream' };

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let strict: UpstreamIdp;
let trusted: UpstreamIdp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  strict = await startUpstreamIdp({ users: [gina] });
  trusted = await startUpstreamIdp({ users: [hal] });
  await addOidcProvider(server.node, server.url, strict, { alias: 'strict', displayName: 'Strict' });
  await addOidcProvider(server.node, server.url, trusted, { alias: 'trusted', displayName: 'Trusted' });
});

afterAll(async () => {
  await server?.close();
  await strict?.close();
  await trusted?.close();
  await database?.close();
});

const patchProvider = (alias: string, body: unknown) => api.request('PATCH', `/providers/${alias}`, { body, headers: { 'content-type': 'application/merge-patch+json' } });

/** Starts a login at `app` hinted to `alias` and signs `user` in upstream; answers the first page back at Realmgate (or the app). */
async function federated(app: TestApp, idp: UpstreamIdp, alias: string, user: UpstreamUser) {
  const browser = new HttpSession();
  const request = await app.authorizationUrl({ idp_hint: alias });
  let page = await browser.follow(request.url, {}, app.redirectUri);
  expect(isUpstreamLogin(page, idp)).toBe(true);
  page = await signInUpstream(browser, page, user, app.redirectUri);
  return { browser, request, page };
}

const secretOn = (page: PageResponse) => /<code data-totp-secret>([A-Z2-7]+)<\/code>/.exec(page.body)?.[1];

describe('require_local_mfa', () => {
  it('is false by default, refuses a non-boolean and is stored through the admin API', async () => {
    expect((await api.get('/providers/strict')).body.require_local_mfa).toBe(false);
    const bad = await patchProvider('strict', { require_local_mfa: 'yes' });
    expect(bad.status).toBe(400);
    expect(problemFields(bad)).toEqual(['require_local_mfa']);
    expect((await api.get('/providers/strict')).body.require_local_mfa).toBe(false);
    const ok = await patchProvider('strict', { require_local_mfa: true });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await api.get('/providers/strict')).body.require_local_mfa).toBe(true);
    const schema = (await api.get('/openapi.json')).body;
    expect(JSON.stringify(schema)).toContain('require_local_mfa');
  });

  it('trusts a provider without it: a required client lets its sign-in through with amr fed', async () => {
    const app = await registerApp(server.node, server.url, 'fed-required-app', { mfa: 'required' });
    const { request, page } = await federated(app, trusted, 'trusted', hal);
    expect(page.status, page.body.slice(0, 800)).toBe(0);
    const claims = (await app.redeem(request, page.url)).claims()!;
    expect(claims.amr).toContain('fed');
    expect(claims.amr).not.toContain('otp');
    expect(claims.acr).toBe('sfa');
  });

  it('adds the local factor after a provider with it: enrolment under required, then a code under if_enrolled', async () => {
    const required = await registerApp(server.node, server.url, 'fed-strict-required', { mfa: 'required' });
    const first = await federated(required, strict, 'strict', gina);
    expect(first.page.status).toBe(200);
    const secret = secretOn(first.page);
    expect(secret).toBeDefined();
    const form = readForm(first.page, /\/mfa$/);
    const codes = await first.browser.submit(form.action, { ...form.fields, code: await generate({ secret: secret! }) }, required.redirectUri);
    const continueUrl = /href="([^"]+)" data-continue/.exec(codes.body)![1]!;
    const done = await first.browser.follow(new URL(continueUrl, server.url), {}, required.redirectUri);
    expect(done.status).toBe(0);
    const claims = (await required.redeem(first.request, done.url)).claims()!;
    expect((claims.amr as string[])[0]).toBe('fed');
    expect(claims.amr).toEqual(expect.arrayContaining(['otp', 'mfa']));
    expect(claims.acr).toBe('mfa');

    const enrolled = await registerApp(server.node, server.url, 'fed-strict-default');
    const second = await federated(enrolled, strict, 'strict', gina);
    expect(second.page.status).toBe(200);
    expect(second.page.body).toContain('name="code"');
    expect(secretOn(second.page)).toBeUndefined();
    const ask = readForm(second.page, /\/mfa$/);
    const next = await generate({ secret: secret!, epoch: Math.floor(Date.now() / 1000) + 30 });
    const back = await second.browser.submit(ask.action, { ...ask.fields, code: next }, enrolled.redirectUri);
    expect(back.status).toBe(0);
    expect((await enrolled.redeem(second.request, back.url)).claims()!.amr).toContain('otp');
  });
});
