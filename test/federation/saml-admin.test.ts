import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshDueProviders } from '../../src/federation/provider-refresh.ts';
import { createOpenContext } from '../../src/federation/upstream-fetch.ts';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { answer, goToSamlIdp, postToAcs, samlLogin, spCertificateOf } from '../support/saml-federation.ts';
import { TestSamlIdp, generateTestKey, type TestKey } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, type UpstreamIdp } from '../support/upstream-idp.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let idp: TestSamlIdp;
let metadataUrl: string;
let app: TestApp;
let oldKey: TestKey;
let newKey: TestKey;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  idp = await TestSamlIdp.create('https://idp.corp.example/saml');
  oldKey = idp.key;
  newKey = await generateTestKey('Corp IdP next');
  metadataUrl = await idp.serveMetadata();
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

describe('a SAML IdP added from its metadata URL through the admin API', () => {
  it('is created with a generated SP key pair, serves SP metadata and signs users in at once', async () => {
    const created = await api.post('/providers', {
      alias: 'corp',
      kind: 'saml',
      display_name: 'Corp SSO',
      domains: ['corp.example'],
      settings: { metadata_url: metadataUrl },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ alias: 'corp', kind: 'saml', version: 1, secrets_set: ['sp_private_key'], status: {} });
    expect(created.body.settings.sp_certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(created.text).not.toContain('PRIVATE KEY');

    const metadata = await new HttpSession().request(`${server.url}/federation/corp/saml/metadata`);
    expect(metadata.status).toBe(200);
    expect(metadata.body).toContain(created.body.settings.sp_certificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '').slice(0, 60));

    const tested = await api.post('/providers/corp/test');
    expect(tested.body).toEqual({ ok: true, checks: [{ name: 'kind', ok: true }, { name: 'settings', ok: true }, { name: 'open', ok: true }] });

    const { claims } = await samlLogin(app, idp, server, 'corp', { params: { login_hint: 'ann@corp.example' }, response: { nameId: 'ann' } });
    expect(claims.idp).toBe('corp');
  });

  it('lists every settings problem at once', async () => {
    const res = await api.post('/providers', { alias: 'broken', kind: 'saml', display_name: 'Broken', settings: { metadata_url: 'ftp://x', sso_url: 'https://idp.example/sso', binding: 'soap' } });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['settings.binding', 'settings.metadata_url', 'settings.sso_url']);
  });

  it('keeps its SP certificate when replaced without it', async () => {
    const before = (await api.get('/providers/corp')).body;
    const replaced = await api.put('/providers/corp', { display_name: 'Corp SSO', domains: ['corp.example'], settings: { metadata_url: metadataUrl } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.settings.sp_certificate).toBe(before.settings.sp_certificate);
  });

  it('refreshes on demand: records certificates and outcome, bumps the version only when the metadata changed', async () => {
    const start = (await api.get('/providers/corp')).body.version;
    const first = await api.post('/providers/corp/refresh');
    expect(first.status).toBe(200);
    expect(first.body.status.refresh).toMatchObject({ ok: true, changed: true });
    expect(first.body.version).toBe(start + 1);
    expect(first.headers.get('etag')).toBe(`"${start + 1}"`);
    const certificates = first.body.status.certificates as { use: string; not_after: string }[];
    expect(certificates.map((c) => c.use)).toEqual(['idp-signing', 'sp']);
    expect(Date.parse(certificates[0]!.not_after)).toBeGreaterThan(Date.now());

    const same = await api.post('/providers/corp/refresh');
    expect(same.body.status.refresh).toMatchObject({ ok: true, changed: false });
    expect(same.body.version).toBe(start + 1);

    // Each refresh an administrator asked for is in the audit log, without secrets.
    const audit = await api.get('/audit?resource_type=provider&resource_id=corp');
    const refreshes = (audit.body.items as { action: string; after: Record<string, unknown> }[]).filter((e) => e.action === 'refresh');
    expect(refreshes).toHaveLength(2);
    expect(JSON.stringify(refreshes)).not.toContain('PRIVATE KEY');
  });

  it('moves to a rolled-over IdP certificate on every node after a refresh', async () => {
    idp.setMetadata(idp.metadataXml({ certificates: [oldKey.certificatePem, newKey.certificatePem] }));
    expect((await api.post('/providers/corp/refresh')).body.status.certificates).toHaveLength(3);
    await samlLogin(app, idp, server, 'corp', { params: { idp_hint: 'corp' }, response: { nameId: 'ann', signingKey: oldKey } });
    await samlLogin(app, idp, server, 'corp', { params: { idp_hint: 'corp' }, response: { nameId: 'ann', signingKey: newKey } });

    idp.setMetadata(idp.metadataXml({ certificates: [newKey.certificatePem] }));
    expect((await api.post('/providers/corp/refresh')).body.status.refresh.changed).toBe(true);
    await samlLogin(app, idp, server, 'corp', { params: { idp_hint: 'corp' }, response: { nameId: 'ann', signingKey: newKey } });

    const before = await loginFootprint(database.db);
    const browser = new HttpSession();
    const at = await goToSamlIdp(browser, (await app.authorizationUrl({ idp_hint: 'corp' })).url, idp, await spCertificateOf(server.node, 'corp'));
    const stale = await idp.response(answer(server.url, 'corp', at.request, { nameId: 'ann', signingKey: oldKey }));
    const page = await postToAcs(browser, server.url, 'corp', stale, at.request.relayState, app.redirectUri);
    expect(page.status).toBe(502);
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('records a failed refresh and changes nothing else', async () => {
    const before = (await api.get('/providers/corp')).body;
    idp.setMetadata('gone', 404);
    const failed = await api.post('/providers/corp/refresh');
    expect(failed.status).toBe(200);
    expect(failed.body.status.refresh).toMatchObject({ ok: false, changed: false, code: 'upstream_error' });
    expect(failed.body.status.refresh.error).toContain('404');
    expect(failed.body.version).toBe(before.version);
    expect(failed.body.status.certificates).toEqual(before.status.certificates);
    idp.setMetadata(idp.metadataXml({ certificates: [newKey.certificatePem] }));
  });

  it('refreshes on schedule only the providers that are due', async () => {
    const deps = { providers: server.node.services.providers, context: createOpenContext(server.config), logger: server.node.services.logger };
    const next = Date.parse((await api.get('/providers/corp')).body.status.refresh.next_at);
    expect(await refreshDueProviders(deps, new Date(next - 1000))).toBe(0);
    expect(await refreshDueProviders(deps, new Date(next + 1000))).toBe(1);
    expect(Date.parse((await api.get('/providers/corp')).body.status.refresh.next_at)).toBeGreaterThan(next);
  });

  it('answers 409 for a kind with nothing to refresh and 404 for an unknown provider', async () => {
    const upstream: UpstreamIdp = await startUpstreamIdp();
    try {
      await addOidcProvider(server.node, server.url, upstream, { alias: 'plain-oidc' });
      expect((await api.post('/providers/plain-oidc/refresh')).status).toBe(409);
    } finally {
      await upstream.close();
    }
    expect((await api.post('/providers/nobody/refresh')).status).toBe(404);
  });
});
