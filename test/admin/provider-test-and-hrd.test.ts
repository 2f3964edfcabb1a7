import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, type UpstreamIdp } from '../support/upstream-idp.ts';
import { AdminApi, oidcProviderBody, problemFields, startAdminNode } from './admin-api.ts';

let database: TestDatabase;
let server: TestServer;
let guarded: TestServer;
let idp: UpstreamIdp;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  idp = await startUpstreamIdp();
  server = await startAdminNode(database.db);
  // A second node on the same database with the default SSRF guard: loopback upstreams refused.
  guarded = await startAdminNode(database.db, { REALMGATE_ALLOW_PRIVATE_NETWORK: 'false' });
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await guarded?.close();
  await server?.close();
  await idp?.close();
  await database?.close();
});

describe('POST providers/<alias>/test', () => {
  it('reports discovery and keys reachable for a working upstream', async () => {
    expect((await api.post('/providers', oidcProviderBody('acme', idp.issuer, { domains: ['acme.example'] }))).status).toBe(201);
    const discoveryBefore = idp.hits.get('/.well-known/openid-configuration') ?? 0;
    const res = await api.post('/providers/acme/test');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      ok: true,
      checks: [
        { name: 'kind', ok: true },
        { name: 'settings', ok: true },
        { name: 'open', ok: true },
        { name: 'id_token_signing_alg', ok: true, detail: 'ID tokens signed RS256' },
        { name: 'token_endpoint_auth_method', ok: true, detail: 'client_secret_basic' },
      ],
    });
    expect(idp.hits.get('/.well-known/openid-configuration')).toBe(discoveryBefore + 1);
    expect(idp.hits.get('/jwks')).toBeGreaterThan(0);
  });

  it('reports an unreachable issuer as a failed open, without secrets in the answer', async () => {
    const closedPort = await freePort();
    expect((await api.post('/providers', oidcProviderBody('down', `http://127.0.0.1:${closedPort}`))).status).toBe(201);
    const res = await api.post('/providers/down/test');
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'open', ok: false, detail: expect.stringContaining('unavailable') });
    expect(res.text).not.toContain('down-upstream-secret');
  });

  it('refuses loopback upstreams on a node with the SSRF guard on', async () => {
    const guardedApi = await AdminApi.connect(guarded.url);
    const res = await guardedApi.post('/providers/acme/test');
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'open', ok: false });
  });

  it('answers 404 for an unknown provider', async () => {
    expect((await api.post('/providers/nobody/test')).status).toBe(404);
  });
});

describe('GET hrd/explain', () => {
  beforeAll(async () => {
    expect((await api.post('/providers', oidcProviderBody('globex', idp.issuer, { domains: ['globex.example'] }))).status).toBe(201);
    for (const client of [
      { client_id: 'all-providers', redirect_uris: ['https://app.example.test/cb'] },
      { client_id: 'acme-only', redirect_uris: ['https://app.example.test/cb'], allowed_providers: ['acme'], local_login: false },
    ]) {
      expect((await api.post('/clients', client)).status).toBe(201);
    }
  });

  const explain = (query: string) => api.get(`/hrd/explain?${query}`);

  it('sends an explicit idp_hint to that provider', async () => {
    const res = await explain('client_id=all-providers&idp_hint=globex&login_hint=alice@acme.example');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ decision: { action: 'redirect', provider: 'globex' }, rule: 'idp_hint', candidates: ['acme', 'down', 'globex'] });
  });

  it('follows the domain of login_hint', async () => {
    const res = await explain('client_id=all-providers&login_hint=bob@GLOBEX.example');
    expect(res.body).toMatchObject({ decision: { action: 'redirect', provider: 'globex' }, rule: 'login_hint' });
  });

  it('refuses a hint naming a provider the client may not use, never falling back', async () => {
    const res = await explain('client_id=acme-only&idp_hint=globex');
    expect(res.body).toEqual({ decision: { action: 'error', error: 'provider_not_allowed', provider: 'globex' }, rule: 'idp_hint', candidates: ['acme'] });
  });

  it('sends a client with one allowed provider and no password form straight there', async () => {
    const res = await explain('client_id=acme-only');
    expect(res.body).toMatchObject({ decision: { action: 'redirect', provider: 'acme' }, rule: 'single_provider' });
  });

  it('shows the picker when nothing decides', async () => {
    const res = await explain('client_id=all-providers');
    expect(res.body).toEqual({
      decision: { action: 'picker', providers: ['acme', 'down', 'globex'], local_login: true, email_first: true },
      rule: 'picker',
      candidates: ['acme', 'down', 'globex'],
    });
  });

  it('stops offering a provider once it is disabled', async () => {
    expect((await api.post('/providers/globex/disable')).status).toBe(200);
    const res = await explain('client_id=all-providers&login_hint=bob@globex.example');
    expect(res.body).toMatchObject({ rule: 'picker', candidates: ['acme', 'down'] });
    expect((await api.post('/providers/globex/enable')).status).toBe(200);
  });

  it('answers 400 without client_id and 404 for an unknown client', async () => {
    const missing = await explain('login_hint=a@b.example');
    expect(missing.status).toBe(400);
    expect(problemFields(missing)).toEqual(['client_id']);
    expect((await explain('client_id=nobody')).status).toBe(404);
  });
});
