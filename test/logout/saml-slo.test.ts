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

/** Signs `nameId` in through the SAML IdP with `sessionIndex`; returns the browser, session uid and tokens. */
async function signIn(nameId: string, sessionIndex: string) {
  const browser = new HttpSession();
  const login = await samlLogin(app, idp, server, 'corp', { browser, params: { idp_hint: 'corp' }, response: { nameId, nameIdFormat: FORMATS.persistent, sessionIndex } });
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

  it('refuses unsigned, wrongly signed, misdirected, foreign, expired and replayed LogoutRequests and ends nothing', async () => {
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
