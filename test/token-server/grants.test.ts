import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { discoverAs, passwordLogin } from '../support/login.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const API = 'https://api.example.test';
const SPA = 'http://127.0.0.1:1/spa/callback';

let database: TestDatabase;
let server: TestServer;
let accountId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_ADMIN_CLIENT_ID: 'ops', REALMGATE_ADMIN_CLIENT_SECRET: 'ops-secret-ops-secret' });
  accountId = (await addUser(server.node, { email: 'grace@example.com', password: 'nanoseconds-1906' })).id;
  await server.node.services.resourceServers.save({ identifier: API, scopes: ['orders:read', 'orders:write'], accessTokenTtlSeconds: 300 });
  await addClient(server.node, {
    client_id: 'batch',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
  }, 'batch-secret-batch-secret');
  await addClient(server.node, {
    client_id: 'spa',
    redirect_uris: [SPA],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    require_consent: false,
  });
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const jwks = () => jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));

describe('client_credentials', () => {
  it('issues a JWT access token for a registered resource, verifiable against the JWKS', async () => {
    const config = await oidc.discovery(new URL(server.url), 'batch', 'batch-secret-batch-secret', oidc.ClientSecretPost('batch-secret-batch-secret'), { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'orders:read' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks(), { issuer: server.url, audience: API, typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ client_id: 'batch', scope: 'orders:read' });
    expect(payload.exp! - payload.iat!).toBe(300);
  });

  it('refuses an unregistered resource', async () => {
    const config = await oidc.discovery(new URL(server.url), 'batch', 'batch-secret-batch-secret', oidc.ClientSecretPost('batch-secret-batch-secret'), { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(config, { resource: 'https://unknown.example.test', scope: 'orders:read' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('gives the bootstrap admin client an admin-scoped token', async () => {
    const config = await discoverAs(server.url, 'ops', 'ops-secret-ops-secret');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'admin' });
    expect(tokens.scope).toBe('admin');
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, scope: 'admin', client_id: 'ops' });
  });

  it('refuses the admin scope to a client not registered for it', async () => {
    const config = await oidc.discovery(new URL(server.url), 'batch', 'batch-secret-batch-secret', oidc.ClientSecretPost('batch-secret-batch-secret'), { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(config, { scope: 'admin' })).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('rejects a wrong client secret', async () => {
    const config = await discoverAs(server.url, 'ops', 'not-the-secret-at-all');
    await expect(oidc.clientCredentialsGrant(config, { scope: 'admin' })).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('public clients', () => {
  it('signs in with a pushed authorization request (PAR) and a DPoP-bound access token', async () => {
    const config = await discoverAs(server.url, 'spa');
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const { tokens } = await passwordLogin(config, { redirectUri: SPA, email: 'grace@example.com', password: 'nanoseconds-1906', par: true, DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, accountId, { DPoP });
    expect(userinfo.sub).toBe(accountId);
    // Without the DPoP proof the bound token is useless.
    await expect(oidc.fetchUserInfo(config, tokens.access_token, accountId)).rejects.toBeTruthy();
  });

  it('issues a resource-bound JWT access token after login when the application names a resource', async () => {
    const config = await discoverAs(server.url, 'spa');
    const { tokens } = await passwordLogin(config, {
      redirectUri: SPA,
      email: 'grace@example.com',
      password: 'nanoseconds-1906',
      scope: 'openid orders:read',
      params: { resource: API },
    });
    const { payload } = await jose.jwtVerify(tokens.access_token, jwks(), { issuer: server.url, audience: API });
    expect(payload).toMatchObject({ sub: accountId, scope: 'orders:read', client_id: 'spa' });
  });
});
