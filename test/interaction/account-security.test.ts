/**
 * The security settings of /account, walked with a cookie-jar browser: renaming a second factor
 * (a bad name refused at its field with nothing changed), removing the last factor under a client
 * that requires one (refused, nothing changed), recovery codes made anew and shown once, and the
 * account's active sessions: listed with when, where and which applications, this browser marked,
 * another one ended through the logout fan-out (its application gets a back-channel logout token)
 * and every change audited. Forms without the page's CSRF token change nothing.
 */
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp } from '../support/federation.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { discoverAs, passwordLogin, startLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';

const APP = 'http://127.0.0.1:1/web/callback';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let receiver: BackchannelReceiver;
let config: oidc.Configuration;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  receiver = await startBackchannelReceiver();
  await addClient(server.node, {
    client_id: 'web',
    client_name: 'Web Shop',
    redirect_uris: [APP],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    require_consent: false,
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  }, 'web-secret-web-secret-web');
  config = await discoverAs(server.url, 'web', 'web-secret-web-secret-web');
});

afterAll(async () => {
  await receiver?.close();
  await server?.close();
  await database?.close();
});

const totpCode = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });
const recoveryCodesOn = (page: PageResponse) => [...page.body.matchAll(/<code data-recovery-code>([a-z0-9-]+)<\/code>/g)].map((m) => m[1]!);
const auditActions = async (type: string, id: string) => ((await api.get(`/audit?resource_type=${type}&resource_id=${id}`)).body.items as { action: string; actor: string; before: unknown; after: unknown }[]);
const factorRows = (accountId: string) => database.db('mfa_factors').where({ account_id: accountId }).orderBy('created_at').select();

/** Signs in to /account with a password, and a TOTP code when `secret` is given. */
async function accountPage(email: string, password: string, secret?: string) {
  const browser = new HttpSession();
  let page = await browser.follow(`${server.url}/account`);
  if (!/action="[^"]*\/login"/.test(page.body)) {
    const discover = readForm(page, /\/discover$/);
    page = await browser.submit(discover.action, { ...discover.fields, email });
  }
  const login = readForm(page, /\/login$/);
  page = await browser.submit(login.action, { ...login.fields, email, password });
  if (secret) {
    const mfa = readForm(page, /\/mfa$/);
    page = await browser.submit(mfa.action, { ...mfa.fields, code: await totpCode(secret, 1) });
  }
  expect(page.url.pathname, page.body.slice(0, 800)).toBe('/account');
  return { browser, page };
}

/** Enrols an authenticator app from the account page. */
async function enrol(browser: HttpSession, page: PageResponse) {
  const start = readForm(page, /\/account\/totp$/);
  const enrolment = await browser.submit(start.action, start.fields);
  const secret = /<code data-totp-secret>([A-Z2-7]+)<\/code>/.exec(enrolment.body)![1]!;
  const confirm = readForm(enrolment, /\/account\/totp\/confirm$/);
  const done = await browser.submit(confirm.action, { ...confirm.fields, code: await totpCode(secret) });
  expect(done.status).toBe(200);
  return { secret, codes: recoveryCodesOn(done) };
}

describe('second factors on /account', () => {
  it('renames a factor (audited with the old and new name) and refuses a bad name at its field with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'rita@example.test', password: 'rita-password-1' });
    const { browser, page } = await accountPage('rita@example.test', 'rita-password-1');
    await enrol(browser, page);
    const [factor] = await factorRows(user.id);
    let account = await browser.follow(`${server.url}/account`);
    expect(account.body).toContain(`<label for="factor-label-${factor.id}">`);

    for (const bad of ['   ', 'x'.repeat(65), 'tab\there']) {
      const form = readForm(account, /\/account\/factors\/rename$/);
      const refused = await browser.submit(form.action, { ...form.fields, label: bad });
      expect(refused.status).toBe(400);
      expect(refused.body).toContain(`aria-invalid="true" aria-describedby="factor-label-${factor.id}-error"`);
      expect(refused.body).toMatch(new RegExp(`id="factor-label-${factor.id}-error"[^>]*>(Enter a name|Use at most 64|Use letters)`));
      expect(await factorRows(user.id)).toEqual([factor]);
    }

    const form = readForm(account, /\/account\/factors\/rename$/);
    account = await browser.submit(form.action, { ...form.fields, label: '  Work phone  ' });
    expect(account.status).toBe(200);
    expect(account.body).toContain('<span data-factor-label>Work phone</span>');
    expect((await factorRows(user.id))[0]).toMatchObject({ id: factor.id, label: 'Work phone', sealed_secret: factor.sealed_secret });
    const [renamed] = (await auditActions('user', user.id)).filter((a) => a.action === 'rename_factor');
    expect(renamed).toMatchObject({ actor: `account:${user.id}`, before: { factor_id: factor.id, kind: 'totp', label: 'Authenticator app' }, after: { label: 'Work phone' } });

    // Another account's factor, and a form without the page's CSRF token, change nothing.
    const other = await addUser(server.node, { email: 'otto@example.test', password: 'otto-password-1' });
    const second = await accountPage('otto@example.test', 'otto-password-1');
    await enrol(second.browser, second.page);
    const [othersFactor] = await factorRows(other.id);
    const foreign = await browser.submit(form.action, { ...form.fields, factor_id: othersFactor.id, label: 'Mine now' });
    expect(foreign.status).toBe(404);
    expect((await factorRows(other.id))[0].label).toBe('Authenticator app');
    const forged = await browser.submit(form.action, { factor_id: factor.id, label: 'Forged', csrf: 'x' });
    expect(forged.status).toBe(403);
    expect((await factorRows(user.id))[0].label).toBe('Work phone');
  });

  it('refuses removing the last factor of an account a client requires one for, saying why, with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'rosa@example.test', password: 'rosa-password-1' });
    const first = await accountPage('rosa@example.test', 'rosa-password-1');
    const { secret } = await enrol(first.browser, first.page);
    // Signing in to a client with mfa required marks the account.
    const strict = await registerApp(server.node, server.url, 'strict-app', { mfa: 'required' });
    const request = await strict.authorizationUrl();
    const login = await first.browser.follow(request.url, {}, strict.redirectUri);
    const mfa = readForm(login, /\/mfa$/);
    expect((await first.browser.submit(mfa.action, { ...mfa.fields, code: await totpCode(secret, 1) }, strict.redirectUri)).status).toBe(0);

    const page = await first.browser.follow(`${server.url}/account`);
    const before = { factors: await factorRows(user.id), codes: await database.db('mfa_recovery_codes').where({ account_id: user.id }).select(), audit: (await auditActions('user', user.id)).length };
    const remove = readForm(page, /\/account\/factors\/remove$/);
    const refused = await first.browser.submit(remove.action, remove.fields);
    expect(refused.status).toBe(409);
    expect(refused.body).toContain('role="alert"');
    expect(refused.body).toContain('is your only second factor and an application you use requires one, so it can&#39;t be removed. Set up another one first. Nothing changed.');
    expect(await factorRows(user.id)).toEqual(before.factors);
    expect(await database.db('mfa_recovery_codes').where({ account_id: user.id }).select()).toEqual(before.codes);
    expect(await auditActions('user', user.id)).toHaveLength(before.audit);
  });

  it('makes new recovery codes, shows them once, and the old ones stop working', async () => {
    const user = await addUser(server.node, { email: 'ruth@example.test', password: 'ruth-password-1' });
    const { browser, page } = await accountPage('ruth@example.test', 'ruth-password-1');
    const { codes: old } = await enrol(browser, page);
    const account = await browser.follow(`${server.url}/account`);
    const regenerate = readForm(account, /\/account\/recovery-codes$/);
    const shown = await browser.submit(regenerate.action, regenerate.fields);
    const codes = recoveryCodesOn(shown);
    expect(codes).toHaveLength(10);
    expect(codes.some((c) => old.includes(c))).toBe(false);
    const again = await browser.follow(`${server.url}/account`);
    for (const code of codes) expect(again.body).not.toContain(code);
    expect(again.body).toContain('10 of 10 recovery codes left');
    expect((await auditActions('user', user.id)).map((a) => a.action)).toContain('regenerate_recovery_codes');

    // An old code is refused at sign-in; a new one is accepted.
    const app = await registerApp(server.node, server.url, 'codes-app');
    const tryCode = async (code: string) => {
      const started = new HttpSession();
      const request = await app.authorizationUrl();
      let login = await started.follow(request.url, {}, app.redirectUri);
      if (!/action="[^"]*\/login"/.test(login.body)) {
        const discover = readForm(login, /\/discover$/);
        login = await started.submit(discover.action, { ...discover.fields, email: 'ruth@example.test' });
      }
      const form = readForm(login, /\/login$/);
      const asked = await started.submit(form.action, { ...form.fields, email: 'ruth@example.test', password: 'ruth-password-1' }, app.redirectUri);
      const mfa = readForm(asked, /\/mfa$/);
      return started.submit(mfa.action, { ...mfa.fields, code }, app.redirectUri);
    };
    expect((await tryCode(old[0]!)).status).toBe(401);
    expect((await tryCode(codes[0]!)).status).toBe(0);
  });
});

describe('active sessions on /account', () => {
  it('lists the account\'s sessions with their applications, marks this browser, and ends another one through the logout fan-out', async () => {
    const user = await addUser(server.node, { email: 'sara@example.test', password: 'sara-password-1' });
    await addUser(server.node, { email: 'sven@example.test', password: 'sven-password-1' });
    // Another browser of Sara's signs in to the Web Shop; Sven signs in elsewhere.
    const elsewhere = await passwordLogin(config, { redirectUri: APP, email: 'sara@example.test', password: 'sara-password-1', scope: 'openid' });
    const sven = await passwordLogin(config, { redirectUri: APP, email: 'sven@example.test', password: 'sven-password-1', scope: 'openid' });
    const { browser, page } = await accountPage('sara@example.test', 'sara-password-1');

    const items = [...page.body.matchAll(/<li data-session="([^"]+)"([^>]*)>([\s\S]*?)<\/li>/g)];
    expect(items).toHaveLength(2);
    const current = items.filter((m) => m[2]!.includes('data-current-session'));
    expect(current).toHaveLength(1);
    expect(current[0]![2]).toContain('aria-current="true"');
    expect(current[0]![3]).toContain('This browser');
    expect(current[0]![3]).not.toContain('data-end-session');
    const other = items.find((m) => !m[2]!.includes('data-current-session'))!;
    expect(other[3]).toContain('Applications: Web Shop');
    expect(other[3]).toMatch(/Signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(other[3]).toContain('with Password');
    expect(other[3]).toContain('from 127.0.0.1');
    const otherUid = other[1]!;
    expect((await database.db('login_sessions').where({ account_id: user.id }).whereNot({ session_uid: current[0]![1] }).first()).session_uid).toBe(otherUid);

    // Sven's session, and this browser's own, are refused with nothing changed.
    const end = readForm(page, /\/account\/sessions\/end$/);
    const svenUid = (await database.db('login_sessions').whereNot({ account_id: user.id }).first()).session_uid as string;
    const foreign = await browser.submit(end.action, { ...end.fields, session_id: svenUid });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toContain('Nothing changed.');
    const own = await browser.submit(end.action, { ...end.fields, session_id: current[0]![1]! });
    expect(own.status).toBe(400);
    const forged = await browser.submit(end.action, { session_id: otherUid, csrf: 'forged' });
    expect(forged.status).toBe(403);
    expect((await api.get(`/sessions?account_id=${user.id}`)).body.items).toHaveLength(2);
    expect(receiver.tokens).toHaveLength(0);

    const ended = await browser.submit(end.action, { ...end.fields, session_id: otherUid });
    expect(ended.status).toBe(200);
    expect(ended.body).toContain('The session was ended, and its application was told.');
    expect(ended.body).not.toContain(`data-session="${otherUid}"`);
    expect(ended.body).toContain('data-current-session');

    // The Web Shop gets a logout token for that session; its tokens are revoked; the other browser must sign in again.
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload } = await jose.jwtVerify(await receiver.next(), jwks, { issuer: server.url, audience: 'web', typ: 'logout+jwt' });
    expect(payload).toMatchObject({ sub: user.id, sid: elsewhere.tokens.claims()!.sid });
    expect(await oidc.tokenIntrospection(config, elsewhere.tokens.access_token)).toMatchObject({ active: false });
    const silent = await startLogin(config, { redirectUri: APP, browser: elsewhere.browser, scope: 'openid', params: { prompt: 'none' } });
    expect(silent.page.url.searchParams.get('error')).toBe('login_required');
    // This browser and Sven stay signed in.
    expect((await browser.follow(`${server.url}/account`)).url.pathname).toBe('/account');
    expect(await oidc.tokenIntrospection(config, sven.tokens.access_token)).toMatchObject({ active: true });

    const [audit] = await auditActions('session', otherUid);
    expect(audit).toMatchObject({ action: 'end', actor: `account:${user.id}`, before: { id: otherUid, account_id: user.id, idp: 'local', applications: ['web'] }, after: null });
    const deliveries = (await api.get(`/logout-deliveries?session=${otherUid}`)).body.items;
    expect(deliveries).toEqual([expect.objectContaining({ client_id: 'web', reason: 'account' })]);

    // This browser's own session ends by signing out, which the page links to.
    const signOut = /href="([^"]+)" data-sign-out/.exec(ended.body)![1]!.replace(/&amp;/g, '&');
    const confirm = await browser.follow(new URL(signOut, server.url));
    const form = readForm(confirm, /\/session\/end\/confirm$/);
    expect((await browser.submit(form.action, { ...form.fields, logout: 'yes' })).status).toBe(200);
    expect(await database.db('oidc_payloads').where({ model: 'Session', uid: current[0]![1] }).first()).toBeUndefined();
  });
});
