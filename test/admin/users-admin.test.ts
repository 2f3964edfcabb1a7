import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, federatedLogin, loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import type { HttpSession } from '../support/http-session.ts';
import { passwordLogin, startLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';
import { AdminApi, problemFields, startAdminNode } from './admin-api.ts';

const [alice, bob] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number], (typeof UPSTREAM_USERS)[number]];

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let app: TestApp;
/** An application offering only the password form (no provider), so password sign-ins go straight to it. */
let pwApp: TestApp;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  idp = await startUpstreamIdp();
  await addOidcProvider(server.node, server.url, idp, { alias: 'acme', displayName: 'Acme Corp', domains: ['acme.example'] });
  app = await registerApp(server.node, server.url, 'web');
  pwApp = await registerApp(server.node, server.url, 'pw', { allowed_providers: [] });
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

/** Asks for a code without showing any page: `code` when the browser is signed in, else the error (`login_required`). */
async function silentAuthorization(browser: HttpSession): Promise<string | null> {
  const started = await startLogin(pwApp.config, { redirectUri: pwApp.redirectUri, browser, scope: 'openid email', params: { prompt: 'none' } });
  expect(started.page.status).toBe(0);
  return started.page.url.searchParams.get('code') ? 'code' : started.page.url.searchParams.get('error');
}

/** The audit entries of one user, oldest first. */
async function userAudit(id: string): Promise<{ action: string; actor: string; before: any; after: any }[]> {
  const res = await api.get(`/audit?resource_type=user&resource_id=${id}`);
  expect(res.status).toBe(200);
  return [...res.body.items].reverse();
}

const countAccounts = async () => (await loginFootprint(database.db)).accounts;

describe('creating users through the admin API', () => {
  it('creates an account with a password that signs in through the real pages as the returned id', async () => {
    const res = await api.post('/users', { email: 'Ada@Example.com', email_verified: true, password: 'analytical-engine-1843', name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.any(String), email: 'Ada@Example.com', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', disabled: false, password_set: true, identities: [] });
    expect(res.headers.get('location')).toBe(`/admin/api/users/${res.body.id}`);
    expect(res.text).not.toMatch(/analytical|scrypt|password_hash/);

    const { tokens } = await passwordLogin(pwApp.config, { redirectUri: pwApp.redirectUri, email: 'ada@example.com', password: 'analytical-engine-1843', scope: 'openid email profile' });
    expect(tokens.claims()).toMatchObject({ sub: res.body.id, idp: 'local' });
    const userinfo = await oidc.fetchUserInfo(pwApp.config, tokens.access_token, res.body.id);
    expect(userinfo).toMatchObject({ email: 'Ada@Example.com', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace' });

    expect(await userAudit(res.body.id)).toEqual([
      expect.objectContaining({ action: 'create', actor: 'ops-console', before: null, after: expect.objectContaining({ id: res.body.id, email: 'Ada@Example.com', password_set: true }) }),
    ]);
  });

  it('creates an account without a password, which has no password to sign in with', async () => {
    const res = await api.post('/users', { email: 'nopass@example.com', email_verified: false });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ email: 'nopass@example.com', email_verified: false, password_set: false, name: null });
    expect(await server.node.services.accounts.findLocalByEmail('nopass@example.com')).toBeUndefined();
    expect((await api.get(`/users/${res.body.id}`)).body).toMatchObject({ id: res.body.id, password_set: false });
  });

  it('refuses a second password account with the same email as a 409 naming the field, and creates nothing', async () => {
    await api.post('/users', { email: 'twice@example.com', email_verified: true, password: 'first-password-1' });
    const before = await countAccounts();
    const res = await api.post('/users', { email: 'TWICE@example.com', email_verified: true, password: 'second-password-2' });
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(problemFields(res)).toEqual(['email']);
    expect(await countAccounts()).toBe(before);
  });

  it('lists every invalid field of a create body and creates nothing', async () => {
    const before = await countAccounts();
    const audited = (await api.get('/audit?resource_type=user')).body.items.length;
    const res = await api.post('/users', { email: 'not-an-email', email_verified: 'yes', password: 'short', name: '', nickname: 'x', id: '00000000-0000-4000-8000-000000000000' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.body.type).toBe('urn:realmgate:problem:invalid_request');
    expect(problemFields(res)).toEqual(['email', 'email_verified', 'id', 'name', 'nickname', 'password']);
    expect(problemFields(await api.post('/users', {}))).toEqual(['email', 'email_verified']);
    expect(problemFields(await api.post('/users', [1, 2]))).toEqual(['(body)']);
    expect(await countAccounts()).toBe(before);
    expect((await api.get('/audit?resource_type=user')).body.items).toHaveLength(audited);
  });
});

describe('changing users through the admin API', () => {
  it('merge-patches the profile, clears a name with null and audits before and after', async () => {
    const { body: user } = await api.post('/users', { email: 'grace@example.com', email_verified: false, name: 'Grace', given_name: 'Grace', password: 'nanoseconds-1906' });
    const res = await api.patch(`/users/${user.id}`, { name: 'Grace Hopper', family_name: 'Hopper', given_name: null, email: 'grace.hopper@example.com', email_verified: true });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, name: 'Grace Hopper', given_name: null, family_name: 'Hopper', email: 'grace.hopper@example.com', email_verified: true, password_set: true });
    expect((await api.get(`/users/${user.id}`)).body).toMatchObject({ name: 'Grace Hopper', given_name: null, email: 'grace.hopper@example.com' });

    // A patch that changes nothing writes no audit entry.
    expect((await api.patch(`/users/${user.id}`, { name: 'Grace Hopper' })).status).toBe(200);
    expect(await userAudit(user.id)).toEqual([
      expect.objectContaining({ action: 'create' }),
      expect.objectContaining({ action: 'update', before: expect.objectContaining({ name: 'Grace', email: 'grace@example.com' }), after: expect.objectContaining({ name: 'Grace Hopper', email: 'grace.hopper@example.com' }) }),
    ]);
  });

  it('lists every invalid field of a patch and changes nothing', async () => {
    const { body: user } = await api.post('/users', { email: 'patchy@example.com', email_verified: true, password: 'patchy-password-1' });
    const res = await api.patch(`/users/${user.id}`, { email: 5, email_verified: null, disabled: 'no', name: 7, nickname: 'x', password_set: false });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['disabled', 'email', 'email_verified', 'name', 'nickname', 'password_set']);
    // A password account keeps its email: it is how it signs in.
    expect(problemFields(await api.patch(`/users/${user.id}`, { email: null }))).toEqual(['email']);
    // Another password account's email is a conflict.
    const taken = await api.patch(`/users/${user.id}`, { email: 'TWICE@example.com' });
    expect(taken.status).toBe(409);
    expect(problemFields(taken)).toEqual(['email']);
    expect((await api.get(`/users/${user.id}`)).body).toMatchObject({ email: 'patchy@example.com', email_verified: true, disabled: false, name: null });
    expect(await userAudit(user.id)).toEqual([expect.objectContaining({ action: 'create' })]);
  });

  it('disabling an account ends its sessions: the browser must sign in again and its tokens stop working', async () => {
    const { body: user } = await api.post('/users', { email: 'linus@example.com', email_verified: true, password: 'penguin-password-1991' });
    const signIn = () => passwordLogin(pwApp.config, { redirectUri: pwApp.redirectUri, email: 'linus@example.com', password: 'penguin-password-1991', scope: 'openid email' });
    const { browser, tokens } = await signIn();
    const other = await signIn();
    expect(await silentAuthorization(browser)).toBe('code');
    expect((await api.get(`/sessions?account_id=${user.id}`)).body.items).toHaveLength(2);

    const res = await api.patch(`/users/${user.id}`, { disabled: true });
    expect(res.status).toBe(200);
    expect(res.body.disabled).toBe(true);
    expect(await silentAuthorization(browser)).toBe('login_required');
    expect(await silentAuthorization(other.browser)).toBe('login_required');
    expect((await api.get(`/sessions?account_id=${user.id}`)).body.items).toEqual([]);
    expect(await database.db('login_sessions').where({ account_id: user.id })).toEqual([]);
    expect(await oidc.tokenIntrospection(pwApp.config, tokens.access_token)).toMatchObject({ active: false });
    const audit = await userAudit(user.id);
    expect(audit.at(-1)).toMatchObject({ action: 'update', before: expect.objectContaining({ disabled: false }), after: expect.objectContaining({ disabled: true }) });

    // Enabled again, the same password signs in again.
    expect((await api.patch(`/users/${user.id}`, { disabled: false })).body.disabled).toBe(false);
    expect((await signIn()).tokens.claims()!.sub).toBe(user.id);
  });

  it('deletes an account: its sessions end, its links go, and the audit entry keeps them', async () => {
    const { body: user } = await api.post('/users', { email: 'gone@example.com', email_verified: true, password: 'gone-password-123' });
    expect((await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: 'gone-at-acme' })).status).toBe(201);
    const { browser } = await passwordLogin(pwApp.config, { redirectUri: pwApp.redirectUri, email: 'gone@example.com', password: 'gone-password-123', scope: 'openid email' });
    expect(await silentAuthorization(browser)).toBe('code');

    expect((await api.delete(`/users/${user.id}`)).status).toBe(204);
    expect(await silentAuthorization(browser)).toBe('login_required');
    expect((await api.get(`/users/${user.id}`)).status).toBe(404);
    expect(await database.db('external_identities').where({ account_id: user.id })).toEqual([]);
    expect(await database.db('login_sessions').where({ account_id: user.id })).toEqual([]);
    expect(await database.db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [user.id])).toEqual([]);
    expect((await userAudit(user.id)).at(-1)).toMatchObject({
      action: 'delete',
      after: null,
      before: expect.objectContaining({ id: user.id, email: 'gone@example.com', identities: [expect.objectContaining({ provider: 'acme', subject: 'gone-at-acme' })] }),
    });
    expect((await api.delete(`/users/${user.id}`)).status).toBe(404);
  });

  it('answers 404 for unknown and malformed ids on every user route, never 500', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', "x'; drop table accounts; --"]) {
      const path = `/users/${encodeURIComponent(id)}`;
      for (const res of [
        await api.get(path),
        await api.patch(path, { name: 'X' }),
        await api.delete(path),
        await api.post(`${path}/identities`, { provider: 'acme', subject: 'whoever' }),
        await api.delete(`${path}/identities/acme/whoever`),
      ]) {
        expect(res.status, `${id}: ${res.text}`).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      }
    }
  });
});

describe('linking identities through the admin API', () => {
  it('pre-links an upstream subject so its first federated sign-in reaches that account', async () => {
    const { body: user } = await api.post('/users', { email: 'alice.local@corp.example', email_verified: true, name: 'Alice (local)' });
    const linked = await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: alice.sub });
    expect(linked.status).toBe(201);
    expect(linked.body).toMatchObject({ provider: 'acme', subject: alice.sub, email: null });
    expect(linked.headers.get('location')).toBe(`/admin/api/users/${user.id}/identities/acme/${alice.sub}`);
    // Linking it again changes nothing.
    expect((await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: alice.sub })).status).toBe(200);

    const before = await countAccounts();
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    expect(claims.sub).toBe(user.id);
    expect(await countAccounts()).toBe(before);
    const detail = (await api.get(`/users/${user.id}`)).body;
    expect(detail.identities).toEqual([expect.objectContaining({ provider: 'acme', subject: alice.sub, email: alice.email, last_login_at: expect.any(String) })]);

    expect((await userAudit(user.id)).filter((e) => e.action === 'link')).toEqual([
      expect.objectContaining({ actor: 'ops-console', before: null, after: { provider: 'acme', subject: alice.sub, rule: 'admin' } }),
    ]);
  });

  it('refuses an identity linked to another account (409) and an unknown provider (400 naming it)', async () => {
    const { body: user } = await api.post('/users', { email: 'other@corp.example', email_verified: true });
    const taken = await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: alice.sub });
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toMatch(/application\/problem\+json/);

    const unknown = await api.post(`/users/${user.id}/identities`, { provider: 'nowhere', subject: 'x' });
    expect(unknown.status).toBe(400);
    expect(problemFields(unknown)).toEqual(['provider']);
    expect(unknown.body.errors[0].message).toMatch(/nowhere/);
    expect(problemFields(await api.post(`/users/${user.id}/identities`, { provider: 'nowhere', subject: '', extra: true }))).toEqual(['extra', 'provider', 'subject']);
    expect(problemFields(await api.post(`/users/${user.id}/identities`, {}))).toEqual(['provider', 'subject']);
    expect((await api.get(`/users/${user.id}`)).body.identities).toEqual([]);
    expect((await userAudit(user.id)).map((e) => e.action)).toEqual(['create']);
  });

  it('unlinks an identity, but never the last sign-in method (409), and 404 for one not linked', async () => {
    const { body: user } = await api.post('/users', { email: 'bob.local@corp.example', email_verified: false });
    await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: bob.sub });
    await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: 'bob/second account' });

    const slashy = `/users/${user.id}/identities/acme/${encodeURIComponent('bob/second account')}`;
    expect((await api.delete(slashy)).status).toBe(204);
    const last = await api.delete(`/users/${user.id}/identities/acme/${bob.sub}`);
    expect(last.status).toBe(409);
    expect(last.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(last.body.detail).toMatch(/last sign-in method/);
    expect((await api.get(`/users/${user.id}`)).body.identities).toEqual([expect.objectContaining({ provider: 'acme', subject: bob.sub })]);
    expect((await api.delete(slashy)).status).toBe(404);
    expect((await api.delete(`/users/${user.id}/identities/nowhere/${bob.sub}`)).status).toBe(404);

    expect((await userAudit(user.id)).map((e) => [e.action, e.before?.subject ?? e.after?.subject ?? null])).toEqual([
      ['create', null],
      ['link', bob.sub],
      ['link', 'bob/second account'],
      ['unlink', 'bob/second account'],
    ]);
  });

  it('unlinks the only identity of an account that also has a password', async () => {
    const { body: user } = await api.post('/users', { email: 'both@corp.example', email_verified: true, password: 'both-password-12' });
    await api.post(`/users/${user.id}/identities`, { provider: 'acme', subject: 'both-at-acme' });
    expect((await api.delete(`/users/${user.id}/identities/acme/both-at-acme`)).status).toBe(204);
    expect((await api.get(`/users/${user.id}`)).body.identities).toEqual([]);
  });
});
