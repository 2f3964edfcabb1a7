/**
 * `acr_values` and `max_age` at the MFA step, with openid-client as the application: `acr_values=mfa`
 * asks for the second factor whatever the client's `mfa` (`off`, `if_enrolled`), walking an
 * account without a factor through enrolment; `max_age` older than the session's `auth_time` makes
 * the person sign in again, with the second factor again when the policy asks for it, while a
 * younger session passes silently; and the ID token's `acr`, `amr` and `auth_time` say what was
 * done, also when a signed-in browser is taken through a step (terms) without signing in again.
 */
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type AuthorizationRequest, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import type { TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const totpCode = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });
const shownSecret = (page: PageResponse) => /<code data-totp-secret>([A-Z2-7]+)<\/code>/.exec(page.body)?.[1];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Posts the password on the login page (after the email step when the page asks for it). */
async function submitPassword(browser: HttpSession, page: PageResponse, email: string, password: string, stopAt: string) {
  let login = page;
  if (!/action="[^"]*\/login"/.test(login.body)) {
    const discover = readForm(login, /\/discover$/);
    login = await browser.submit(discover.action, { ...discover.fields, email });
  }
  const form = readForm(login, /\/login$/);
  return browser.submit(form.action, { ...form.fields, email, password }, stopAt);
}

async function submitCode(app: TestApp, browser: HttpSession, page: PageResponse, code: string) {
  const form = readForm(page, /\/mfa$/);
  return browser.submit(form.action, { ...form.fields, code }, app.redirectUri);
}

async function redeem(app: TestApp, request: AuthorizationRequest, page: PageResponse) {
  expect(page.status, page.body.slice(0, 1200)).toBe(0);
  return (await app.redeem(request, page.url)).claims()!;
}

/** A user with an authenticator app enrolled (from /account); returns its secret. */
async function enrolledUser(email: string, password: string) {
  await addUser(server.node, { email, password });
  const browser = new HttpSession();
  const account = await submitPassword(browser, await browser.follow(`${server.url}/account`), email, password, `${server.url}/never`);
  const start = readForm(account, /\/account\/totp$/);
  const enrolment = await browser.submit(start.action, start.fields);
  const secret = shownSecret(enrolment)!;
  const confirm = readForm(enrolment, /\/account\/totp\/confirm$/);
  // The enrolment uses the previous time step, so the tests' later codes (this step, the next) are each accepted once.
  // That code is the oldest the ±1 step window takes: close to the end of a step it would be too old by the
  // time the server checks it, so it is made once the next step has begun.
  const intoStepMs = Date.now() % 30_000;
  if (intoStepMs > 25_000) await sleep(30_000 - intoStepMs + 100);
  expect((await browser.submit(confirm.action, { ...confirm.fields, code: await totpCode(secret, -1) })).status).toBe(200);
  return secret;
}

describe('acr_values=mfa', () => {
  it('asks an enrolled account for its code at a client with mfa off, and the ID token says acr mfa', async () => {
    const secret = await enrolledUser('abe@example.test', 'abe-password-123');
    const app = await registerApp(server.node, server.url, 'acr-off-app', { mfa: 'off' });
    const browser = new HttpSession();
    const request = await app.authorizationUrl({ acr_values: 'mfa' });
    const asked = await submitPassword(browser, await browser.follow(request.url, {}, app.redirectUri), 'abe@example.test', 'abe-password-123', app.redirectUri);
    expect(asked.status).toBe(200);
    expect(asked.body).toContain('name="code"');
    const claims = await redeem(app, request, await submitCode(app, browser, asked, await totpCode(secret, 1)));
    expect(claims).toMatchObject({ acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });

    // The same client without acr_values lets the password alone through.
    const plain = new HttpSession();
    const next = await app.authorizationUrl();
    const claimsWithout = await redeem(app, next, await submitPassword(plain, await plain.follow(next.url, {}, app.redirectUri), 'abe@example.test', 'abe-password-123', app.redirectUri));
    expect(claimsWithout).toMatchObject({ acr: 'sfa', amr: ['pwd'] });
  });

  it('walks an account without a factor through enrolment at a client with mfa off or if_enrolled', async () => {
    for (const mfa of ['off', 'if_enrolled']) {
      const email = `bea-${mfa.replace('_', '-')}@example.test`;
      const user = await addUser(server.node, { email, password: 'bea-password-123' });
      const app = await registerApp(server.node, server.url, `acr-enrol-${mfa.replace('_', '-')}`, { mfa });
      const browser = new HttpSession();
      const request = await app.authorizationUrl({ acr_values: 'mfa' });
      const enrolment = await submitPassword(browser, await browser.follow(request.url, {}, app.redirectUri), email, 'bea-password-123', app.redirectUri);
      const secret = shownSecret(enrolment);
      expect(secret, `mfa ${mfa}: ${enrolment.body.slice(0, 600)}`).toBeDefined();
      const codes = await submitCode(app, browser, enrolment, await totpCode(secret!));
      const continueUrl = /href="([^"]+)" data-continue/.exec(codes.body)![1]!.replace(/&amp;/g, '&');
      const claims = await redeem(app, request, await browser.follow(new URL(continueUrl, server.url), {}, app.redirectUri));
      expect(claims).toMatchObject({ sub: user.id, acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });
    }
  });

  it('asks a browser signed in with a password alone for the code, without the password again', async () => {
    const secret = await enrolledUser('cal@example.test', 'cal-password-123');
    const app = await registerApp(server.node, server.url, 'acr-stepup-app', { mfa: 'off' });
    const browser = new HttpSession();
    const first = await app.authorizationUrl();
    const firstClaims = await redeem(app, first, await submitPassword(browser, await browser.follow(first.url, {}, app.redirectUri), 'cal@example.test', 'cal-password-123', app.redirectUri));
    expect(firstClaims.acr).toBe('sfa');
    const stepUp = await app.authorizationUrl({ acr_values: 'mfa' });
    const asked = await browser.follow(stepUp.url, {}, app.redirectUri);
    expect(asked.body).toContain('name="code"');
    expect(asked.body).not.toContain('name="password"');
    const claims = await redeem(app, stepUp, await submitCode(app, browser, asked, await totpCode(secret, 1)));
    expect(claims).toMatchObject({ sub: firstClaims.sub, acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });
  });
});

describe('max_age', () => {
  it('lets a younger session through silently and makes an older one sign in again, second factor included', async () => {
    const secret = await enrolledUser('dee@example.test', 'dee-password-123');
    const app = await registerApp(server.node, server.url, 'max-age-app');
    const browser = new HttpSession();
    // (A max_age in every request puts auth_time in every ID token.)
    const first = await app.authorizationUrl({ max_age: '3600' });
    const asked = await submitPassword(browser, await browser.follow(first.url, {}, app.redirectUri), 'dee@example.test', 'dee-password-123', app.redirectUri);
    const firstClaims = await redeem(app, first, await submitCode(app, browser, asked, await totpCode(secret)));
    expect(firstClaims).toMatchObject({ acr: 'mfa', auth_time: expect.any(Number) });

    // Within max_age: no page, the same auth_time, acr and amr.
    const young = await app.authorizationUrl({ max_age: '3600' });
    const youngClaims = await redeem(app, young, await browser.follow(young.url, {}, app.redirectUri));
    expect(youngClaims).toMatchObject({ auth_time: firstClaims.auth_time, acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });

    // Older than max_age: the password page again (not a silent code), then the second factor again.
    await sleep(2100);
    const old = await app.authorizationUrl({ max_age: '1' });
    const page = await browser.follow(old.url, {}, app.redirectUri);
    expect(page.status, 'an old session must not get a code silently').toBe(200);
    const again = await submitPassword(browser, page, 'dee@example.test', 'dee-password-123', app.redirectUri);
    expect(again.status).toBe(200);
    expect(again.body).toContain('name="code"');
    const oldClaims = await redeem(app, old, await submitCode(app, browser, again, await totpCode(secret, 1)));
    expect(oldClaims).toMatchObject({ sub: firstClaims.sub, acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });
    expect(oldClaims.auth_time!).toBeGreaterThan(firstClaims.auth_time!);
  });

  it('asks for the password alone again at a client with mfa off, and acr says sfa', async () => {
    await enrolledUser('eli@example.test', 'eli-password-123');
    const app = await registerApp(server.node, server.url, 'max-age-off-app', { mfa: 'off' });
    const browser = new HttpSession();
    const first = await app.authorizationUrl({ max_age: '3600' });
    const firstClaims = await redeem(app, first, await submitPassword(browser, await browser.follow(first.url, {}, app.redirectUri), 'eli@example.test', 'eli-password-123', app.redirectUri));
    await sleep(2100);
    const old = await app.authorizationUrl({ max_age: '1' });
    const page = await browser.follow(old.url, {}, app.redirectUri);
    expect(page.status).toBe(200);
    const claims = await redeem(app, old, await submitPassword(browser, page, 'eli@example.test', 'eli-password-123', app.redirectUri));
    expect(claims).toMatchObject({ acr: 'sfa', amr: ['pwd'] });
    expect(claims.auth_time!).toBeGreaterThan(firstClaims.auth_time!);
  });
});

describe('auth_time of a session taken through a step', () => {
  it('keeps the time the person signed in when a signed-in browser only accepts terms', async () => {
    await addUser(server.node, { email: 'fay@example.test', password: 'fay-password-123' });
    const plain = await registerApp(server.node, server.url, 'auth-time-plain-app');
    const withTerms = await registerApp(server.node, server.url, 'auth-time-terms-app', { terms_uri: 'https://app.example.test/terms', terms_version: '3' });
    const browser = new HttpSession();
    const first = await plain.authorizationUrl({ max_age: '3600' });
    const firstClaims = await redeem(plain, first, await submitPassword(browser, await browser.follow(first.url, {}, plain.redirectUri), 'fay@example.test', 'fay-password-123', plain.redirectUri));
    await sleep(1100);
    const request = await withTerms.authorizationUrl({ max_age: '3600' });
    const terms = await browser.follow(request.url, {}, withTerms.redirectUri);
    expect(terms.body).toContain('data-accept-terms');
    const form = readForm(terms, /\/terms$/);
    const claims = await redeem(withTerms, request, await browser.submit(form.action, form.fields, withTerms.redirectUri));
    expect(claims).toMatchObject({ sub: firstClaims.sub, auth_time: firstClaims.auth_time, acr: 'sfa', amr: ['pwd'] });
  });
});
