import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import type { TestServer } from '../support/server.ts';
import { AdminApi, clientCredentialsToken, problemFields, startAdminNode } from './admin-api.ts';

const WEB = {
  client_id: 'web',
  client_name: 'Web',
  redirect_uris: ['https://app.example.test/callback'],
  post_logout_redirect_uris: ['https://app.example.test/'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  allowed_providers: ['acme'],
  local_login: false,
  require_consent: false,
};

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const auditOf = async (id: string) => (await api.get(`/audit?resource_type=client&resource_id=${id}`)).body.items as { action: string; before: unknown; after: unknown; actor: string }[];

describe('clients through the admin API', () => {
  it('registers a confidential client, generates its secret and returns it only once', async () => {
    const created = await api.post('/clients', WEB);
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/admin/api/clients/web');
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.body).toMatchObject({ ...WEB, version: 1, client_secret_set: true });
    const secret = created.body.client_secret as string;
    expect(secret.length).toBeGreaterThanOrEqual(32);

    const read = await api.get('/clients/web');
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('"1"');
    expect(read.body).toMatchObject({ ...WEB, client_secret_set: true, version: 1 });
    expect(read.body.client_secret).toBeUndefined();
    expect(read.text).not.toContain(secret);
    expect((await api.get('/clients')).text).not.toContain(secret);
    expect(JSON.stringify(await auditOf('web'))).not.toContain(secret);
  });

  it('registers a client whose generated secret works at the token endpoint at once', async () => {
    const created = await api.post('/clients', {
      client_id: 'batch-job',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'email',
    });
    expect(created.status).toBe(201);
    const token = await clientCredentialsToken(server.url, 'batch-job', created.body.client_secret, 'email');
    expect(token).toBeTruthy();
  });

  it('keeps a given secret write-only and registers public clients without one', async () => {
    const given = await api.post('/clients', {
      client_id: 'batch-2', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], client_secret: 'batch-two-secret-batch-two',
    });
    expect(given.status).toBe(201);
    expect(given.body).toMatchObject({ client_secret_set: true });
    expect(given.body.client_secret).toBeUndefined();
    expect(given.text).not.toContain('batch-two-secret-batch-two');
    expect(await clientCredentialsToken(server.url, 'batch-2', 'batch-two-secret-batch-two')).toBeTruthy();

    const spa = await api.post('/clients', { client_id: 'spa', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' });
    expect(spa.status).toBe(201);
    expect(spa.body).toMatchObject({ client_secret_set: false });
    expect(spa.body.client_secret).toBeUndefined();
  });

  it('lists every invalid field at once, using the token engine\'s own rules, and stores nothing', async () => {
    const res = await api.post('/clients', {
      client_id: 'bad client!',
      redirect_uris: ['not a url'],
      grant_types: ['password'],
      local_login: 'no',
      allowed_providers: ['Not An Alias'],
      token_endpoint_auth_method: 'magic',
      favourite_colour: 'blue',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.type).toBe('urn:realmgate:problem:invalid_request');
    expect(problemFields(res)).toEqual(
      ['allowed_providers.0', 'client_id', 'favourite_colour', 'grant_types', 'local_login', 'redirect_uris', 'token_endpoint_auth_method'].sort(),
    );
    for (const e of res.body.errors) expect(e.message).toEqual(expect.any(String));
    expect((await api.get('/clients/bad%20client!')).status).toBe(404);
    expect(await auditOf('bad client!')).toEqual([]);
  });

  it('refuses a client_id that is taken with 409', async () => {
    const res = await api.post('/clients', { ...WEB });
    expect(res.status).toBe(409);
    expect(problemFields(res)).toEqual(['client_id']);
  });

  it('replaces a client, keeping its secret, and honours If-Match', async () => {
    const before = await api.get('/clients/web');
    const stale = await api.put('/clients/web', { ...WEB, client_name: 'Stale' }, { 'if-match': '"99"' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('etag')).toBe(before.headers.get('etag'));

    const replaced = await api.put('/clients/web', { ...WEB, client_name: 'Web v2', local_login: true }, { 'if-match': before.headers.get('etag')! });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ client_name: 'Web v2', local_login: true, client_secret_set: true, version: before.body.version + 1 });
    expect(replaced.body.client_secret).toBeUndefined();
    expect(replaced.headers.get('etag')).toBe(`"${before.body.version + 1}"`);

    const again = await api.put('/clients/web', { ...WEB, client_name: 'Lost update' }, { 'if-match': before.headers.get('etag')! });
    expect(again.status).toBe(412);
    expect((await api.get('/clients/web')).body.client_name).toBe('Web v2');
  });

  it('refuses to change a client_id through PUT', async () => {
    const res = await api.put('/clients/web', { ...WEB, client_id: 'other' });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['client_id']);
  });

  it('patches a client with JSON Merge Patch and rotates its secret on request', async () => {
    const patched = await api.patch('/clients/web', { client_name: null, allowed_providers: ['acme', 'globex'], client_secret: 'rotated-secret-rotated-secret' });
    expect(patched.status).toBe(200);
    expect(patched.body.client_name).toBeUndefined();
    expect(patched.body.allowed_providers).toEqual(['acme', 'globex']);
    expect(patched.body.redirect_uris).toEqual(WEB.redirect_uris);
    expect(patched.text).not.toContain('rotated-secret-rotated-secret');
    const stored = await server.node.services.clients.findForEngine('web');
    expect(stored?.client_secret).toBe('rotated-secret-rotated-secret');

    const invalid = await api.patch('/clients/web', { redirect_uris: 'https://x.example', require_consent: 'yes' });
    expect(invalid.status).toBe(400);
    expect(problemFields(invalid)).toEqual(['redirect_uris', 'require_consent']);
    expect((await api.get('/clients/web')).body.version).toBe(patched.body.version);
  });

  it('deletes a client with If-Match and answers 404 afterwards', async () => {
    const current = await api.get('/clients/spa');
    expect((await api.delete('/clients/spa', { 'if-match': '"42"' })).status).toBe(412);
    expect((await api.delete('/clients/spa', { 'if-match': current.headers.get('etag')! })).status).toBe(204);
    expect((await api.get('/clients/spa')).status).toBe(404);
    expect((await api.delete('/clients/spa')).status).toBe(404);
  });

  it('pages through clients with limit and cursor', async () => {
    const first = await api.get('/clients?limit=2');
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const seen = first.body.items.map((c: { client_id: string }) => c.client_id);
    let cursor = first.body.next_cursor as string | null;
    while (cursor) {
      const page = await api.get(`/clients?limit=2&cursor=${cursor}`);
      seen.push(...page.body.items.map((c: { client_id: string }) => c.client_id));
      cursor = page.body.next_cursor;
    }
    const all = (await api.get('/clients?limit=200')).body.items.map((c: { client_id: string }) => c.client_id);
    expect(seen).toEqual(all);
    expect(new Set(seen).size).toBe(seen.length);

    const bad = await api.get('/clients?limit=0&cursor=@@&colour=red');
    expect(bad.status).toBe(400);
    expect(problemFields(bad)).toEqual(['colour', 'cursor', 'limit']);
  });

  it('audits each change with its actor, before and after, and no secret', async () => {
    const entries = await auditOf('web');
    expect(entries.map((e) => e.action)).toEqual(['update', 'replace', 'create']);
    expect(entries.every((e) => e.actor === 'ops-console')).toBe(true);
    expect(entries[2]).toMatchObject({ before: null, after: { client_id: 'web', client_secret_set: true, version: 1 } });
    expect(entries[0]).toMatchObject({ before: { client_name: 'Web v2' }, after: { allowed_providers: ['acme', 'globex'] } });
    expect(JSON.stringify(entries)).not.toMatch(/rotated-secret|client_secret"\s*:\s*"/);
  });
});
