import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { generateTestKey } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';
import { AdminApi, problemFields, startAdminNode } from './admin-api.ts';

const SECRET = 'upstream-client-secret-7f3a9c';

const ACME = {
  alias: 'acme',
  kind: 'oidc',
  display_name: 'Acme Corp',
  enabled: true,
  domains: ['acme.example'],
  settings: { issuer: 'https://idp.acme.example', client_id: 'realmgate', scopes: ['openid', 'email', 'profile'] },
  secrets: { client_secret: SECRET },
  claim_mappings: { email: 'email', name: 'name' },
};

const { secrets: _secrets, ...ACME_WRITTEN } = ACME;
/** The provider as read back: what was written, with the default linking policy. */
const ACME_READ = { ...ACME_WRITTEN, email_trust: 'domains', linking: 'confirm', provisioning: 'auto', require_local_mfa: false };

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
const logLines: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  server = await startAdminNode(database.db, {}, { logger: pino({ level: 'trace' }, sink) });
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const audit = async (query: string) => (await api.get(`/audit?${query}`)).body.items as Record<string, unknown>[];

describe('providers through the admin API', () => {
  it('creates a provider and returns it exactly as documented, without its secrets', async () => {
    const res = await api.post('/providers', ACME);
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/admin/api/providers/acme');
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.body).toEqual({ ...ACME_READ, version: 1, secrets_set: ['client_secret'], status: {} });
    expect(res.text).not.toContain(SECRET);

    const read = await api.get('/providers/acme');
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('"1"');
    expect(read.body).toEqual({ ...ACME_READ, version: 1, secrets_set: ['client_secret'], status: {} });
    expect(read.text).not.toContain(SECRET);
    // Stored sealed, usable by the federation flow.
    expect((await server.node.services.providers.load('acme'))?.secrets).toEqual({ client_secret: SECRET });
  });

  it('lists every invalid field at once, common and kind-specific, and stores nothing', async () => {
    const res = await api.post('/providers', {
      alias: 'Bad Alias!',
      kind: 'oidc',
      display_name: '',
      enabled: 'yes',
      domains: ['not a domain'],
      settings: { issuer: 'ftp://idp.example', scopes: ['email'], colour: 'blue' },
      secrets: { client_secret: SECRET, api_key: 'x' },
      claim_mappings: { email: 42 },
      extra: true,
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:realmgate:problem:invalid_request', title: expect.any(String), status: 400, detail: expect.any(String) });
    expect(problemFields(res)).toEqual(
      [
        'alias', 'display_name', 'enabled', 'domains.0', 'claim_mappings.email', 'extra', 'secrets.api_key',
        'settings.issuer', 'settings.client_id', 'settings.scopes', 'settings.colour',
      ].sort(),
    );
    expect(res.text).not.toContain(SECRET);
    expect((await api.get('/providers?limit=200')).body.items.map((p: { alias: string }) => p.alias)).toEqual(['acme']);
    expect(await audit('resource_type=provider&resource_id=Bad%20Alias!')).toEqual([]);
  });

  it('refuses an unknown kind and names the kinds it knows', async () => {
    const res = await api.post('/providers', { ...ACME, alias: 'ldap', kind: 'ldap', domains: [] });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'kind', message: expect.stringContaining('oidc') }]);
  });

  it('answers 409 for a domain another provider owns, and for a taken alias', async () => {
    const domain = await api.post('/providers', { ...ACME, alias: 'acme-two', domains: ['other.example', 'ACME.example'] });
    expect(domain.status).toBe(409);
    expect(problemFields(domain)).toEqual(['domains']);
    expect(domain.body.detail).toContain('acme.example');
    expect((await api.get('/providers/acme-two')).status).toBe(404);

    const alias = await api.post('/providers', { ...ACME, domains: [] });
    expect(alias.status).toBe(409);
    expect(problemFields(alias)).toEqual(['alias']);
  });

  it('replaces a provider with PUT, keeps secrets not named, and honours If-Match', async () => {
    const stale = await api.put('/providers/acme', { ...ACME_READ, display_name: 'Stale' }, { 'if-match': '"7"' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('etag')).toBe('"1"');
    expect((await api.get('/providers/acme')).body.display_name).toBe('Acme Corp');

    const res = await api.put('/providers/acme', { ...ACME_READ, display_name: 'Acme Corporation', domains: ['acme.example', 'acme.test'] }, { 'if-match': '"1"' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"2"');
    expect(res.body).toMatchObject({ display_name: 'Acme Corporation', domains: ['acme.example', 'acme.test'], version: 2, secrets_set: ['client_secret'] });
    expect((await server.node.services.providers.load('acme'))?.secrets).toEqual({ client_secret: SECRET });
  });

  it('refuses to change the alias or the kind', async () => {
    const res = await api.put('/providers/acme', { ...ACME_READ, alias: 'acme-renamed', kind: 'saml' });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['alias', 'kind']);
  });

  it('patches with JSON Merge Patch: settings merge key by key, secrets change by name', async () => {
    const res = await api.patch('/providers/acme', { settings: { scopes: ['openid', 'email'] }, claim_mappings: { name: null }, secrets: { client_secret: 'rotated-upstream-secret' } }, { 'if-match': '"2"' });
    expect(res.status).toBe(200);
    expect(res.body.settings).toEqual({ ...ACME.settings, scopes: ['openid', 'email'] });
    expect(res.body.claim_mappings).toEqual({ email: 'email' });
    expect(res.body.version).toBe(3);
    expect(res.text).not.toContain('rotated-upstream-secret');
    expect((await server.node.services.providers.load('acme'))?.secrets).toEqual({ client_secret: 'rotated-upstream-secret' });

    const removeRequired = await api.patch('/providers/acme', { secrets: { client_secret: null } });
    expect(removeRequired.status).toBe(400);
    expect(problemFields(removeRequired)).toEqual(['secrets.client_secret']);
    expect((await api.get('/providers/acme')).body.version).toBe(3);
  });

  it('disables and enables with PATCH or the enable/disable actions', async () => {
    const off = await api.post('/providers/acme/disable');
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, version: 4 });
    expect((await api.get('/providers?enabled=false')).body.items.map((p: { alias: string }) => p.alias)).toEqual(['acme']);
    expect((await api.get('/providers?enabled=true')).body.items).toEqual([]);
    const again = await api.post('/providers/acme/disable');
    expect(again.body.version).toBe(4);
    const on = await api.patch('/providers/acme', { enabled: true });
    expect(on.body).toMatchObject({ enabled: true, version: 5 });
    expect((await api.post('/providers/acme/enable', undefined, { 'if-match': '"4"' })).status).toBe(412);
  });

  it('pages and filters the list by kind, enabled and domain', async () => {
    for (const alias of ['beta', 'gamma', 'delta']) {
      const res = await api.post('/providers', { ...ACME, alias, display_name: alias, domains: [`${alias}.example`] });
      expect(res.status).toBe(201);
    }
    const first = await api.get('/providers?limit=3');
    expect(first.body.items.map((p: { alias: string }) => p.alias)).toEqual(['acme', 'beta', 'delta']);
    const second = await api.get(`/providers?limit=3&cursor=${first.body.next_cursor}`);
    expect(second.body.items.map((p: { alias: string }) => p.alias)).toEqual(['gamma']);
    expect(second.body.next_cursor).toBeNull();
    expect((await api.get('/providers?domain=GAMMA.example')).body.items.map((p: { alias: string }) => p.alias)).toEqual(['gamma']);
    expect((await api.get('/providers?kind=saml')).body.items).toEqual([]);
    expect((await api.get('/providers?kind=oidc')).body.items).toHaveLength(4);
    const bad = await api.get('/providers?enabled=maybe&limit=1000');
    expect(bad.status).toBe(400);
    expect(problemFields(bad)).toEqual(['enabled', 'limit']);
    for (const p of [...first.body.items, ...second.body.items]) expect(JSON.stringify(p)).not.toContain(SECRET);
  });

  it('deletes with If-Match, then answers 404', async () => {
    expect((await api.delete('/providers/delta', { 'if-match': '"2"' })).status).toBe(412);
    expect((await api.delete('/providers/delta', { 'if-match': '"1"' })).status).toBe(204);
    expect((await api.get('/providers/delta')).status).toBe(404);
    expect((await api.delete('/providers/delta')).status).toBe(404);
    // Its domain is free again.
    expect((await api.post('/providers', { ...ACME, alias: 'delta-2', domains: ['delta.example'] })).status).toBe(201);
  });

  it('audits every change with actor, action, before and after, without secret values', async () => {
    const entries = await audit('resource_type=provider&resource_id=acme');
    expect(entries.map((e) => e.action)).toEqual(['update', 'disable', 'update', 'replace', 'create']);
    for (const e of entries) expect(e).toMatchObject({ actor: 'ops-console', resource_type: 'provider', resource_id: 'acme', at: expect.any(String), request_id: expect.any(String) });
    expect(entries[4]).toMatchObject({ before: null, after: { alias: 'acme', version: 1, secrets_set: ['client_secret'] } });
    expect(entries[3]).toMatchObject({ before: { display_name: 'Acme Corp' }, after: { display_name: 'Acme Corporation', version: 2 } });
    const deleted = await audit('resource_type=provider&resource_id=delta');
    expect(deleted.map((e) => e.action)).toEqual(['delete', 'create']);
    expect(deleted[0]).toMatchObject({ before: { alias: 'delta' }, after: null });
    const all = JSON.stringify(await audit('resource_type=provider&limit=200'));
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('rotated-upstream-secret');

    const page = await api.get('/audit?resource_type=provider&limit=2');
    expect(page.body.items).toHaveLength(2);
    const next = await api.get(`/audit?resource_type=provider&limit=2&cursor=${page.body.next_cursor}`);
    expect(next.body.items[0].id).toBeLessThan(page.body.items[1].id);
  });

  it('never writes a secret value to the log', () => {
    const text = logLines.join('');
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('rotated-upstream-secret');
  });
});

describe('a SAML provider through the admin API', () => {
  it('generates the SP key pair on create, keeps it on change, never returns the key, and tests ok', async () => {
    const idpKey = await generateTestKey('Admin Test IdP');
    const created = await api.post('/providers', {
      alias: 'contoso',
      kind: 'saml',
      display_name: 'Contoso',
      domains: ['contoso.example'],
      settings: { idp_entity_id: 'https://idp.contoso.example', sso_url: 'https://idp.contoso.example/sso', idp_certificates: [idpKey.certificatePem] },
    });
    expect(created.status).toBe(201);
    expect(created.body.secrets_set).toEqual(['sp_private_key']);
    const certificate = created.body.settings.sp_certificate as string;
    expect(certificate).toMatch(/BEGIN CERTIFICATE/);
    expect(created.text).not.toMatch(/PRIVATE KEY/);
    const key = (await server.node.services.providers.load('contoso'))!.secrets.sp_private_key;
    expect(key).toMatch(/PRIVATE KEY/);

    const renamed = await api.patch('/providers/contoso', { display_name: 'Contoso Ltd' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.settings.sp_certificate).toBe(certificate);
    expect((await server.node.services.providers.load('contoso'))!.secrets.sp_private_key).toBe(key);

    const tested = await api.post('/providers/contoso/test');
    expect(tested.body).toEqual({ ok: true, checks: [{ name: 'kind', ok: true }, { name: 'settings', ok: true }, { name: 'open', ok: true }] });
    const audit = JSON.stringify((await api.get('/audit?resource_type=provider&resource_id=contoso')).body);
    expect(audit).not.toMatch(/PRIVATE KEY/);
  });

  it('lists every invalid SAML setting at once', async () => {
    const res = await api.post('/providers', { alias: 'broken-saml', kind: 'saml', display_name: 'Broken', settings: { sso_url: 'not a url', want_assertions_signed: 'yes' } });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(expect.arrayContaining(['settings.sso_url', 'settings.want_assertions_signed']));
  });
});
