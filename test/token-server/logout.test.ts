import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { readForm } from '../support/http-session.ts';
import { discoverAs, passwordLogin, startLogin } from '../support/login.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const APP = 'http://127.0.0.1:1/app';

let database: TestDatabase;
let server: TestServer;
let receiver: BackchannelReceiver;
let accountId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  receiver = await startBackchannelReceiver();
  accountId = (await addUser(server.node, { email: 'alan@example.com', password: 'enigma-machine' })).id;
  for (const id of ['mail', 'calendar']) {
    await addClient(server.node, {
      client_id: id,
      redirect_uris: [`${APP}/${id}/callback`],
      post_logout_redirect_uris: [`${APP}/${id}/signed-out`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_logout_uri: `${receiver.url}?client=${id}`,
      backchannel_logout_session_required: true,
      require_consent: false,
    }, `${id}-secret-${id}-secret`);
  }
});

afterAll(async () => {
  await server?.close();
  await receiver?.close();
  await database?.close();
});

describe('RP-initiated logout', () => {
  it('ends the session and delivers a verifiable back-channel logout token to every application of it', async () => {
    const mail = await discoverAs(server.url, 'mail', 'mail-secret-mail-secret');
    const calendar = await discoverAs(server.url, 'calendar', 'calendar-secret-calendar-secret');
    const first = await passwordLogin(mail, { redirectUri: `${APP}/mail/callback`, email: 'alan@example.com', password: 'enigma-machine', scope: 'openid' });
    // Same browser, second application: single sign-on, no password asked.
    const sso = await startLogin(calendar, { redirectUri: `${APP}/calendar/callback`, scope: 'openid', browser: first.browser });
    expect(sso.page.status, 'single sign-on lands on the callback without a login page').toBe(0);
    const calendarTokens = await oidc.authorizationCodeGrant(calendar, sso.page.url, { pkceCodeVerifier: sso.codeVerifier, expectedState: sso.state, expectedNonce: sso.nonce });
    // oidc-provider gives each application its own sid for the shared session.
    const sids: Record<string, unknown> = { mail: first.tokens.claims()!.sid, calendar: calendarTokens.claims()!.sid };

    const endSession = oidc.buildEndSessionUrl(mail, { id_token_hint: first.tokens.id_token!, post_logout_redirect_uri: `${APP}/mail/signed-out`, state: 'bye' });
    const confirm = await first.browser.follow(endSession);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out?');
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    const back = await first.browser.submit(form.action, { ...form.fields, logout: 'yes' }, `${APP}/mail/signed-out`);
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('state')).toBe('bye');

    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const received = [await receiver.next(), await receiver.next()];
    const audiences = [];
    for (const token of received) {
      const { payload } = await jose.jwtVerify(token, jwks, { issuer: server.url, typ: 'logout+jwt' });
      expect(payload.sub).toBe(accountId);
      expect(payload.sid).toBe(sids[payload.aud as string]);
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(payload.nonce).toBeUndefined();
      audiences.push(payload.aud);
    }
    expect(audiences.sort()).toEqual(['calendar', 'mail']);

    // The session is gone: the next authorization asks for the password again.
    const again = await startLogin(mail, { redirectUri: `${APP}/mail/callback`, scope: 'openid', browser: first.browser });
    expect(again.page.status).toBe(200);
    expect(again.page.body).toContain('name="password"');
    // And tokens issued to that session no longer work.
    expect(await oidc.tokenIntrospection(mail, first.tokens.access_token)).toMatchObject({ active: false });
  });

  it('shows the signed-out page when no post-logout redirect is given', async () => {
    const mail = await discoverAs(server.url, 'mail', 'mail-secret-mail-secret');
    const { browser } = await passwordLogin(mail, { redirectUri: `${APP}/mail/callback`, email: 'alan@example.com', password: 'enigma-machine', scope: 'openid' });
    const confirm = await browser.follow(`${server.url}/session/end`);
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    const done = await browser.submit(form.action, { ...form.fields, logout: 'yes' });
    expect(done.status).toBe(200);
    expect(done.body).toContain('You are signed out');
  });
});
