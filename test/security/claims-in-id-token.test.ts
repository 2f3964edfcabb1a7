import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addUser } from '../support/fixtures.ts';
import { discoverAs, passwordLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';

const ADA = { email: 'ada@example.com', password: 'correct horse battery', name: 'Ada Lovelace' };

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;

/** Creates a client through the admin API and returns openid-client's configuration for it. */
async function client(clientId: string, extra: Record<string, unknown>) {
  const redirectUri = `http://127.0.0.1:1/${clientId}/cb`;
  const secret = `${clientId}-secret-0123456789abcdef`;
  const res = await api.post('/clients', {
    client_id: clientId,
    client_secret: secret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    require_consent: false,
    ...extra,
  });
  expect(res.status, res.text).toBe(201);
  return { config: await discoverAs(server.url, clientId, secret), redirectUri, body: res.body };
}

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  await addUser(server.node, ADA);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe('claims_in_id_token', () => {
  it('is false by default: the ID token carries sub, idp and amr, and userinfo the profile claims', async () => {
    const app = await client('plain', {});
    expect(app.body.claims_in_id_token).toBeUndefined();
    const { tokens } = await passwordLogin(app.config, { redirectUri: app.redirectUri, email: ADA.email, password: ADA.password, scope: 'openid email profile' });
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ idp: 'local', amr: ['pwd'] });
    expect(claims).not.toHaveProperty('email');
    expect(claims).not.toHaveProperty('name');
    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ email: ADA.email, name: ADA.name });
  });

  it('when true, puts the claims of the granted scopes in the ID token, at the code exchange and at refresh', async () => {
    const app = await client('rich', { claims_in_id_token: true });
    expect(app.body.claims_in_id_token).toBe(true);
    const { tokens } = await passwordLogin(app.config, { redirectUri: app.redirectUri, email: ADA.email, password: ADA.password, scope: 'openid email profile offline_access', params: { prompt: 'consent' } });
    expect(tokens.claims()).toMatchObject({ idp: 'local', amr: ['pwd'], email: ADA.email, email_verified: expect.any(Boolean), name: ADA.name });
    const refreshed = await oidc.refreshTokenGrant(app.config, tokens.refresh_token!);
    expect(refreshed.claims()).toMatchObject({ email: ADA.email, name: ADA.name });
  });

  it('when true, still carries only the claims of the scopes granted', async () => {
    const app = await client('rich-email', { claims_in_id_token: true });
    const { tokens } = await passwordLogin(app.config, { redirectUri: app.redirectUri, email: ADA.email, password: ADA.password, scope: 'openid email' });
    expect(tokens.claims()).toMatchObject({ email: ADA.email });
    expect(tokens.claims()).not.toHaveProperty('name');
  });

  it('is refused when it is not a boolean, naming the field', async () => {
    const res = await api.post('/clients', { client_id: 'wrong', redirect_uris: ['https://app.example/cb'], claims_in_id_token: 'yes' });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['claims_in_id_token']);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await api.get('/openapi.json')).body;
    expect(doc.components.schemas.Client.properties.claims_in_id_token).toMatchObject({ type: 'boolean', default: false });
  });
});
