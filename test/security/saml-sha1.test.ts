import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { addSamlProvider, answer, goToSamlIdp, postToAcs, spCertificateOf } from '../support/saml-federation.ts';
import { TestSamlIdp, type ResponseOptions, type SignatureAlgorithms } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';

const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1 = 'http://www.w3.org/2000/09/xmldsig#sha1';

let database: TestDatabase;
let server: TestServer;
let idp: TestSamlIdp;
let app: TestApp;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  idp = await TestSamlIdp.create('https://idp.acme.example/saml');
  await addSamlProvider(server.node, idp, { alias: 'modern', displayName: 'Modern SAML' });
  await addSamlProvider(server.node, idp, { alias: 'whole', displayName: 'Whole SAML', settings: { want_assertions_signed: false, want_response_signed: true } });
  await addSamlProvider(server.node, idp, { alias: 'legacy', displayName: 'Legacy SAML', settings: { allow_sha1: true } });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

/** Logs in at `alias` with a response signed with `algorithms`; returns Realmgate's answer at the ACS. */
async function answerSignedWith(alias: string, algorithms: SignatureAlgorithms, extra: Partial<ResponseOptions> = {}) {
  const browser = new HttpSession();
  const { url } = await app.authorizationUrl({ idp_hint: alias });
  const at = await goToSamlIdp(browser, url, idp, await spCertificateOf(server.node, alias));
  const response = await idp.response(answer(server.url, alias, at.request, { algorithms, ...extra }));
  return postToAcs(browser, server.url, alias, response, at.request.relayState, app.redirectUri);
}

describe('SHA-1 in SAML signatures', () => {
  it.each([
    ['an RSA-SHA1 signature', 'modern', { signatureAlgorithm: RSA_SHA1 }, {}],
    ['SHA-1 digests', 'modern', { digestAlgorithm: SHA1 }, {}],
    ['an RSA-SHA1 signature on the whole response', 'whole', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 }, { signAssertion: false, signResponse: true }],
  ] as const)('refuses %s by default, creating nothing', async (_name, alias, algorithms, extra) => {
    const before = await loginFootprint(database.db);
    const page = await answerSignedWith(alias, algorithms, extra);
    expect(page.status).toBe(502);
    expect(page.body).toMatch(/We could not verify the answer from (Modern|Whole) SAML/);
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('refuses an RSA-SHA1 signature inside an encrypted assertion', async () => {
    const page = await answerSignedWith('modern', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 }, { encryptTo: await spCertificateOf(server.node, 'modern') });
    expect(page.status).toBe(502);
  });

  it('accepts SHA-1 from a provider with allow_sha1 set, for a legacy IdP', async () => {
    const page = await answerSignedWith('legacy', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 });
    expect(page.status).toBe(0);
    expect(page.url.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('accepts RSA-SHA256 with SHA-256 digests by default, on the assertion or the whole response', async () => {
    expect((await answerSignedWith('modern', {})).status).toBe(0);
    expect((await answerSignedWith('whole', {}, { signAssertion: false, signResponse: true })).status).toBe(0);
  });

  it('validates allow_sha1 in the admin API and documents it in the OpenAPI document', async () => {
    const res = await api.post('/providers', { alias: 'bad', kind: 'saml', display_name: 'Bad', settings: { metadata_xml: idp.metadataXml(), allow_sha1: 'yes' } });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['settings.allow_sha1']);
    const doc = (await api.get('/openapi.json')).body;
    expect(doc.components.schemas.SamlSettings.properties.allow_sha1).toMatchObject({ type: 'boolean', default: false });
  });
});
