import crypto from 'node:crypto';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually, within } from '../support/eventually.ts';
import { addOidcProvider, federatedLogin, registerApp, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const [alice, bob] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number], (typeof UPSTREAM_USERS)[number]];
const BCL_EVENT = { 'http://schemas.openid.net/event/backchannel-logout': {} };

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let receiver: BackchannelReceiver;
let mail: TestApp;
let calendar: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1' });
  idp = await startUpstreamIdp();
  receiver = await startBackchannelReceiver();
  await addOidcProvider(server.node, server.url, idp, { alias: 'acme', upstreamClient: { frontchannel_logout_uri: `${server.url}/federation/acme/frontchannel-logout` } as object });
  for (const id of ['mail', 'calendar']) {
    const app = await registerApp(server.node, server.url, id, {
      backchannel_logout_uri: `${receiver.url}?client=${id}`,
      backchannel_logout_session_required: true,
      frontchannel_logout_uri: `http://127.0.0.1:1/${id}/frontchannel-logout`,
      frontchannel_logout_session_required: true,
      post_logout_redirect_uris: [`http://127.0.0.1:1/${id}/signed-out`],
    });
    if (id === 'mail') mail = app;
    else calendar = app;
  }
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await receiver?.close();
  await database?.close();
});

/** A browser signed in through acme at both applications (one Realmgate session); its session uid, upstream sid and the apps' tokens. */
async function signedInToBoth(user: typeof alice) {
  const browser = new HttpSession();
  const first = await federatedLogin(mail, idp, user, { params: { idp_hint: 'acme' }, browser });
  const second = await federatedLogin(calendar, idp, user, { params: { idp_hint: 'acme' }, browser });
  const row = await database.db('login_sessions').where({ account_id: first.claims.sub }).orderBy('created_at', 'desc').first<{ session_uid: string; upstream_session_id: string }>();
  return { browser, sessionUid: row!.session_uid, upstreamSid: row!.upstream_session_id, sub: first.claims.sub, sids: { mail: first.claims.sid, calendar: second.claims.sid } as Record<string, unknown>, idToken: first.tokens.id_token! };
}

/** Whether the engine session `uid` is still signed in. */
async function isActive(uid: string): Promise<boolean> {
  return !!(await database.db('oidc_payloads').where({ model: 'Session', uid }).first());
}

/** Signs the browser out at the upstream IdP itself (its own logout page), which sends Realmgate a logout token. */
async function signOutAtUpstream(browser: HttpSession): Promise<PageResponse> {
  const confirm = await browser.follow(`${idp.issuer}/session/end`);
  const form = readForm(confirm, /\/session\/end\/confirm$/);
  return browser.submit(form.action, { ...form.fields, logout: 'yes' });
}

/** Posts a logout token to Realmgate's back-channel endpoint for acme. */
async function postLogoutToken(token: string): Promise<Response> {
  return fetch(`${server.url}/federation/acme/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
}

/** Claims of a logout token acme would send about `sid`/`sub`; `overrides` may set a claim to undefined to drop it. */
function logoutClaims(overrides: Record<string, unknown>): jose.JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { iss: idp.issuer, aud: upstreamClientFor('acme').clientId, iat: now, exp: now + 120, jti: crypto.randomUUID(), events: BCL_EVENT, ...overrides };
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
}

describe('upstream OIDC back-channel logout', () => {
  it('ends exactly the session that came from the upstream session, and both its applications get a valid logout token', async () => {
    const ended = await signedInToBoth(alice);
    const otherOfAlice = await signedInToBoth(alice);
    const ofBob = await signedInToBoth(bob);
    const tokensBefore = receiver.tokens.length;

    const back = await signOutAtUpstream(ended.browser);
    expect(back.status).toBe(200);
    expect(await isActive(ended.sessionUid)).toBe(false);
    expect(await isActive(otherOfAlice.sessionUid)).toBe(true);
    expect(await isActive(ofBob.sessionUid)).toBe(true);

    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const audiences = [];
    for (let i = 0; i < 2; i++) {
      const { payload } = await jose.jwtVerify(await within('a logout token', receiver.next()), jwks, { issuer: server.url, typ: 'logout+jwt' });
      expect(payload).toMatchObject({ sub: ended.sub, events: BCL_EVENT, sid: ended.sids[payload.aud as string] });
      audiences.push(payload.aud);
    }
    expect(audiences.sort()).toEqual(['calendar', 'mail']);
    expect(receiver.tokens.length).toBe(tokensBefore + 2);
    const reasons = await database.db('logout_deliveries').where({ session_uid: ended.sessionUid }).pluck('reason');
    expect(reasons).toEqual(['upstream_logout', 'upstream_logout']);
  });

  it('ends every session of the upstream subject when the token names no sid, and accepts a token without exp', async () => {
    const one = await signedInToBoth(bob);
    const two = await signedInToBoth(bob);
    const res = await postLogoutToken(await idp.signJwt(logoutClaims({ sub: bob.sub, exp: undefined })));
    expect(res.status).toBe(200);
    expect(await isActive(one.sessionUid)).toBe(false);
    expect(await isActive(two.sessionUid)).toBe(false);
  });

  it('refuses invalid logout tokens with the JSON error and changes nothing', async () => {
    const victim = await signedInToBoth(alice);
    const sid = victim.upstreamSid;
    const replayed = await idp.signJwt(logoutClaims({ sid: 'no-such-session' }));
    expect((await postLogoutToken(replayed)).status).toBe(200);
    const deliveriesBefore = await database.db('logout_deliveries').count({ n: '*' });
    const cases: [string, string][] = [
      ['a signature by a key the upstream does not publish', await idp.signJwt(logoutClaims({ sid }), { foreignKey: true })],
      ['another audience', await idp.signJwt(logoutClaims({ sid, aud: 'someone-else' }))],
      ['another issuer', await idp.signJwt(logoutClaims({ sid, iss: 'http://127.0.0.1:9' }))],
      ['a replayed jti', replayed],
      ['a nonce', await idp.signJwt(logoutClaims({ sid, nonce: 'n-0S6_WzA2Mj' }))],
      ['no events', await idp.signJwt(logoutClaims({ sid, events: undefined }))],
      ['the wrong event', await idp.signJwt(logoutClaims({ sid, events: { 'http://schemas.openid.net/event/other': {} } }))],
      ['a stale iat', await idp.signJwt(logoutClaims({ sid, iat: Math.floor(Date.now() / 1000) - 3600, exp: undefined }))],
      ['neither sid nor sub', await idp.signJwt(logoutClaims({}))],
      ['no jti', await idp.signJwt(logoutClaims({ sid, jti: undefined }))],
      ['not a JWT', 'not-a-jwt'],
    ];
    for (const [what, token] of cases) {
      const res = await postLogoutToken(token);
      expect(res.status, what).toBe(400);
      expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
      expect(await res.json(), what).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
    }
    const missing = await fetch(`${server.url}/federation/acme/backchannel-logout`, { method: 'POST' });
    expect(missing.status).toBe(400);
    expect(await isActive(victim.sessionUid)).toBe(true);
    expect(await database.db('logout_deliveries').count({ n: '*' })).toEqual(deliveriesBefore);
  });

  it('accepts a token signed with a key the upstream rotated to after Realmgate opened it', async () => {
    const victim = await signedInToBoth(alice);
    await idp.rotateSigningKey();
    const res = await postLogoutToken(await idp.signJwt(logoutClaims({ sid: victim.upstreamSid })));
    expect(res.status).toBe(200);
    expect(await isActive(victim.sessionUid)).toBe(false);
  });
});

describe('upstream OIDC front-channel logout', () => {
  it('ends the matching session and renders frames for its applications, allowed by the page policy alone', async () => {
    const victim = await signedInToBoth(alice);
    const bystander = await signedInToBoth(alice);
    const page = await new HttpSession().request(`${server.url}/federation/acme/frontchannel-logout?iss=${encodeURIComponent(idp.issuer)}&sid=${encodeURIComponent(victim.upstreamSid)}`);
    expect(page.status).toBe(200);
    const frames = [...page.body.matchAll(/<iframe src="([^"]+)"/g)].map((m) => new URL(m[1]!.replace(/&amp;/g, '&')));
    expect(frames.map((f) => f.pathname).sort()).toEqual(['/calendar/frontchannel-logout', '/mail/frontchannel-logout']);
    for (const frame of frames) {
      expect(frame.searchParams.get('iss')).toBe(server.url);
      expect(frame.searchParams.get('sid')).toBe(victim.sids[frame.pathname.split('/')[1]!]);
    }
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-src http://127.0.0.1:1");
    expect(csp).toContain(`frame-ancestors ${idp.issuer}`);
    expect(csp).toContain("default-src 'none'");
    expect(await isActive(victim.sessionUid)).toBe(false);
    expect(await isActive(bystander.sessionUid)).toBe(true);
  });

  it('refuses another issuer with a safe page and ends nothing', async () => {
    const victim = await signedInToBoth(alice);
    const page = await new HttpSession().request(`${server.url}/federation/acme/frontchannel-logout?iss=http://127.0.0.1:9&sid=${encodeURIComponent(victim.upstreamSid)}`);
    expect(page.status).toBe(400);
    expect(page.body).toContain('could not verify the sign-out request');
    expect(await isActive(victim.sessionUid)).toBe(true);
  });
});

describe('signing out upstream when the user signs out of an application', () => {
  it('sends the browser to the upstream end_session with id_token_hint, then back to the application with its state', async () => {
    const { browser, sessionUid } = await signedInToBoth(alice);
    const upstreamSessions = idp.hits.get('/session/end') ?? 0;
    const endSession = oidc.buildEndSessionUrl(mail.config, { id_token_hint: (await federatedLogin(mail, idp, alice, { params: { idp_hint: 'acme' }, browser })).tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'bye' });
    const confirm = await browser.follow(endSession);
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    // Realmgate's confirmation, then the upstream's own.
    const atUpstream = await browser.submit(form.action, { ...form.fields, logout: 'yes' });
    expect(atUpstream.url.origin).toBe(idp.issuer);
    expect(idp.hits.get('/session/end')).toBe(upstreamSessions + 1);
    // The hint is the upstream's own ID token for this session, which is stored sealed, never as a JWT.
    const row = (await database.db('login_sessions').where({ session_uid: sessionUid }).first<Record<string, string | null>>())!;
    expect(row).not.toHaveProperty('upstream_id_token');
    expect(row.sealed_upstream_id_token).toMatch(/^v1\./);
    expect(row.sealed_upstream_id_token).not.toMatch(/ey[\w-]+\.ey[\w-]+\./);
    const hint = atUpstream.url.searchParams.get('id_token_hint')!;
    expect(server.node.services.sealer.open(row.sealed_upstream_id_token!)).toBe(hint);
    const { payload } = await jose.jwtVerify(hint, jose.createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)), { issuer: idp.issuer, audience: upstreamClientFor('acme').clientId, clockTolerance: 3600 });
    expect(payload).toMatchObject({ sub: alice.sub, sid: row.upstream_session_id });
    expect(atUpstream.url.searchParams.get('post_logout_redirect_uri')).toBe(`${server.url}/federation/acme/logged-out`);
    const upstreamForm = readForm(atUpstream, /\/session\/end\/confirm$/);
    const back = await browser.submit(upstreamForm.action, { ...upstreamForm.fields, logout: 'yes' }, 'http://127.0.0.1:1/mail/signed-out');
    expect(back.status).toBe(0);
    expect(back.url.searchParams.get('state')).toBe('bye');
    expect(await isActive(sessionUid)).toBe(false);
    // The upstream session is gone too: the next login asks for the password there.
    const again = await browser.follow((await mail.authorizationUrl({ idp_hint: 'acme' })).url);
    expect(again.url.origin).toBe(idp.issuer);
    expect(again.body).toContain('Upstream IdP');
  });

  it('signs the user out of that application alone when they choose to stay signed in: its grant goes and its notice goes through the outbox, the others and the upstream keep their sessions', async () => {
    const both = await signedInToBoth(alice);
    const mailLogin = await federatedLogin(mail, idp, alice, { params: { idp_hint: 'acme' }, browser: both.browser });
    const before = (await database.db('oidc_payloads').where({ model: 'Session', uid: both.sessionUid }).first<{ payload: { authorizations: Record<string, { grantId: string; sid: string }> } }>())!.payload.authorizations;
    const upstreamEnds = idp.hits.get('/session/end') ?? 0;
    const tokensBefore = receiver.tokens.length;

    const endSession = oidc.buildEndSessionUrl(mail.config, { id_token_hint: mailLogin.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'stay' });
    const confirm = await both.browser.follow(endSession);
    expect(confirm.body).toContain('No, stay signed in');
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    // "No, stay signed in" submits the form without logout=yes.
    const back = await both.browser.submit(form.action, form.fields, 'http://127.0.0.1:1/mail/signed-out');
    expect(back.status, back.body.slice(0, 300)).toBe(0);
    expect(back.url.searchParams.get('state')).toBe('stay');

    // The application is told once, through the outbox, by a logout token for its own sid.
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    // (Notices of sessions earlier tests ended may still be arriving: look for this one among the new tokens.)
    const payload = await eventually('mail gets a logout token', async () => {
      for (const token of receiver.tokens.slice(tokensBefore)) {
        const verified = await jose.jwtVerify(token, jwks, { issuer: server.url, audience: 'mail', typ: 'logout+jwt' }).catch(() => undefined);
        if (verified?.payload.sid === before.mail!.sid) return verified.payload;
      }
      return undefined;
    });
    expect(payload).toMatchObject({ sub: both.sub, events: BCL_EVENT });
    const deliveries = await database.db('logout_deliveries').where({ session_uid: both.sessionUid }).select('client_id', 'reason', 'sid');
    expect(deliveries).toEqual([{ client_id: 'mail', reason: 'rp_logout', sid: before.mail!.sid }]);
    // Its grant and tokens are gone; the session, the other application's grant and the upstream session stay.
    expect(await database.db('oidc_payloads').where({ model: 'Grant', id: before.mail!.grantId }).first()).toBeUndefined();
    await expect(oidc.fetchUserInfo(mail.config, mailLogin.tokens.access_token, mailLogin.claims.sub)).rejects.toThrow();
    expect(await database.db('oidc_payloads').where({ model: 'Grant', id: before.calendar!.grantId }).first()).toBeDefined();
    expect(await isActive(both.sessionUid)).toBe(true);
    expect(idp.hits.get('/session/end') ?? 0).toBe(upstreamEnds);
    const calendarAgain = await both.browser.follow((await calendar.authorizationUrl()).url, {}, calendar.redirectUri);
    expect(calendarAgain.status, 'calendar signs in from the session, without the upstream').toBe(0);

    // Back at the application within the same session, then signing out of everything: it is told again, for its new sid.
    const mailAgain = await federatedLogin(mail, idp, alice, { browser: both.browser });
    expect(mailAgain.claims.sid).not.toBe(before.mail!.sid);
    await eventually('the first notice was delivered', async () => (await database.db('logout_deliveries').where({ session_uid: both.sessionUid, status: 'pending' }).count({ n: '*' }))[0]!.n == 0);
    const confirmAll = await both.browser.follow(oidc.buildEndSessionUrl(mail.config, { id_token_hint: mailAgain.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out' }));
    const formAll = readForm(confirmAll, /\/session\/end\/confirm$/);
    await both.browser.submit(formAll.action, { ...formAll.fields, logout: 'yes' });
    expect(await isActive(both.sessionUid)).toBe(false);
    const after = await database.db('logout_deliveries').where({ session_uid: both.sessionUid }).orderBy('id').select('client_id', 'sid');
    expect(after).toEqual([
      { client_id: 'mail', sid: before.mail!.sid },
      { client_id: 'calendar', sid: before.calendar!.sid },
      { client_id: 'mail', sid: mailAgain.claims.sid },
    ]);
  });

  it('finishes the local logout and says so when the upstream does not answer', async () => {
    const down = await startUpstreamIdp();
    await addOidcProvider(server.node, server.url, down, { alias: 'flaky' });
    const browser = new HttpSession();
    const { tokens } = await federatedLogin(mail, down, alice, { params: { idp_hint: 'flaky' }, browser });
    await down.close();
    const endSession = oidc.buildEndSessionUrl(mail.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'bye' });
    const confirm = await browser.follow(endSession);
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    const page = await browser.submit(form.action, { ...form.fields, logout: 'yes' });
    expect(page.status).toBe(200);
    expect(page.url.origin).toBe(server.url);
    expect(page.body).toContain('data-upstream-signout-failed');
    expect(page.body).toContain('href="http://127.0.0.1:1/mail/signed-out?state=bye"');
    const again = await browser.follow((await mail.authorizationUrl({ idp_hint: 'acme' })).url, {}, mail.redirectUri);
    expect(again.status, 'no Realmgate session is left').not.toBe(0);
  });

  it('goes straight back to the application when the provider has upstream_logout off', async () => {
    const quiet = await startUpstreamIdp();
    try {
      await addOidcProvider(server.node, server.url, quiet, { alias: 'quiet', settings: { upstream_logout: false } });
      const browser = new HttpSession();
      const { tokens } = await federatedLogin(mail, quiet, alice, { params: { idp_hint: 'quiet' }, browser });
      const endSession = oidc.buildEndSessionUrl(mail.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:1/mail/signed-out', state: 'bye' });
      const confirm = await browser.follow(endSession);
      const form = readForm(confirm, /\/session\/end\/confirm$/);
      const back = await browser.submit(form.action, { ...form.fields, logout: 'yes' }, 'http://127.0.0.1:1/mail/signed-out');
      expect(back.status).toBe(0);
      expect(back.url.searchParams.get('state')).toBe('bye');
      expect(quiet.hits.get('/session/end')).toBeUndefined();
    } finally {
      await quiet.close();
    }
  });
});
