import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm } from '../support/http-session.ts';
import { addSamlProvider, samlLogin, spCertificateOf } from '../support/saml-federation.ts';
import {
  FORMATS,
  TestSamlIdp,
  encodeResponse,
  generateTestKey,
  logoutRequestXml,
  logoutResponseXml,
  readLogoutMessage,
  readPostedLogoutMessage,
  redirectBindingUrl,
  signRoot,
  type LogoutRequestOptions,
  type TestKey,
} from '../support/saml-idp.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let idpHost: http.Server;
let idp: TestSamlIdp;
let receiver: BackchannelReceiver;
let app: TestApp;
let spCert: string;
let sloUrl: string;
let foreignKey: TestKey;
/** An IdP whose metadata lists its HTTP-POST single logout service first, with a ResponseLocation of its own. */
let postIdp: TestSamlIdp;
let postSpCert: string;
let postSloUrl: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1' });
  // The IdP's endpoints are on a real loopback port, so Realmgate's reachability check before a sign-out gets an answer.
  idpHost = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => idpHost.listen(0, '127.0.0.1', resolve));
  idp = await TestSamlIdp.create(`http://127.0.0.1:${(idpHost.address() as AddressInfo).port}/saml`);
  receiver = await startBackchannelReceiver();
  foreignKey = await generateTestKey('Someone else');
  await addSamlProvider(server.node, idp, { alias: 'corp' });
  spCert = await spCertificateOf(server.node, 'corp');
  sloUrl = `${server.url}/federation/corp/saml/slo`;
  postIdp = await TestSamlIdp.create(`http://127.0.0.1:${(idpHost.address() as AddressInfo).port}/saml-post`);
  await addSamlProvider(server.node, postIdp, { alias: 'corp-post', settings: { metadata_xml: postIdp.metadataXml({ sloBindings: ['post', 'redirect'], sloResponseUrl: `${postIdp.sloUrl}/response` }) } });
  postSpCert = await spCertificateOf(server.node, 'corp-post');
  postSloUrl = `${server.url}/federation/corp-post/saml/slo`;
  app = await registerApp(server.node, server.url, 'mail', {
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
    post_logout_redirect_uris: ['http://127.0.0.1:1/mail/signed-out'],
  });
});

afterAll(async () => {
  await server?.close();
  await receiver?.close();
  await new Promise((resolve) => idpHost?.close(resolve));
  await database?.close();
});

/** Signs `nameId` in through a SAML IdP (default `corp`) with `sessionIndex`; returns the browser, session uid and tokens. */
async function signIn(nameId: string, sessionIndex: string, through: { idp: TestSamlIdp; alias: string } = { idp, alias: 'corp' }) {
  const browser = new HttpSession();
  const login = await samlLogin(app, through.idp, server, through.alias, { browser, params: { idp_hint: through.alias }, response: { nameId, nameIdFormat: FORMATS.persistent, sessionIndex } });
  const row = await database.db('login_sessions').where({ account_id: login.claims.sub, session_index: sessionIndex }).first<{ session_uid: string; name_id_format: string }>();
  return { ...login, sessionUid: row!.session_uid, row: row! };
}

async function isActive(uid: string): Promise<boolean> {
  return !!(await database.db('oidc_payloads').where({ model: 'Session', uid }).first());
}

/** A LogoutRequest from the IdP for `nameId`, valid unless `overrides` say otherwise. */
function request(nameId: string, overrides: Partial<LogoutRequestOptions> = {}): string {
  return logoutRequestXml(idp, { destination: sloUrl, nameId, nameIdFormat: FORMATS.persistent, ...overrides });
}

describe('SAML single logout started by the IdP', () => {
  it('ends the session of the NameID and SessionIndex over HTTP-Redirect and answers a signed LogoutResponse with the RelayState', async () => {
    const ended = await signIn('u-2001', '_s-redirect-1');
    const other = await signIn('u-2001', '_s-redirect-2');
    expect(ended.row.name_id_format).toBe(FORMATS.persistent);
    const tokensBefore = receiver.tokens.length;
    const xml = request('u-2001', { sessionIndex: '_s-redirect-1', id: '_logout-redirect-1' });
    const res = await new HttpSession().request(redirectBindingUrl(sloUrl, 'SAMLRequest', xml, { key: idp.key, relayState: 'rs-123' }));
    expect(res.status).toBe(303);
    const answer = new URL(res.headers.get('location')!);
    expect(answer.origin + answer.pathname).toBe(idp.sloUrl);
    const message = readLogoutMessage(answer, spCert);
    expect(message).toMatchObject({ kind: 'LogoutResponse', inResponseTo: '_logout-redirect-1', status: 'urn:oasis:names:tc:SAML:2.0:status:Success', relayState: 'rs-123', destination: idp.sloUrl, signatureValid: true });
    expect(await isActive(ended.sessionUid)).toBe(false);
    expect(await isActive(other.sessionUid)).toBe(true);
    await eventually('the application is told', async () => receiver.tokens.length === tokensBefore + 1);
  });

  it('ends the session over HTTP-POST with an XML-signed LogoutRequest', async () => {
    const ended = await signIn('u-2002', '_s-post-1');
    const xml = signRoot(request('u-2002', { sessionIndex: '_s-post-1' }), 'LogoutRequest', idp.key);
    const res = await new HttpSession().request(sloUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLRequest: encodeResponse(xml), RelayState: 'rs-post' }),
    });
    expect(res.status).toBe(303);
    expect(readLogoutMessage(new URL(res.headers.get('location')!), spCert)).toMatchObject({ relayState: 'rs-post', signatureValid: true });
    expect(await isActive(ended.sessionUid)).toBe(false);
  });

  it('refuses unsigned, wrongly signed, SHA-1 signed, misdirected, foreign, expired and replayed LogoutRequests and ends nothing', async () => {
    const victim = await signIn('u-2003', '_s-victim');
    const replay = request('u-2003', { sessionIndex: '_s-nothing', id: '_replayed-1' });
    expect((await new HttpSession().request(redirectBindingUrl(sloUrl, 'SAMLRequest', replay, { key: idp.key }))).status).toBe(303);
    const valid = { sessionIndex: '_s-victim' };
    const cases: [string, URL | Record<string, string>][] = [
      ['an unsigned redirect', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', valid), { key: null })],
      ['a redirect signed by another key', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', valid), { key: foreignKey })],
      ['another Destination', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', { ...valid, destination: 'http://127.0.0.1:1/slo' }), { key: idp.key })],
      ['no Destination', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', { ...valid, destination: null }), { key: idp.key })],
      ['another Issuer', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', { ...valid, issuer: 'http://127.0.0.1:1/other' }), { key: idp.key })],
      ['a passed NotOnOrAfter', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', { ...valid, notOnOrAfter: new Date(Date.now() - 3_600_000) }), { key: idp.key })],
      ['a replayed ID', redirectBindingUrl(sloUrl, 'SAMLRequest', replay, { key: idp.key })],
      ['an unsigned POST', { SAMLRequest: encodeResponse(request('u-2003', valid)) }],
      ['a POST signed by another key', { SAMLRequest: encodeResponse(signRoot(request('u-2003', valid), 'LogoutRequest', foreignKey)) }],
      ['a redirect signed with RSA-SHA1', redirectBindingUrl(sloUrl, 'SAMLRequest', request('u-2003', valid), { key: idp.key, hash: 'sha1' })],
      ['a POST signed with RSA-SHA1', { SAMLRequest: encodeResponse(signRoot(request('u-2003', valid), 'LogoutRequest', idp.key, { signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1' })) }],
    ];
    for (const [what, sent] of cases) {
      const res = sent instanceof URL
        ? await new HttpSession().request(sent)
        : await new HttpSession().request(sloUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(sent) });
      expect(res.status, what).toBe(400);
      expect(res.body, what).toContain('could not verify the sign-out request');
    }
    expect(await isActive(victim.sessionUid)).toBe(true);
  });
});

describe('SAML single logout started by the application', () => {
  /** RP-initiated logout at Realmgate up to the redirect to the IdP's SLO endpoint. */
  async function logoutToIdp(login: Awaited<ReturnType<typeof signIn>>) {
    const endSession = oidc.buildEndSessionUrl(app.config, { id_token_hint: login.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'bye' });
    const confirm = await login.browser.follow(endSession);
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    const atIdp = await login.browser.submit(form.action, { ...form.fields, logout: 'yes' }, idp.sloUrl);
    expect(atIdp.status, atIdp.body.slice(0, 300)).toBe(0);
    return readLogoutMessage(atIdp.url, spCert);
  }

  it('sends a signed LogoutRequest naming the NameID and SessionIndex, and returns to the application after the LogoutResponse', async () => {
    const login = await signIn('u-3001', '_s-sp-1');
    const sent = await logoutToIdp(login);
    expect(sent).toMatchObject({ kind: 'LogoutRequest', nameId: 'u-3001', nameIdFormat: FORMATS.persistent, sessionIndex: '_s-sp-1', destination: idp.sloUrl, signatureValid: true });
    expect(await isActive(login.sessionUid)).toBe(false);
    const response = logoutResponseXml(idp, { destination: sloUrl, inResponseTo: sent.id });
    const back = await login.browser.follow(redirectBindingUrl(sloUrl, 'SAMLResponse', response, { key: idp.key, relayState: sent.relayState! }), {}, 'http://127.0.0.1:1/mail/signed-out');
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('state')).toBe('bye');
  });

  it('refuses a LogoutResponse that answers another request', async () => {
    const login = await signIn('u-3002', '_s-sp-2');
    const sent = await logoutToIdp(login);
    const response = logoutResponseXml(idp, { destination: sloUrl, inResponseTo: '_someone-elses-request' });
    const back = await login.browser.follow(redirectBindingUrl(sloUrl, 'SAMLResponse', response, { key: idp.key, relayState: sent.relayState! }), {}, 'http://127.0.0.1:1/mail/signed-out');
    expect(back.status).toBe(400);
    expect(back.body).toContain('could not verify');
  });
});

describe('SAML single logout over HTTP-POST, when the IdP metadata lists it first', () => {
  const viaPost = () => ({ idp: postIdp, alias: 'corp-post' });
  const form = (fields: Record<string, string>, url = postSloUrl) =>
    new HttpSession().request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

  it('answers an IdP-initiated LogoutRequest with an XML-signed LogoutResponse posted to the ResponseLocation, with the RelayState echoed', async () => {
    const ended = await signIn('u-4001', '_s-pp-1', viaPost());
    const xml = signRoot(logoutRequestXml(postIdp, { destination: postSloUrl, nameId: 'u-4001', nameIdFormat: FORMATS.persistent, sessionIndex: '_s-pp-1', id: '_logout-pp-1' }), 'LogoutRequest', postIdp.key);
    const res = await form({ SAMLRequest: encodeResponse(xml), RelayState: 'rs-pp' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('Continuing to sign out');
    expect(res.headers.get('content-security-policy')).toContain(`form-action ${new URL(postIdp.sloUrl).origin}`);
    const answer = readForm(res, /\/slo\/response$/);
    expect(answer.action.toString()).toBe(`${postIdp.sloUrl}/response`);
    expect(readPostedLogoutMessage(answer.fields, postSpCert)).toMatchObject({
      kind: 'LogoutResponse', inResponseTo: '_logout-pp-1', status: 'urn:oasis:names:tc:SAML:2.0:status:Success', relayState: 'rs-pp', destination: `${postIdp.sloUrl}/response`, signatureValid: true,
    });
    expect(readPostedLogoutMessage(answer.fields, foreignKey.certificatePem).signatureValid).toBe(false);
    expect(await isActive(ended.sessionUid)).toBe(false);
  });

  it('answers by HTTP-POST even when the LogoutRequest came by HTTP-Redirect', async () => {
    const ended = await signIn('u-4002', '_s-pp-2', viaPost());
    const xml = logoutRequestXml(postIdp, { destination: postSloUrl, nameId: 'u-4002', nameIdFormat: FORMATS.persistent, sessionIndex: '_s-pp-2', id: '_logout-pp-2' });
    const res = await new HttpSession().request(redirectBindingUrl(postSloUrl, 'SAMLRequest', xml, { key: postIdp.key, relayState: 'rs-r' }));
    expect(res.status).toBe(200);
    expect(readPostedLogoutMessage(readForm(res, /\/slo\/response$/).fields, postSpCert)).toMatchObject({ inResponseTo: '_logout-pp-2', relayState: 'rs-r', signatureValid: true });
    expect(await isActive(ended.sessionUid)).toBe(false);
  });

  /** RP-initiated logout at Realmgate up to the auto-posting page that sends the LogoutRequest to the IdP. */
  async function logoutToIdpByPost(login: Awaited<ReturnType<typeof signIn>>) {
    const endSession = oidc.buildEndSessionUrl(app.config, { id_token_hint: login.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'bye-post' });
    const confirm = await login.browser.follow(endSession);
    const confirmForm = readForm(confirm, /\/session\/end\/confirm$/);
    const page = await login.browser.submit(confirmForm.action, { ...confirmForm.fields, logout: 'yes' });
    expect(page.status, page.body.slice(0, 300)).toBe(200);
    const toIdp = readForm(page, /\/saml-post\/slo$/);
    expect(toIdp.action.toString()).toBe(postIdp.sloUrl);
    return readPostedLogoutMessage(toIdp.fields, postSpCert);
  }

  it('sends the SP-initiated LogoutRequest XML-signed by HTTP-POST, and returns to the application after a posted, XML-signed LogoutResponse', async () => {
    const login = await signIn('u-4003', '_s-pp-3', viaPost());
    const sent = await logoutToIdpByPost(login);
    expect(sent).toMatchObject({ kind: 'LogoutRequest', nameId: 'u-4003', nameIdFormat: FORMATS.persistent, sessionIndex: '_s-pp-3', destination: postIdp.sloUrl, signatureValid: true });
    expect(await isActive(login.sessionUid)).toBe(false);
    const response = signRoot(logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: sent.id }), 'LogoutResponse', postIdp.key);
    const back = await login.browser.submit(postSloUrl, { SAMLResponse: encodeResponse(response), RelayState: sent.relayState! }, 'http://127.0.0.1:1/mail/signed-out');
    expect(back.status, back.body.slice(0, 300)).toBe(0);
    expect(back.url.searchParams.get('state')).toBe('bye-post');
  });

  it('refuses posted LogoutResponses that are unsigned, signed by another key, answer another request, or lean on a signed query', async () => {
    const cases: [string, (sent: { id: string; relayState: string }) => Promise<ReturnType<typeof form>> | ReturnType<typeof form>][] = [
      ['unsigned', (sent) => form({ SAMLResponse: encodeResponse(logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: sent.id })), RelayState: sent.relayState })],
      ['signed by another key', (sent) => form({ SAMLResponse: encodeResponse(signRoot(logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: sent.id }), 'LogoutResponse', foreignKey)), RelayState: sent.relayState })],
      ['answering another request', (sent) => form({ SAMLResponse: encodeResponse(signRoot(logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: '_someone-elses-request' }), 'LogoutResponse', postIdp.key)), RelayState: sent.relayState })],
      ['posted beside a query signed for another message', (sent) => {
        const signedQuery = redirectBindingUrl(postSloUrl, 'SAMLResponse', logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: sent.id }), { key: postIdp.key, relayState: sent.relayState });
        const forged = redirectBindingUrl(postSloUrl, 'SAMLResponse', logoutResponseXml(postIdp, { destination: postSloUrl, inResponseTo: sent.id, status: 'urn:oasis:names:tc:SAML:2.0:status:Success' }), { key: null, relayState: sent.relayState });
        return form({ SAMLResponse: forged.searchParams.get('SAMLResponse')!, RelayState: sent.relayState, SigAlg: signedQuery.searchParams.get('SigAlg')!, Signature: signedQuery.searchParams.get('Signature')! }, signedQuery.toString());
      }],
    ];
    for (const [i, [what, send]] of cases.entries()) {
      const login = await signIn(`u-41${i}`, `_s-pp-refused-${i}`, viaPost());
      const sent = await logoutToIdpByPost(login);
      const res = await send({ id: sent.id, relayState: sent.relayState! });
      expect(res.status, what).toBe(400);
      expect(res.body, what).toContain('could not verify');
    }
  });
});
