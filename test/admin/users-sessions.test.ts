import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { HttpSession } from '../support/http-session.ts';
import { discoverAs, passwordLogin, startLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';
import { AdminApi, problemFields, startAdminNode } from './admin-api.ts';

const APP = 'http://127.0.0.1:1/web/callback';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let config: oidc.Configuration;
let receiver: BackchannelReceiver;
let adaId: string;
let graceId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  receiver = await startBackchannelReceiver();
  api = await AdminApi.connect(server.url);
  adaId = (await addUser(server.node, { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' })).id;
  graceId = (await addUser(server.node, { email: 'Grace@Example.com', password: 'nanoseconds-1906' })).id;
  for (let i = 0; i < 3; i++) await addUser(server.node, { email: `user${i}@example.com`, password: 'some-password-123' });
  await addClient(server.node, {
    client_id: 'web',
    redirect_uris: [APP],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    require_consent: false,
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  }, 'web-secret-web-secret-web');
  config = await discoverAs(server.url, 'web', 'web-secret-web-secret-web');
});

afterAll(async () => {
  await receiver?.close();
  await server?.close();
  await database?.close();
});

/** Asks for a code without showing any page: `code` when the browser has a session, `login_required` when not. */
async function silentAuthorization(browser: HttpSession): Promise<string | null> {
  const started = await startLogin(config, { redirectUri: APP, browser, scope: 'openid email', params: { prompt: 'none' } });
  expect(started.page.status).toBe(0);
  return started.page.url.searchParams.get('code') ? 'code' : started.page.url.searchParams.get('error');
}

describe('users through the admin API', () => {
  it('finds users by email, case-insensitively, without password hashes', async () => {
    const res = await api.get('/users?email=grace@example.com');
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({ id: graceId, email: 'Grace@Example.com', email_verified: true, password_set: true, disabled: false, created_at: expect.any(String) }),
    ]);
    expect(res.text).not.toMatch(/password_hash|\$argon2|\$scrypt/);
  });

  it('pages through every user exactly once', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { id: string }[]; next_cursor: string | null } } = await api.get(`/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      ids.push(...page.body.items.map((u) => u.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
    expect((await api.get('/users?cursor=bm90LWEtdXVpZA')).status).toBe(400);
  });

  it('gets one user with claims and linked identities, and 404 for an unknown id', async () => {
    const res = await api.get(`/users/${adaId}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: adaId, email: 'ada@example.com', name: 'Ada Lovelace', claims: {}, identities: [] });
    expect((await api.get('/users/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await api.get('/users/not-a-uuid')).status).toBe(404);
  });
});

describe('sessions through the admin API', () => {
  it('lists the sessions of an account and ends one so the browser must sign in again and the app is told', async () => {
    const { browser, tokens } = await passwordLogin(config, { redirectUri: APP, email: 'ada@example.com', password: 'analytical-engine-1843', scope: 'openid email' });
    await passwordLogin(config, { redirectUri: APP, email: 'Grace@Example.com', password: 'nanoseconds-1906' });
    expect(await silentAuthorization(browser)).toBe('code');

    const listed = await api.get(`/sessions?account_id=${adaId}`);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([
      {
        id: expect.any(String), account_id: adaId, idp: 'local', amr: ['pwd'], upstream: null, created_at: expect.any(String), expires_at: expect.any(String),
        started_from: { ip: '127.0.0.1', user_agent: expect.any(String) },
      },
    ]);
    expect((await api.get('/sessions')).body.items).toHaveLength(2);
    const id = listed.body.items[0].id as string;

    expect((await api.delete(`/sessions/${id}`)).status).toBe(204);
    expect(await silentAuthorization(browser)).toBe('login_required');
    // The application of the session gets a logout token for it, and the grant is revoked.
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload } = await jose.jwtVerify(await receiver.next(), jwks, { issuer: server.url, audience: 'web', typ: 'logout+jwt' });
    expect(payload).toMatchObject({ sub: adaId, sid: tokens.claims()!.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
    expect((await api.get(`/sessions?account_id=${adaId}`)).body.items).toEqual([]);
    expect((await api.get(`/sessions?account_id=${graceId}`)).body.items).toHaveLength(1);
    expect((await api.delete(`/sessions/${id}`)).status).toBe(404);

    const audit = await api.get(`/audit?resource_type=session&resource_id=${id}`);
    expect(audit.body.items).toEqual([
      expect.objectContaining({ action: 'end', actor: 'ops-console', resource_id: id, before: expect.objectContaining({ account_id: adaId, idp: 'local' }), after: null }),
    ]);
  });

  it('filters sessions by provider alias and refuses unknown filters', async () => {
    expect((await api.get('/sessions?idp=local')).body.items).toHaveLength(1);
    expect((await api.get('/sessions?idp=acme')).body.items).toEqual([]);
    // A session that ended at the engine (a sign-out) is no longer listed, though its row lives on for refresh tokens.
    const [grace] = (await api.get(`/sessions?account_id=${graceId}`)).body.items as { id: string }[];
    await (await server.node.services.engine.provider.Session.findByUid(grace!.id))!.destroy();
    expect(await server.node.services.loginSessions.get(grace!.id)).toBeDefined();
    expect((await api.get('/sessions')).body.items).toEqual([]);

    const bad = await api.get('/sessions?user=ada');
    expect(bad.status).toBe(400);
    expect(problemFields(bad)).toEqual(['user']);
  });
});
