import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DOMParser } from '@xmldom/xmldom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samlProviderType } from '../../providers/saml.ts';
import { parseIdpMetadata } from '../../providers/saml/metadata.ts';
import { createUpstreamFetch } from '../../src/federation/upstream-fetch.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/server.ts';
import { TestSamlIdp, generateTestKey, type TestKey } from '../support/saml-idp.ts';
import { ACS_URL, ISSUER, SP_ENTITY_ID, acsInput, answering, beginLogin, openContext, openSaml, rejection, spCertificate, storedSaml } from './saml-harness.ts';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';

let database: TestDatabase;
let idp: TestSamlIdp;
let oldKey: TestKey;
let newKey: TestKey;

beforeAll(async () => {
  database = await createTestDatabase();
  idp = await TestSamlIdp.create('https://idp.acme.example/saml');
  oldKey = idp.key;
  newKey = await generateTestKey('IdP next key');
});

afterAll(async () => {
  await idp?.close();
  await database?.close();
});

describe('importing IdP metadata', () => {
  it('reads the entity ID, endpoints by binding and every signing certificate', () => {
    const descriptor = parseIdpMetadata(idp.metadataXml({ certificates: [oldKey.certificatePem, newKey.certificatePem] }));
    expect(descriptor.entityId).toBe(idp.entityId);
    expect(descriptor.sso).toEqual({ redirect: idp.ssoUrl, post: idp.ssoUrl });
    expect(descriptor.slo).toEqual({ redirect: idp.sloUrl, post: idp.sloUrl });
    expect(descriptor.signingCertificates).toHaveLength(2);
  });

  it('picks one IdP out of an aggregate by entity ID, and asks for one when there are several', async () => {
    const other = await TestSamlIdp.create('https://idp.other.example/saml');
    const strip = (xml: string) => xml.replace(/<\?xml[^>]*>/, '');
    const aggregate = `<md:EntitiesDescriptor xmlns:md="${MD}">${strip(idp.metadataXml())}${strip(other.metadataXml())}</md:EntitiesDescriptor>`;
    expect(parseIdpMetadata(aggregate, other.entityId).entityId).toBe(other.entityId);
    expect(() => parseIdpMetadata(aggregate)).toThrow(/idp_entity_id/);
    expect(() => parseIdpMetadata(aggregate, 'https://nobody.example')).toThrow(/no SAML 2.0 IdP with entity ID/);
  });

  it('refuses documents that are not IdP metadata, and any DOCTYPE', () => {
    expect(() => parseIdpMetadata('<html><body>Sign in</body></html>')).toThrow(/EntityDescriptor/);
    expect(() => parseIdpMetadata('<md:EntityDescriptor xmlns:md="' + MD + '" entityID="x"/>')).toThrow(/no SAML 2.0 IdP/);
    expect(() => parseIdpMetadata('<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>')).toThrow(/DOCTYPE/);
    expect(() => parseIdpMetadata('<md:EntityDescriptor')).toThrow(/well-formed/);
  });

  it('falls back to the HTTP-POST binding when the IdP offers no HTTP-Redirect endpoint', async () => {
    const opened = await openSaml(database.db, idp, { metadata_xml: idp.metadataXml({ bindings: ['post'] }) });
    expect((await opened.startLogin({ transactionId: 'tx-fallback' })).type).toBe('post-form');
  });
});

describe('a metadata URL', () => {
  it('is fetched once when the provider is opened, never per login', async () => {
    const url = await idp.serveMetadata();
    const before = idp.metadataRequests;
    const opened = await samlProviderType.open(await storedSaml({ metadata_url: url }), openContext(database.db));
    for (let i = 0; i < 2; i++) {
      const login = await beginLogin(opened);
      await opened.finishLogin(acsInput(await idp.response(answering(login))), login.transaction);
    }
    expect(idp.metadataRequests - before).toBe(1);
  });

  it('follows redirects of a metadata URL, each hop through the guarded fetch', async () => {
    const target = await idp.serveMetadata();
    const redirector = http.createServer((_req, res) => {
      res.writeHead(302, { location: target });
      res.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/federationmetadata.xml`;
      const refresh = await samlProviderType.refresh!(await storedSaml({ metadata_url: url }), openContext(database.db));
      expect(refresh.certificates.map((c) => c.use)).toEqual(['idp-signing', 'sp']);
      const blocked = await rejection(samlProviderType.open(await storedSaml({ metadata_url: url }), { ...openContext(database.db), fetch: createUpstreamFetch({ allowPrivateNetwork: false, timeoutMs: 5000 }) }));
      expect(blocked.code).toBe('unavailable');
      expect(blocked.message).toMatch(/REALMGATE_ALLOW_PRIVATE_NETWORK/);
    } finally {
      await new Promise<void>((resolve) => redirector.close(() => resolve()));
    }
  });

  it('makes the provider unavailable with the reason when it fails, without touching other providers', async () => {
    const url = await idp.serveMetadata();
    idp.setMetadata('oops', 500);
    expect((await rejection(samlProviderType.open(await storedSaml({ metadata_url: url }), openContext(database.db)))).code).toBe('upstream_error');
    idp.setMetadata('<html>not metadata</html>');
    const error = await rejection(samlProviderType.open(await storedSaml({ metadata_url: url }), openContext(database.db)));
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain(url);
    const closed = `http://127.0.0.1:${await freePort()}/metadata`;
    expect((await rejection(samlProviderType.open(await storedSaml({ metadata_url: closed }), openContext(database.db)))).code).toBe('upstream_unreachable');
    idp.setMetadata(idp.metadataXml());
    expect(await openSaml(database.db, idp)).toBeDefined();
  });
});

describe('certificate rollover', () => {
  async function signedWith(opened: Awaited<ReturnType<typeof openSaml>>, key: TestKey) {
    const login = await beginLogin(opened);
    return opened.finishLogin(acsInput(await idp.response(answering(login, { signingKey: key }))), login.transaction);
  }

  it('accepts the old and the new certificate while metadata lists both, then only the new one', async () => {
    const url = await idp.serveMetadata(idp.metadataXml({ certificates: [oldKey.certificatePem, newKey.certificatePem] }));
    const v1 = await storedSaml({ metadata_url: url });
    const during = await samlProviderType.open(v1, openContext(database.db));
    expect((await signedWith(during, oldKey)).subject).toBe('u-1001');
    expect((await signedWith(during, newKey)).subject).toBe('u-1001');
    const overlapDigest = (await samlProviderType.refresh!(v1, openContext(database.db))).digest;

    idp.setMetadata(idp.metadataXml({ certificates: [newKey.certificatePem] }));
    const refreshed = await samlProviderType.refresh!(v1, openContext(database.db));
    expect(refreshed.digest).toBeDefined();
    expect(refreshed.digest).not.toBe(overlapDigest);
    const after = await samlProviderType.open({ ...v1, version: 2 }, openContext(database.db));
    expect((await signedWith(after, newKey)).subject).toBe('u-1001');
    expect((await rejection(signedWith(after, oldKey))).message).toMatch(/signature/i);
  });

  it('accepts every entered idp_certificates entry', async () => {
    const opened = await samlProviderType.open(
      await storedSaml({ idp_entity_id: idp.entityId, sso_url: idp.ssoUrl, idp_certificates: [oldKey.certificatePem, newKey.certificatePem] }),
      openContext(database.db),
    );
    expect((await signedWith(opened, oldKey)).subject).toBe('u-1001');
    expect((await signedWith(opened, newKey)).subject).toBe('u-1001');
  });

  it('reports every certificate with its expiry, and no digest when nothing comes from the network', async () => {
    const expiring = await generateTestKey('IdP expiring', { notBefore: new Date('2026-01-01T00:00:00Z'), days: 30 });
    const refresh = await samlProviderType.refresh!(
      await storedSaml({ metadata_xml: idp.metadataXml({ certificates: [expiring.certificatePem, newKey.certificatePem] }) }),
      openContext(database.db),
    );
    expect(refresh.digest).toBeUndefined();
    expect(refresh.refreshAfterSeconds).toBe(86_400);
    expect(refresh.certificates.map((c) => c.use)).toEqual(['idp-signing', 'idp-signing', 'sp']);
    expect(refresh.certificates[0]).toMatchObject({ notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-31T00:00:00.000Z', subject: 'CN=IdP expiring' });
    expect(refresh.certificates[0]!.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });
});

describe('SP metadata', () => {
  function read(xml: string) {
    const root = new DOMParser().parseFromString(xml, 'application/xml').documentElement!;
    const sp = root.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
    const all = (name: string) => Array.from(sp.getElementsByTagNameNS(MD, name));
    return { root, sp, all };
  }

  it('describes our entity ID, ACS, SLO, signing and encryption certificate and NameID formats, without the network', async () => {
    const { root, sp, all } = read(samlProviderType.serviceProviderMetadata!(await storedSaml({ metadata_xml: idp.metadataXml() }), openContext(database.db)));
    expect(root.getAttribute('entityID')).toBe(SP_ENTITY_ID);
    expect(sp.getAttribute('AuthnRequestsSigned')).toBe('true');
    expect(sp.getAttribute('WantAssertionsSigned')).toBe('true');
    const acs = all('AssertionConsumerService');
    expect(acs.map((e) => [e.getAttribute('Binding'), e.getAttribute('Location')])).toEqual([['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', ACS_URL]]);
    expect(all('SingleLogoutService').map((e) => e.getAttribute('Location'))).toEqual([`${ISSUER}/federation/acme/saml/slo`, `${ISSUER}/federation/acme/saml/slo`]);
    const keys = all('KeyDescriptor');
    expect(keys.map((k) => k.getAttribute('use'))).toEqual(['signing', 'encryption']);
    const ours = (await spCertificate()).replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    for (const key of keys) expect(key.getElementsByTagNameNS(DS, 'X509Certificate')[0]!.textContent).toBe(ours);
    expect(all('NameIDFormat').map((e) => e.textContent)).toEqual([
      'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    ]);
  });

  it('uses a configured SP entity ID as issuer and audience', async () => {
    const stored = await storedSaml({ metadata_xml: idp.metadataXml(), sp_entity_id: 'urn:realmgate:acme', name_id_format: 'emailAddress' });
    const { root, all } = read(samlProviderType.serviceProviderMetadata!(stored, openContext(database.db)));
    const opened = await samlProviderType.open(stored, openContext(database.db));
    expect(root.getAttribute('entityID')).toBe('urn:realmgate:acme');
    expect(all('NameIDFormat').map((e) => e.textContent)).toEqual(['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress']);
    const login = await beginLogin(opened);
    expect(login.request.issuer).toBe('urn:realmgate:acme');
    const identity = await opened.finishLogin(acsInput(await idp.response(answering(login, { audience: 'urn:realmgate:acme' }))), login.transaction);
    expect(identity.subject).toBe('u-1001');
  });
});
