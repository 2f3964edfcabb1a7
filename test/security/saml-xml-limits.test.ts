import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SAML_MESSAGE_LIMITS, SAML_METADATA_LIMITS, XmlLimitError, assertXmlWithinLimits } from '../../providers/saml/xml.ts';
import { parseIdpMetadata } from '../../providers/saml/metadata.ts';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { addSamlProvider, answer, goToSamlIdp, postToAcs, spCertificateOf } from '../support/saml-federation.ts';
import { TestSamlIdp, encodeResponse, encryptAssertion } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';

/**
 * Every DOM parser that could see a SAML message or metadata: ours (@xmldom/xmldom 0.9) and the
 * copies node-saml and xml-crypto load (0.8). Spying on their prototypes counts every parse.
 */
function xmlParsers(): { DOMParser: { prototype: { parseFromString: (...args: unknown[]) => unknown } } }[] {
  const here = createRequire(import.meta.url);
  const copies = [here('@xmldom/xmldom'), createRequire(here.resolve('@node-saml/node-saml'))('@xmldom/xmldom'), createRequire(here.resolve('xml-crypto'))('@xmldom/xmldom')];
  return [...new Set(copies)];
}

function countParses(parsers = xmlParsers()): { count: () => number } {
  const spies = parsers.map((m) => vi.spyOn(m.DOMParser.prototype, 'parseFromString'));
  return { count: () => spies.reduce((n, s) => n + s.mock.calls.length, 0) };
}

/** `depth` nested elements holding nothing, as the attack sent them inside Extensions. */
const nested = (depth: number) => `<samlp:Extensions>${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}</samlp:Extensions>`;

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
  await addSamlProvider(server.node, idp, { alias: 'acme', displayName: 'Acme SAML' });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

/** A browser at the IdP with Realmgate's AuthnRequest, ready to post an answer to the ACS. */
async function atIdp() {
  const browser = new HttpSession();
  const { url } = await app.authorizationUrl({ idp_hint: 'acme' });
  const at = await goToSamlIdp(browser, url, idp, await spCertificateOf(server.node, 'acme'));
  return { browser, request: at.request, options: answer(server.url, 'acme', at.request) };
}

describe('a SAMLResponse beyond the XML limits at the ACS', () => {
  it('is refused without any XML parser running when it is a ~750 KB deeply nested document, and /healthz answers meanwhile', async () => {
    const { browser, request, options } = await atIdp();
    const xml = idp.envelope(options, nested(104_000));
    expect(xml.length).toBeGreaterThan(720_000);
    const encoded = encodeResponse(xml);
    // Under the ACS form's body limit: this is the XML check, not the body parser.
    expect(new URLSearchParams({ SAMLResponse: encoded, RelayState: request.relayState! }).toString().length).toBeLessThan(1024 * 1024);

    const before = await loginFootprint(database.db);
    const parses = countParses();
    const attacks = Array.from({ length: 3 }, () => postToAcs(new HttpSession(), server.url, 'acme', encoded, 'not-a-transaction'));
    const [health, ...answers] = await Promise.all([fetch(`${server.url}/healthz`), postToAcs(browser, server.url, 'acme', encoded, request.relayState), ...attacks]);
    expect(health.status).toBe(200);
    for (const page of answers) {
      expect(page.status).toBe(502);
      expect(page.body).toMatch(/We could not verify the answer from Acme SAML/);
    }
    expect(parses.count()).toBe(0);
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('is refused without any XML parser running when it is small but nests deeper than the limit', async () => {
    const { browser, request, options } = await atIdp();
    const xml = idp.envelope(options, nested(SAML_MESSAGE_LIMITS.maxDepth));
    expect(xml.length).toBeLessThan(SAML_MESSAGE_LIMITS.maxBytes);
    const parses = countParses();
    const page = await postToAcs(browser, server.url, 'acme', encodeResponse(xml), request.relayState);
    expect(page.status).toBe(502);
    expect(parses.count()).toBe(0);
  });

  it('is refused without any XML parser running when it holds more elements than the limit', async () => {
    const { browser, request, options } = await atIdp();
    const xml = idp.envelope(options, `<samlp:Extensions>${'<x/>'.repeat(SAML_MESSAGE_LIMITS.maxElements)}</samlp:Extensions>`);
    expect(xml.length).toBeLessThan(SAML_MESSAGE_LIMITS.maxBytes);
    const parses = countParses();
    const page = await postToAcs(browser, server.url, 'acme', encodeResponse(xml), request.relayState);
    expect(page.status).toBe(502);
    expect(parses.count()).toBe(0);
  });

  it('is refused before node-saml decrypts it when an encrypted assertion holds a deeply nested document', async () => {
    // Anyone can encrypt to the SP certificate (it is in the SP metadata), so the plaintext is untrusted too.
    const { browser, request, options } = await atIdp();
    const deep = idp.assertionXml(options).replace('</saml:Assertion>', `${'<x>'.repeat(50_000)}${'</x>'.repeat(50_000)}</saml:Assertion>`);
    const xml = idp.envelope(options, await encryptAssertion(deep, await spCertificateOf(server.node, 'acme')));
    expect(xml.length).toBeLessThan(SAML_MESSAGE_LIMITS.maxBytes);
    const here = createRequire(import.meta.url);
    const nodeSaml = countParses([createRequire(here.resolve('@node-saml/node-saml'))('@xmldom/xmldom')]);
    const page = await postToAcs(browser, server.url, 'acme', encodeResponse(xml), request.relayState);
    expect(page.status).toBe(502);
    expect(nodeSaml.count()).toBe(0);
  });

  it('still reaches the parsers for a response within the limits (the counter counts)', async () => {
    const { browser, request, options } = await atIdp();
    const parses = countParses();
    const page = await postToAcs(browser, server.url, 'acme', await idp.response(options), request.relayState, app.redirectUri);
    expect(page.status).toBe(0);
    expect(parses.count()).toBeGreaterThan(0);
  });
});

describe('SAML metadata beyond the XML limits', () => {
  it('is refused as metadata_xml by the admin API, naming the field, without any XML parser running', async () => {
    const metadata = idp.metadataXml().replace('</md:EntityDescriptor>', `<md:Extensions>${'<x>'.repeat(5000)}${'</x>'.repeat(5000)}</md:Extensions></md:EntityDescriptor>`);
    expect(metadata).toContain('<x><x>');
    const parses = countParses();
    const res = await api.post('/providers', { alias: 'deep', kind: 'saml', display_name: 'Deep', settings: { metadata_xml: metadata } });
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['settings.metadata_xml']);
    expect(res.body.errors[0].message).toMatch(/nests elements deeper than 32/);
    expect(parses.count()).toBe(0);
  });

  it('is refused from a metadata_url that streams more than the size limit without a Content-Length', async () => {
    const url = await idp.serveMetadata();
    const huge = idp.metadataXml().replace('</md:EntityDescriptor>', `<!--${'x'.repeat(SAML_METADATA_LIMITS.maxBytes)}--></md:EntityDescriptor>`);
    idp.setMetadata(huge);
    await api.post('/providers', { alias: 'huge', kind: 'saml', display_name: 'Huge', settings: { metadata_url: url } });
    const parses = countParses();
    const res = await api.post('/providers/huge/test');
    expect(res.body.ok).toBe(false);
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'open', ok: false, detail: expect.stringMatching(/larger than 5242880 bytes/) });
    expect(parses.count()).toBe(0);
  });
});

describe('assertXmlWithinLimits', () => {
  const limits = { maxBytes: 1000, maxDepth: 3, maxElements: 5 };
  const breach = (xml: string) => {
    try {
      assertXmlWithinLimits(xml, limits);
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(XmlLimitError);
      return (error as XmlLimitError).breach;
    }
  };

  it('accepts a document at every limit, counting self-closing elements but not their depth', () => {
    expect(breach('<?xml version="1.0"?><a><b><c/><c x="1>2"/></b><!-- <d><d><d><d> --><![CDATA[<e><e><e><e>]]></a>')).toBeUndefined();
  });

  it('names the bound a document breaks', () => {
    expect(breach('<a><b><c><d/></c></b></a>')).toBeUndefined();
    expect(breach('<a><b><c><d></d></c></b></a>')).toBe('depth');
    expect(breach('<a><b/><b/><b/><b/><b/></a>')).toBe('elements');
    expect(breach(`<a>${'é'.repeat(600)}</a>`)).toBe('bytes');
    expect(breach('<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')).toBe('declaration');
  });

  it('reads an SP-sized IdP metadata document as before', () => {
    expect(parseIdpMetadata(idp.metadataXml()).entityId).toBe('https://idp.acme.example/saml');
  });
});
