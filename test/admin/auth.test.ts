import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient } from '../support/fixtures.ts';
import type { TestServer } from '../support/server.ts';
import { ADMIN_CLIENT, AdminApi, clientCredentialsToken, startAdminNode } from './admin-api.ts';

let database: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  await addClient(server.node, {
    client_id: 'reporting',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'email',
  }, 'reporting-secret-reporting');
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe('admin API authorisation', () => {
  it('answers 401 with a Bearer challenge when no token is sent', async () => {
    const res = await new AdminApi(server.url).get('/providers');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="realmgate-admin"');
    expect(res.body).toMatchObject({ type: 'urn:realmgate:problem:unauthorized', status: 401 });
  });

  it('answers 401 invalid_token for a token it never issued', async () => {
    const res = await new AdminApi(server.url, 'not-a-token-of-ours').get('/providers');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('answers 401 for an Authorization header that is not a bearer token', async () => {
    const res = await new AdminApi(server.url).get('/providers', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_request"/);
  });

  it('answers 403 insufficient_scope for a valid token without the admin scope', async () => {
    const token = await clientCredentialsToken(server.url, 'reporting', 'reporting-secret-reporting', 'email');
    const res = await new AdminApi(server.url, token).get('/providers');
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope", scope="admin"/);
  });

  it('never gets an admin token for a client not registered with the admin scope', async () => {
    // The engine's client default scope is the OpenID Connect scopes: admin stays opt-in per client
    // (and the admin API checks the registration again on every request).
    await addClient(server.node, {
      client_id: 'unscoped',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    }, 'unscoped-secret-unscoped');
    await expect(clientCredentialsToken(server.url, 'unscoped', 'unscoped-secret-unscoped', 'admin')).rejects.toThrow(/invalid_scope/);
  });

  it('accepts an admin token from the bootstrap admin client', async () => {
    const api = await AdminApi.connect(server.url);
    const res = await api.get('/providers');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [], next_cursor: null });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses a token once it is revoked', async () => {
    const token = await clientCredentialsToken(server.url, ADMIN_CLIENT.id, ADMIN_CLIENT.secret, 'admin');
    const api = new AdminApi(server.url, token);
    expect((await api.get('/clients')).status).toBe(200);
    const revoked = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN_CLIENT.id}:${ADMIN_CLIENT.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(revoked.status).toBe(200);
    expect((await api.get('/clients')).status).toBe(401);
  });

  it('refuses the tokens of a client that was deleted', async () => {
    const api = await AdminApi.connect(server.url);
    await addClient(server.node, {
      client_id: 'temp-admin',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'admin',
    }, 'temp-admin-secret-temp-admin');
    const temp = new AdminApi(server.url, await clientCredentialsToken(server.url, 'temp-admin', 'temp-admin-secret-temp-admin', 'admin'));
    expect((await temp.get('/clients')).status).toBe(200);
    expect((await api.delete('/clients/temp-admin')).status).toBe(204);
    expect((await temp.get('/clients')).status).toBe(401);
  });

  it('serves the OpenAPI document without a token', async () => {
    const res = await new AdminApi(server.url).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
  });

  it('answers 404 and 405 as problems instead of falling through to the token engine', async () => {
    const api = await AdminApi.connect(server.url);
    const missing = await api.get('/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const wrongMethod = await api.request('PUT', '/providers', { body: {} });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST');
  });

  it('refuses bodies that are not JSON, and malformed JSON, with a problem', async () => {
    const api = await AdminApi.connect(server.url);
    const form = await api.request('POST', '/clients', { raw: 'client_id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    const broken = await api.request('POST', '/clients', { raw: '{"client_id": ', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(broken.body.type).toBe('urn:realmgate:problem:malformed_json');
  });
});
