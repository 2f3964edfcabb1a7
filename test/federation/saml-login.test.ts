import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { addSamlProvider, answer, goToSamlIdp, postToAcs, samlLogin, spCertificateOf } from '../support/saml-federation.ts';
import { FORMATS, TestSamlIdp, encodeResponse, signRoot, type ResponseOptions } from '../support/saml-idp.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let idp: TestSamlIdp;
let app: TestApp;

const ATTRIBUTES = [
  { name: 'urn:oid:0.9.2342.19200300.100.1.3', friendlyName: 'mail', values: ['grace@acme.example'] },
  { name: 'urn:oid:2.5.4.42', friendlyName: 'givenName', values: ['Grace'] },
  { name: 'urn:oid:2.5.4.4', friendlyName: 'sn', values: ['Hopper'] },
  { name: 'urn:oid:2.16.840.1.113730.3.1.241', friendlyName: 'displayName', values: ['Grace Hopper'] },
  { name: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', values: ['navy', 'cobol'] },
];

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  idp = await TestSamlIdp.create('https://idp.acme.example/saml');
  await addSamlProvider(server.node, idp, { alias: 'acme', displayName: 'Acme SAML', domains: ['acme.example'] });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

/** The safe error page: a sentence and a reference, never the reason. */
function expectSafeErrorPage(page: PageResponse, leak?: RegExp): void {
  expect(page.status).toBeGreaterThanOrEqual(400);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(page.body).toContain("<h1>We couldn't complete that</h1>");
  expect(page.body).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
  if (leak) expect(page.body).not.toMatch(leak);
}

describe('a federated login through a SAML IdP', () => {
  it('signs the user in end to end with idp and amr claims, links the NameID and stores the upstream session', async () => {
    const { tokens, claims, request, binding } = await samlLogin(app, idp, server, 'acme', {
      params: { idp_hint: 'acme' },
      response: { nameId: 'grace-7', sessionIndex: '_idp-session-7', attributes: ATTRIBUTES },
    });
    expect(binding).toBe('redirect');
    expect(request.signatureValid).toBe(true);
    expect(request.acsUrl).toBe(`${server.url}/federation/acme/saml/acs`);

    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload } = await jose.jwtVerify(tokens.id_token!, jwks, { issuer: server.url, audience: 'web' });
    expect(payload.idp).toBe('acme');
    expect(payload.amr).toEqual(['fed', 'pwd']);

    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    // The address is in the provider's own domains (email_trust "domains"), so it is released as verified.
    expect(userinfo).toMatchObject({ sub: claims.sub, idp: 'acme', email: 'grace@acme.example', email_verified: true, name: 'Grace Hopper', given_name: 'Grace', family_name: 'Hopper' });

    const link = await database.db('external_identities').where({ provider_alias: 'acme', subject: 'grace-7' }).first();
    expect(link.account_id).toBe(claims.sub);
    const account = await server.node.services.accounts.get(String(claims.sub));
    expect(account!.claims.groups).toEqual(['navy', 'cobol']);

    const session = await database.db('login_sessions').where({ account_id: claims.sub }).first();
    expect(session).toMatchObject({ idp: 'acme', upstream_issuer: idp.entityId, upstream_subject: 'grace-7', name_id: 'grace-7', session_index: '_idp-session-7' });
  });

  it('signs the same NameID into the same account, and another NameID into another', async () => {
    const first = await samlLogin(app, idp, server, 'acme', { params: { idp_hint: 'acme' }, response: { nameId: 'ada-1' } });
    const again = await samlLogin(app, idp, server, 'acme', { params: { idp_hint: 'acme' }, response: { nameId: 'ada-1' } });
    const other = await samlLogin(app, idp, server, 'acme', { params: { idp_hint: 'acme' }, response: { nameId: 'bob-2' } });
    expect(again.claims.sub).toBe(first.claims.sub);
    expect(other.claims.sub).not.toBe(first.claims.sub);
    expect(await database.db('external_identities').where({ provider_alias: 'acme', subject: 'ada-1' })).toHaveLength(1);
  });

  it('accepts an assertion encrypted to the provider SP certificate', async () => {
    const encryptTo = await spCertificateOf(server.node, 'acme');
    const { claims } = await samlLogin(app, idp, server, 'acme', { params: { idp_hint: 'acme' }, response: { nameId: 'enc-3', encryptTo, signResponse: true } });
    const link = await database.db('external_identities').where({ provider_alias: 'acme', subject: 'enc-3' }).first();
    expect(link.account_id).toBe(claims.sub);
  });

  it('sends the AuthnRequest with the HTTP-POST binding through an auto-posting page', async () => {
    const post = await TestSamlIdp.create('https://idp.post.example/saml');
    await addSamlProvider(server.node, post, { alias: 'posty', displayName: 'Posty', settings: { binding: 'post' } });
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl({ idp_hint: 'posty' });
    let page = await browser.request(url);
    while (page.headers.get('location')) page = await browser.request(new URL(page.headers.get('location')!, page.url));
    expect(page.status).toBe(200);
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.headers.get('content-security-policy') ?? '')?.[1];
    expect(nonce).toBeTruthy();
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    const form = readForm(page, /idp\.post\.example/);
    expect(form.action.toString()).toBe(post.ssoUrl);
    expect(TestSamlIdp.readAuthnRequest(form.fields, await spCertificateOf(server.node, 'posty')).signatureValid).toBe(true);

    const { claims, binding } = await samlLogin(app, post, server, 'posty', { params: { idp_hint: 'posty' }, response: { nameId: 'poster-1' } });
    expect(binding).toBe('post');
    expect(claims.idp).toBe('posty');
  });

  it('is found by home-realm discovery like any provider: login_hint domain, typed email, picker', async () => {
    const byHint = await goToSamlIdp(new HttpSession(), (await app.authorizationUrl({ login_hint: 'someone@acme.example' })).url, idp, await spCertificateOf(server.node, 'acme'));
    expect(byHint.request.issuer).toBe(`${server.url}/federation/acme/saml/metadata`);

    const picker = await registerApp(server.node, server.url, 'picker-app');
    const browser = new HttpSession();
    const page = await browser.follow((await picker.authorizationUrl()).url);
    expect(page.body).toContain('data-provider="acme"');
    const discover = readForm(page, /\/discover$/);
    const typed = await browser.request(discover.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...discover.fields, email: 'someone@acme.example' }).toString(),
    });
    expect(new URL(typed.headers.get('location')!).toString()).toMatch(/^https:\/\/idp\.acme\.example\/saml\/sso\?SAMLRequest=/);
  });

  it('lets another node finish a login one node started', async () => {
    const other = await startTestServer(database.db, { ISSUER: server.url });
    try {
      const browser = new HttpSession();
      const { url, codeVerifier, state, nonce } = await app.authorizationUrl({ idp_hint: 'acme' });
      const at = await goToSamlIdp(browser, url, idp, await spCertificateOf(server.node, 'acme'));
      const response = await idp.response(answer(server.url, 'acme', at.request, { nameId: 'roaming-1' }));
      // The IdP posts to the ACS of the second node; the browser finishes there.
      const acs = await browser.request(`http://127.0.0.1:${new URL(other.url).port}/federation/acme/saml/acs`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ SAMLResponse: response, RelayState: at.request.relayState! }).toString(),
      });
      expect(acs.status).toBe(303);
      const back = await browser.follow(new URL(acs.headers.get('location')!, `http://127.0.0.1:${new URL(other.url).port}`), {}, app.redirectUri);
      expect(back.status).toBe(0);
      const tokens = await oidc.authorizationCodeGrant(app.config, back.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
      expect(tokens.claims()!.idp).toBe('acme');
    } finally {
      await other.close();
    }
  });
});

describe('rejected SAML answers', () => {
  /** Starts a login and posts the response `shape` builds for its AuthnRequest; returns the page and the footprint delta. */
  async function attempt(shape: (request: Awaited<ReturnType<typeof goToSamlIdp>>['request']) => Promise<string>, relayState?: (r: string) => string | undefined) {
    const before = await loginFootprint(database.db);
    const browser = new HttpSession();
    const at = await goToSamlIdp(browser, (await app.authorizationUrl({ idp_hint: 'acme' })).url, idp, await spCertificateOf(server.node, 'acme'));
    const relay = relayState ? relayState(at.request.relayState!) : at.request.relayState;
    const page = await postToAcs(browser, server.url, 'acme', await shape(at.request), relay, app.redirectUri);
    expect(await loginFootprint(database.db)).toEqual(before);
    return page;
  }
  const respond = (overrides: Partial<ResponseOptions>) => (request: Parameters<Parameters<typeof attempt>[0]>[0]) => idp.response(answer(server.url, 'acme', request, overrides));

  it('shows a safe page naming the provider for an unsigned assertion', async () => {
    const page = await attempt(respond({ signAssertion: false }));
    expectSafeErrorPage(page, /signature/i);
    expect(page.body).toContain('We could not verify the answer from Acme SAML');
  });

  it('shows a safe page for a tampered assertion', async () => {
    const page = await attempt(async (request) => {
      const xml = await idp.responseXml(answer(server.url, 'acme', request, { nameId: 'victim' }));
      return encodeResponse(xml.replace('>victim<', '>attacker<'));
    });
    expectSafeErrorPage(page, /signature/i);
  });

  it('shows a safe page for signature-wrapping (XSW) variants and signs nobody in', async () => {
    const variants: ((o: ResponseOptions, signed: string, evil: string) => string)[] = [
      // An unsigned forged assertion beside the signed one.
      (o, signed, evil) => idp.envelope(o, evil + signed),
      // The signed assertion hidden inside a forged one.
      (o, signed, evil) => idp.envelope(o, evil.replace('</saml:Assertion>', `${signed}</saml:Assertion>`)),
      // The signed assertion's signature moved onto the forged one.
      (o, signed, evil) => idp.envelope(o, evil.replace('</saml:Issuer>', `</saml:Issuer>${/<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0]}`)),
    ];
    for (const variant of variants) {
      const page = await attempt(async (request) => {
        const o = answer(server.url, 'acme', request, { nameId: 'victim' });
        const signed = signRoot(idp.assertionXml(o), 'Assertion', idp.key);
        const evil = idp.assertionXml({ ...o, nameId: 'attacker', assertionId: '_evil' });
        return encodeResponse(variant(o, signed, evil));
      });
      expectSafeErrorPage(page, /signature|assertion/i);
    }
    expect(await database.db('external_identities').whereIn('subject', ['attacker', 'victim']).first()).toBeUndefined();
  });

  it('shows a safe page for an expired assertion', async () => {
    const past = { notBefore: new Date(Date.now() - 7200_000), notOnOrAfter: new Date(Date.now() - 3600_000) };
    expectSafeErrorPage(await attempt(respond(past)), /expired/i);
  });

  it('shows a safe page for an assertion meant for another SP', async () => {
    expectSafeErrorPage(await attempt(respond({ audience: 'https://other-sp.example' })), /audience/i);
  });

  it('shows a safe page for a response sent to another destination', async () => {
    expectSafeErrorPage(await attempt(respond({ destination: 'https://other-sp.example/acs' })), /destination/i);
  });

  it('shows a safe page for a response to another AuthnRequest', async () => {
    expectSafeErrorPage(await attempt(respond({ inResponseTo: '_not-our-request', subjectInResponseTo: '_not-our-request' })), /InResponseTo/);
  });

  it('shows a safe page when a used response is posted again', async () => {
    const browser = new HttpSession();
    const at = await goToSamlIdp(browser, (await app.authorizationUrl({ idp_hint: 'acme' })).url, idp, await spCertificateOf(server.node, 'acme'));
    const response = await idp.response(answer(server.url, 'acme', at.request, { nameId: 'once-only' }));
    expect((await postToAcs(browser, server.url, 'acme', response, at.request.relayState, app.redirectUri)).status).toBe(0);
    const before = await loginFootprint(database.db);
    // The same response again, with its (used) transaction, and as if unsolicited.
    expectSafeErrorPage(await postToAcs(new HttpSession(), server.url, 'acme', response, at.request.relayState, app.redirectUri));
    expectSafeErrorPage(await postToAcs(new HttpSession(), server.url, 'acme', response, undefined, app.redirectUri));
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('shows a safe page for an IdP-initiated response when the provider does not allow it', async () => {
    const before = await loginFootprint(database.db);
    const response = await idp.response({ acsUrl: `${server.url}/federation/acme/saml/acs`, audience: `${server.url}/federation/acme/saml/metadata` });
    expectSafeErrorPage(await postToAcs(new HttpSession(), server.url, 'acme', response, undefined, app.redirectUri), /IdP-initiated/);
    expect(await loginFootprint(database.db)).toEqual(before);
  });

  it('returns access_denied to the application when the IdP refused the user', async () => {
    const page = await attempt(respond({ status: 'urn:oasis:names:tc:SAML:2.0:status:Responder', subStatus: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed' }));
    expect(page.status).toBe(0);
    expect(page.url.searchParams.get('error')).toBe('access_denied');
  });

  it('shows a safe page for a transient NameID it cannot link', async () => {
    expectSafeErrorPage(await attempt(respond({ nameId: '_transient-1', nameIdFormat: FORMATS.transient })), /transient/i);
  });

  it('answers 404 for the endpoints of an unknown provider', async () => {
    expect((await new HttpSession().request(`${server.url}/federation/nobody/saml/metadata`)).status).toBe(404);
    const acs = await postToAcs(new HttpSession(), server.url, 'nobody', encodeResponse('<x/>'), undefined);
    expect(acs.status).toBe(404);
    expect(acs.body).toMatch(/<code class="ref">/);
  });
});

describe('IdP-initiated login when enabled', () => {
  it('validates the response, hands the browser to the application, and signs in through the IdP session', async () => {
    const portal = await registerApp(server.node, server.url, 'portal', { local_login: true, initiate_login_uri: 'https://portal.example.test/login' });
    const unsolicited = await TestSamlIdp.create('https://idp.unsolicited.example/saml');
    await addSamlProvider(server.node, unsolicited, { alias: 'push', displayName: 'Push IdP', settings: { allow_idp_initiated: true, idp_initiated_client_id: 'portal' } });
    const acsUrl = `${server.url}/federation/push/saml/acs`;
    const audience = `${server.url}/federation/push/saml/metadata`;
    const browser = new HttpSession();

    const before = await loginFootprint(database.db);
    const response = await unsolicited.response({ acsUrl, audience, nameId: 'pusher-1' });
    const handed = await browser.request(acsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: response, RelayState: 'https://portal.example.test/reports/42' }).toString(),
    });
    expect(handed.status).toBe(303);
    const target = new URL(handed.headers.get('location')!);
    expect(target.origin + target.pathname).toBe('https://portal.example.test/login');
    expect(Object.fromEntries(target.searchParams)).toEqual({ iss: server.url, target_link_uri: 'https://portal.example.test/reports/42' });
    expect(await loginFootprint(database.db)).toEqual(before);

    // The application starts its login; discovery sends the browser back to the same IdP.
    const { url, codeVerifier, state, nonce } = await portal.authorizationUrl();
    const at = await goToSamlIdp(browser, url, unsolicited, await spCertificateOf(server.node, 'push'));
    const answered = await unsolicited.response(answer(server.url, 'push', at.request, { nameId: 'pusher-1' }));
    const back = await postToAcs(browser, server.url, 'push', answered, at.request.relayState, portal.redirectUri);
    expect(back.status).toBe(0);
    const tokens = await oidc.authorizationCodeGrant(portal.config, back.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()).toMatchObject({ idp: 'push' });
    expect(await database.db('external_identities').where({ provider_alias: 'push', subject: 'pusher-1' })).toHaveLength(1);
  });
});

describe('SP metadata endpoint', () => {
  it('serves the provider SP metadata', async () => {
    const res = await new HttpSession().request(`${server.url}/federation/acme/saml/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/samlmetadata\+xml/);
    expect(res.body).toContain(`entityID="${server.url}/federation/acme/saml/metadata"`);
    expect(res.body).toContain(`Location="${server.url}/federation/acme/saml/acs"`);
  });
});
