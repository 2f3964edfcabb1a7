/**
 * TOTP second factors and the MFA step, walked with a cookie-jar browser and openid-client as the
 * application: enrolment from /account (the code computed by the test from the key the page shows
 * in `[data-totp-secret]`), sign-in with a code, a replayed code, throttled wrong codes, a
 * recovery code used twice, the `required` walk-through, `off`, `acr_values`, the ID token's
 * `amr`/`acr`, removal rules, and a federated sign-in at a provider with `require_local_mfa`.
 */
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type AuthorizationRequest, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const unescape = (s: string) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'");

/** The TOTP code of `secret` at `offsetSteps` time steps from now. */
const totpCode = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });

/** The key an enrolment page shows in `[data-totp-secret]`. */
function shownSecret(page: PageResponse): string {
  const secret = /<code data-totp-secret>([A-Z2-7]+)<\/code>/.exec(page.body)?.[1];
  if (!secret) throw new Error(`no [data-totp-secret] on ${page.url} (status ${page.status}):\n${page.body.slice(0, 1500)}`);
  return secret;
}

const recoveryCodesOn = (page: PageResponse) => [...page.body.matchAll(/<code data-recovery-code>([a-z0-9-]+)<\/code>/g)].map((m) => m[1]!);

/** Signs in with a password on the login page (email first when the page asks for it). */
async function password(browser: HttpSession, page: PageResponse, email: string, secret: string, stopAt?: string) {
  let login = page;
  if (!/action="[^"]*\/login"/.test(login.body)) {
    const discover = readForm(login, /\/discover$/);
    login = await browser.submit(discover.action, { ...discover.fields, email });
  }
  const form = readForm(login, /\/login$/);
  return browser.submit(form.action, { ...form.fields, email, password: secret }, stopAt);
}

/** Signs in to /account with a password (and a code when `secret` is enrolled); returns the browser on the account page. */
async function accountPage(email: string, pass: string, browser = new HttpSession()) {
  const start = await browser.follow(`${server.url}/account`);
  const page = await password(browser, start, email, pass);
  expect(page.url.pathname, page.body.slice(0, 800)).toBe('/account');
  return { browser, page };
}

/** Enrols an authenticator app from the account page; returns its secret, the recovery codes and the browser. */
async function enrol(email: string, pass: string) {
  const { browser, page } = await accountPage(email, pass);
  expect(page.body).toContain('data-enrol="totp"');
  const start = readForm(page, /\/account\/totp$/);
  const enrolment = await browser.submit(start.action, start.fields);
  expect(enrolment.status).toBe(200);
  expect(enrolment.body).toMatch(/<svg[^>]*>[\s\S]*<\/svg>/);
  expect(enrolment.body).not.toContain('<img');
  const secret = shownSecret(enrolment);
  const confirm = readForm(enrolment, /\/account\/totp\/confirm$/);
  const done = await browser.submit(confirm.action, { ...confirm.fields, code: await totpCode(secret) });
  expect(done.status, done.body.slice(0, 800)).toBe(200);
  const codes = recoveryCodesOn(done);
  return { browser, secret, codes, page: done };
}

async function begin(app: TestApp, params: Record<string, string> = {}) {
  const browser = new HttpSession();
  const request = await app.authorizationUrl(params);
  return { browser, request, page: await browser.follow(request.url, {}, app.redirectUri) };
}

async function redeem(app: TestApp, request: AuthorizationRequest, page: PageResponse) {
  expect(page.status, page.body.slice(0, 1200)).toBe(0);
  return (await app.redeem(request, page.url)).claims()!;
}

/** Posts `code` on the MFA step's page. */
function submitCode(app: TestApp, browser: HttpSession, page: PageResponse, code: string) {
  const form = readForm(page, /\/mfa$/);
  return browser.submit(form.action, { ...form.fields, code }, app.redirectUri);
}

const factorRows = (accountId: string) => database.db('mfa_factors').where({ account_id: accountId }).orderBy('created_at').select();

describe('the client field mfa', () => {
  it('refuses a value outside off, if_enrolled and required, stores nothing, and stores a valid one', async () => {
    const bad = await api.post('/clients', { client_id: 'bad-mfa', redirect_uris: ['https://app.example.test/cb'], mfa: 'always' });
    expect(bad.status).toBe(400);
    expect(problemFields(bad)).toEqual(['mfa']);
    expect((await api.get('/clients/bad-mfa')).status).toBe(404);
    expect((await api.post('/clients', { client_id: 'good-mfa', redirect_uris: ['https://app.example.test/cb'], mfa: 'required' })).status).toBe(201);
    expect((await api.get('/clients/good-mfa')).body.mfa).toBe('required');
    const schema = (await api.get('/openapi.json')).body.components.schemas.Client.properties;
    expect(schema.mfa.enum).toEqual(['off', 'if_enrolled', 'required']);
  });
});

describe('enrolment from /account', () => {
  it('shows a QR code and the key, confirms with a first code, seals the secret and keeps ten hashed recovery codes', async () => {
    const user = await addUser(server.node, { email: 'tina@example.test', password: 'tina-password-1' });
    const { secret, codes, browser } = await enrol('tina@example.test', 'tina-password-1');
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const [row] = await factorRows(user.id);
    expect(row).toMatchObject({ kind: 'totp' });
    expect(row.confirmed_at).not.toBeNull();
    expect(row.sealed_secret).not.toContain(secret);
    const stored = await database.db('mfa_recovery_codes').where({ account_id: user.id }).select();
    expect(stored).toHaveLength(10);
    for (const code of codes) expect(JSON.stringify(stored)).not.toContain(code.replace('-', ''));
    // The account page lists the factor; the recovery codes are not shown again.
    const again = await browser.follow(`${server.url}/account`);
    expect(again.body).toContain('data-factor="totp"');
    expect(again.body).not.toContain(codes[0]);
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items.map((a: { action: string }) => a.action);
    expect(audit).toContain('enrol_factor');
  });

  it('refuses a wrong first code and leaves the factor pending', async () => {
    const user = await addUser(server.node, { email: 'uma@example.test', password: 'uma-password-12' });
    const { browser, page } = await accountPage('uma@example.test', 'uma-password-12');
    const start = readForm(page, /\/account\/totp$/);
    const enrolment = await browser.submit(start.action, start.fields);
    const confirm = readForm(enrolment, /\/account\/totp\/confirm$/);
    const wrong = await browser.submit(confirm.action, { ...confirm.fields, code: '000000' === (await totpCode(shownSecret(enrolment))) ? '111111' : '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('aria-invalid="true"');
    const [row] = await factorRows(user.id);
    expect(row.confirmed_at).toBeNull();
    expect(await server.node.services.mfaFactors.hasFactor(user.id)).toBe(false);
  });
});

describe('signing in with a second factor', () => {
  it('asks an enrolled account for a code after the password; amr and acr say so; the same code is refused next time with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'vic@example.test', password: 'vic-password-12' });
    const { secret } = await enrol('vic@example.test', 'vic-password-12');
    const app = await registerApp(server.node, server.url, 'mfa-default-app');
    const first = await begin(app);
    const asked = await password(first.browser, first.page, 'vic@example.test', 'vic-password-12', app.redirectUri);
    expect(asked.status).toBe(200);
    expect(asked.body).toContain('name="code"');
    const code = await totpCode(secret, 1);
    const claims = await redeem(app, first.request, await submitCode(app, first.browser, asked, code));
    expect(claims.sub).toBe(user.id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');

    const [before] = await factorRows(user.id);
    const second = await begin(app);
    const page = await password(second.browser, second.page, 'vic@example.test', 'vic-password-12', app.redirectUri);
    const replayed = await submitCode(app, second.browser, page, code);
    expect(replayed.status).toBe(401);
    expect(replayed.body).toContain('already used');
    expect(await factorRows(user.id)).toEqual([before]);
  });

  it('accepts one code once even when two logins send it at the same moment', async () => {
    await addUser(server.node, { email: 'mona@example.test', password: 'mona-password-1' });
    const { secret } = await enrol('mona@example.test', 'mona-password-1');
    const app = await registerApp(server.node, server.url, 'mfa-race-app');
    const logins = await Promise.all([begin(app), begin(app)]);
    const pages = await Promise.all(logins.map((l) => password(l.browser, l.page, 'mona@example.test', 'mona-password-1', app.redirectUri)));
    const code = await totpCode(secret, 1);
    const answers = await Promise.all(logins.map((l, i) => submitCode(app, l.browser, pages[i]!, code)));
    expect(answers.map((a) => a.status).sort()).toEqual([0, 401]);
  });

  it('throttles wrong codes like passwords: after five, even the right code waits', async () => {
    await addUser(server.node, { email: 'wes@example.test', password: 'wes-password-12' });
    const { secret } = await enrol('wes@example.test', 'wes-password-12');
    const app = await registerApp(server.node, server.url, 'mfa-throttle-app');
    const { browser, page } = await begin(app);
    let current = await password(browser, page, 'wes@example.test', 'wes-password-12', app.redirectUri);
    const right = await totpCode(secret, 1);
    const wrong = right === '123456' ? '654321' : '123456';
    for (let i = 0; i < 5; i++) {
      current = await submitCode(app, browser, current, wrong);
      expect(current.status).toBe(401);
    }
    const held = await submitCode(app, browser, current, right);
    expect(held.status).toBe(429);
    expect(held.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(held.body).toContain('Too many wrong codes');
  });

  it('accepts a recovery code once', async () => {
    await addUser(server.node, { email: 'xena@example.test', password: 'xena-password-1' });
    const { codes } = await enrol('xena@example.test', 'xena-password-1');
    const app = await registerApp(server.node, server.url, 'mfa-recovery-app');
    const first = await begin(app);
    const asked = await password(first.browser, first.page, 'xena@example.test', 'xena-password-1', app.redirectUri);
    const claims = await redeem(app, first.request, await submitCode(app, first.browser, asked, codes[3]!.toUpperCase()));
    expect(claims.amr).toEqual(['pwd', 'mfa']);
    expect(claims.acr).toBe('mfa');
    const second = await begin(app);
    const again = await password(second.browser, second.page, 'xena@example.test', 'xena-password-1', app.redirectUri);
    expect((await submitCode(app, second.browser, again, codes[3]!)).status).toBe(401);
    expect(await server.node.services.mfaFactors.recoveryCodesLeft((await server.node.services.accounts.findLocalByEmail('xena@example.test'))!.account.id)).toBe(9);
  });

  it('skips the step for a client with mfa off: amr pwd, acr sfa', async () => {
    await addUser(server.node, { email: 'yan@example.test', password: 'yan-password-12' });
    await enrol('yan@example.test', 'yan-password-12');
    const app = await registerApp(server.node, server.url, 'mfa-off-app', { mfa: 'off' });
    const { browser, page, request } = await begin(app);
    const claims = await redeem(app, request, await password(browser, page, 'yan@example.test', 'yan-password-12', app.redirectUri));
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe('sfa');
  });

  it('does not ask an account without a factor under if_enrolled', async () => {
    await addUser(server.node, { email: 'zoe@example.test', password: 'zoe-password-12' });
    const app = await registerApp(server.node, server.url, 'mfa-plain-app');
    const { browser, page, request } = await begin(app);
    expect((await redeem(app, request, await password(browser, page, 'zoe@example.test', 'zoe-password-12', app.redirectUri))).amr).toEqual(['pwd']);
  });
});

describe('a browser already signed in', () => {
  it('asks a session signed in without a second factor for a code at a client that asks for one, without the password again', async () => {
    const user = await addUser(server.node, { email: 'nina@example.test', password: 'nina-password-1' });
    const { secret } = await enrol('nina@example.test', 'nina-password-1');
    const off = await registerApp(server.node, server.url, 'sso-off-app', { mfa: 'off' });
    const first = await begin(off);
    expect((await redeem(off, first.request, await password(first.browser, first.page, 'nina@example.test', 'nina-password-1', off.redirectUri))).amr).toEqual(['pwd']);

    const strict = await registerApp(server.node, server.url, 'sso-default-app');
    const request = await strict.authorizationUrl();
    const asked = await first.browser.follow(request.url, {}, strict.redirectUri);
    expect(asked.status).toBe(200);
    expect(asked.body).toContain('name="code"');
    expect(asked.body).not.toContain('name="password"');
    const claims = await redeem(strict, request, await submitCode(strict, first.browser, asked, await totpCode(secret, 1)));
    expect(claims.sub).toBe(user.id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);

    // The session now has its second factor: the next client asking for one lets it through.
    const another = await registerApp(server.node, server.url, 'sso-required-app', { mfa: 'required' });
    const next = await another.authorizationUrl();
    const through = await first.browser.follow(next.url, {}, another.redirectUri);
    expect((await redeem(another, next, through)).acr).toBe('mfa');
  });
});

describe('mfa required', () => {
  it('walks an account without a factor through enrolment in the login, shows its recovery codes once, then refuses removing its last factor', async () => {
    const user = await addUser(server.node, { email: 'quinn@example.test', password: 'quinn-password-1' });
    const app = await registerApp(server.node, server.url, 'mfa-required-app', { mfa: 'required' });
    const { browser, page, request } = await begin(app);
    const enrolment = await password(browser, page, 'quinn@example.test', 'quinn-password-1', app.redirectUri);
    expect(enrolment.status).toBe(200);
    const secret = shownSecret(enrolment);
    const codes = await submitCode(app, browser, enrolment, await totpCode(secret));
    expect(recoveryCodesOn(codes)).toHaveLength(10);
    const continueUrl = unescape(/href="([^"]+)" data-continue/.exec(codes.body)![1]!);
    const claims = await redeem(app, request, await browser.follow(new URL(continueUrl, server.url), {}, app.redirectUri));
    expect(claims.sub).toBe(user.id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);

    // The account page keeps the last factor of an account a client requires it for.
    const signedIn = new HttpSession();
    const start = await signedIn.follow(`${server.url}/account`);
    const asked = await password(signedIn, start, 'quinn@example.test', 'quinn-password-1');
    const form = readForm(asked, /\/mfa$/);
    const onPage = await signedIn.submit(form.action, { ...form.fields, code: await totpCode(secret, 1) });
    expect(onPage.url.pathname).toBe('/account');
    const remove = readForm(onPage, /\/account\/factors\/remove$/);
    const refused = await signedIn.submit(remove.action, remove.fields);
    expect(refused.status).toBe(409);
    expect(await factorRows(user.id)).toHaveLength(1);
  });

  it('asks for a second factor on one login when acr_values names mfa', async () => {
    await addUser(server.node, { email: 'ravi@example.test', password: 'ravi-password-1' });
    const app = await registerApp(server.node, server.url, 'mfa-acr-app');
    const { browser, page } = await begin(app, { acr_values: 'mfa' });
    const enrolment = await password(browser, page, 'ravi@example.test', 'ravi-password-1', app.redirectUri);
    expect(enrolment.status).toBe(200);
    shownSecret(enrolment);
  });
});

describe('removing factors from /account', () => {
  it('removes a factor of an account no client requires one for, and its recovery codes with it', async () => {
    const user = await addUser(server.node, { email: 'sam@example.test', password: 'sam-password-12' });
    const { browser } = await enrol('sam@example.test', 'sam-password-12');
    const page = await browser.follow(`${server.url}/account`);
    const remove = readForm(page, /\/account\/factors\/remove$/);
    const done = await browser.submit(remove.action, remove.fields);
    expect(done.status).toBe(200);
    expect(await factorRows(user.id)).toEqual([]);
    expect(await database.db('mfa_recovery_codes').where({ account_id: user.id })).toEqual([]);
  });
});

describe('factors in the admin API', () => {
  it('shows a user\'s factors without secrets, resets one (audited), and 404s an unknown one with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'olga@example.test', password: 'olga-password-1' });
    const { secret, codes } = await enrol('olga@example.test', 'olga-password-1');
    const shown = await api.get(`/users/${user.id}`);
    expect(shown.status).toBe(200);
    const [factor] = shown.body.factors;
    expect(factor).toMatchObject({ kind: 'totp', label: 'Authenticator app' });
    expect(factor.confirmed_at).toEqual(expect.any(String));
    expect(shown.body.recovery_codes_left).toBe(10);
    expect(shown.text).not.toContain(secret);
    for (const code of codes) expect(shown.text).not.toContain(code);

    expect((await api.delete(`/users/${user.id}/factors/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect(await factorRows(user.id)).toHaveLength(1);
    expect((await api.delete(`/users/${user.id}/factors/${factor.id}`)).status).toBe(204);
    expect(await factorRows(user.id)).toEqual([]);
    expect((await api.get(`/users/${user.id}`)).body).toMatchObject({ factors: [], recovery_codes_left: 0 });
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items.map((a: { action: string }) => a.action);
    expect(audit).toContain('reset_factor');

    // Without a factor, a default client no longer asks for a code.
    const app = await registerApp(server.node, server.url, 'mfa-after-reset-app');
    const { browser, page, request } = await begin(app);
    expect((await redeem(app, request, await password(browser, page, 'olga@example.test', 'olga-password-1', app.redirectUri))).amr).toEqual(['pwd']);
  });

  it('audits each reset with the factors before and the admin who did it, never a secret; unknown users and another user\'s factor are 404 with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'ruben@example.test', password: 'ruben-password-1' });
    const other = await addUser(server.node, { email: 'rhea@example.test', password: 'rhea-password-12' });
    const { secret } = await enrol('ruben@example.test', 'ruben-password-1');
    await enrol('rhea@example.test', 'rhea-password-12');
    const [othersFactor] = await factorRows(other.id);
    const unknownUser = '00000000-0000-4000-8000-000000000000';
    expect((await api.delete(`/users/${unknownUser}/factors`)).status).toBe(404);
    expect((await api.delete(`/users/${unknownUser}/factors/${othersFactor.id}`)).status).toBe(404);
    expect((await api.delete(`/users/not-a-uuid/factors`)).status).toBe(404);
    expect((await api.delete(`/users/${user.id}/factors/not-a-factor`)).status).toBe(404);
    expect((await api.delete(`/users/${user.id}/factors/${othersFactor.id}`)).status).toBe(404);
    expect(await factorRows(other.id)).toEqual([othersFactor]);
    expect(await factorRows(user.id)).toHaveLength(1);
    expect((await api.get(`/audit?resource_type=user&resource_id=${unknownUser}`)).body.items).toEqual([]);

    // A pending enrolment (no first code yet) is not shown as a factor; a reset removes it too.
    await server.node.services.mfaFactors.addPending(user.id, 'JBSWY3DPEHPK3PXP', 'Authenticator app');
    expect((await api.get(`/users/${user.id}`)).body.factors).toHaveLength(1);

    expect((await api.delete(`/users/${user.id}/factors`)).status).toBe(204);
    const [entry] = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items as { action: string; actor: string; before: { factors: unknown[] }; after: unknown }[];
    expect(entry).toMatchObject({ action: 'reset_factors', actor: 'ops-console', after: { factors: [] } });
    expect(entry!.before.factors).toEqual([
      expect.objectContaining({ kind: 'totp', label: 'Authenticator app', confirmed_at: expect.any(String) }),
      expect.objectContaining({ kind: 'totp', confirmed_at: null }),
    ]);
    expect(await factorRows(user.id)).toEqual([]);
    expect(JSON.stringify(entry)).not.toContain(secret);
    expect(JSON.stringify(entry)).not.toContain('JBSWY3DPEHPK3PXP');
    expect(JSON.stringify(entry)).not.toMatch(/sealed|secret/);
    expect(await factorRows(other.id)).toEqual([othersFactor]);
  });

  it('resets every factor of a user at once, and the OpenAPI document describes the routes', async () => {
    const user = await addUser(server.node, { email: 'pia@example.test', password: 'pia-password-12' });
    await enrol('pia@example.test', 'pia-password-12');
    expect((await api.delete(`/users/${user.id}/factors`)).status).toBe(204);
    expect(await factorRows(user.id)).toEqual([]);
    expect(await database.db('mfa_recovery_codes').where({ account_id: user.id })).toEqual([]);
    const paths = (await api.get('/openapi.json')).body.paths;
    expect(paths['/users/{id}/factors/{factor_id}'].delete).toBeDefined();
    expect(paths['/users/{id}/factors'].delete).toBeDefined();
  });
});
