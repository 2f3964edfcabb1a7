/**
 * Passkeys (WebAuthn) over HTTP with a software authenticator that signs real attestation and
 * assertion objects (test/support/webauthn-authenticator.ts): registration from /account, the
 * passkey as the second factor, passwordless sign-in from the login page, the ID token's
 * `amr`/`acr`, and the answers that must be refused with nothing changed — a replayed challenge,
 * another origin, another RP ID, a regressing counter, a challenge from another interaction or
 * another browser — plus throttling and the admin API's view and reset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type AuthorizationRequest, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { captureLogs, LEVEL, type CapturedLogs } from '../support/log-lines.ts';
import type { TestServer } from '../support/server.ts';
import { TestAuthenticator } from '../support/webauthn-authenticator.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let logs: CapturedLogs;

beforeAll(async () => {
  database = await createTestDatabase();
  logs = captureLogs();
  server = await startAdminNode(database.db, {}, { logger: logs.logger });
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The WebAuthn options a ceremony page carries in `data-options`. */
function optionsOn(page: PageResponse) {
  const raw = /data-options="([^"]*)"/.exec(page.body)?.[1];
  if (!raw) throw new Error(`no data-options on ${page.url} (status ${page.status}):\n${page.body.slice(0, 1500)}`);
  return JSON.parse(unescapeHtml(raw));
}

/** The CSP of a ceremony page: a nonce for this response, nothing looser. */
function expectNonceCsp(page: PageResponse) {
  const csp = page.headers.get('content-security-policy') ?? '';
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  expect(nonce, csp).toBeTruthy();
  expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  expect(page.body).toContain(`<script src="/webauthn/simplewebauthn-browser.js" nonce="${nonce}"></script>`);
  return nonce!;
}

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

/** Signs in to /account with a password; returns the browser on the account page. */
async function accountPage(email: string, pass: string, browser = new HttpSession()) {
  const start = await browser.follow(`${server.url}/account`);
  const page = await password(browser, start, email, pass);
  expect(page.url.pathname, page.body.slice(0, 800)).toBe('/account');
  return { browser, page };
}

/** Opens the "add a passkey" page from a signed-in account page. */
async function passkeyCeremony(browser: HttpSession, page: PageResponse) {
  expect(page.body).toContain('data-enrol="webauthn"');
  const start = readForm(page, /\/account\/webauthn$/);
  const ceremony = await browser.submit(start.action, start.fields);
  expect(ceremony.status).toBe(200);
  return ceremony;
}

/** Posts a registration answer on the "add a passkey" page. */
function confirmPasskey(browser: HttpSession, ceremony: PageResponse, answer: unknown, label = 'Test key') {
  const form = readForm(ceremony, /\/account\/webauthn\/confirm$/);
  return browser.submit(form.action, { ...form.fields, credential: JSON.stringify(answer), label });
}

/** Registers a passkey of `authenticator` for the account from /account. */
async function registerPasskey(email: string, pass: string, authenticator: TestAuthenticator) {
  const { browser, page } = await accountPage(email, pass);
  const ceremony = await passkeyCeremony(browser, page);
  const answer = authenticator.create(optionsOn(ceremony));
  const done = await confirmPasskey(browser, ceremony, answer);
  expect(done.status, done.body.slice(0, 800)).toBe(200);
  return { browser, ceremony, answer, done };
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

/** A login that signed in with the password and stands at the second-factor step. */
async function atSecondFactor(app: TestApp, email: string, pass: string) {
  const login = await begin(app);
  const asked = await password(login.browser, login.page, email, pass, app.redirectUri);
  expect(asked.status, asked.body.slice(0, 800)).toBe(200);
  return { ...login, asked };
}

/** Posts a passkey answer on the second-factor step's page. */
function submitAssertion(app: TestApp, browser: HttpSession, page: PageResponse, answer: unknown) {
  const form = readForm(page, /\/mfa$/, { credential: '' });
  return browser.submit(form.action, { ...form.fields, credential: JSON.stringify(answer) }, app.redirectUri);
}

/** Opens the passwordless ceremony from the login page. */
async function passwordlessCeremony(browser: HttpSession, page: PageResponse) {
  expect(page.body).toContain('data-passkey-sign-in');
  const start = readForm(page, /\/passkey$/);
  return browser.submit(start.action, start.fields);
}

/** Posts a passwordless answer. */
function submitPasswordless(app: TestApp, browser: HttpSession, ceremony: PageResponse, answer: unknown) {
  const form = readForm(ceremony, /\/passkey\/verify$/);
  return browser.submit(form.action, { ...form.fields, credential: JSON.stringify(answer) }, app.redirectUri);
}

/** The reason of the last passkey refusal logged (at warn, as bad input is). */
function lastRefusalLine(): Record<string, unknown> | undefined {
  const line = logs.lines.filter((l) => typeof l.msg === 'string' && /^passkey .*refused$/.test(l.msg)).at(-1);
  expect(line?.level).toBe(LEVEL.warn);
  return line;
}

const lastRefusal = () => lastRefusalLine()?.reason;

const factorRows = (accountId: string) => database.db('mfa_factors').where({ account_id: accountId }).orderBy('created_at').select();
const challengeCount = async () => Number((await database.db('webauthn_challenges').count<{ count: string }[]>('* as count'))[0]!.count);

describe('registering a passkey from /account', () => {
  it('creates the passkey from a real attestation, lists it with the factors, shows recovery codes once and audits it', async () => {
    const user = await addUser(server.node, { email: 'pia@example.test', password: 'pia-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    const { browser, ceremony, answer, done } = await registerPasskey('pia@example.test', 'pia-password-12', authenticator);
    expectNonceCsp(ceremony);
    const options = optionsOn(ceremony);
    expect(options.rp.id).toBe(new URL(server.url).hostname);
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required' });
    expect(Buffer.from(options.user.id, 'base64url').toString('utf8')).toBe(user.id);
    expect(done.body).toContain('data-recovery-codes');

    const [row] = await factorRows(user.id);
    expect(row).toMatchObject({ kind: 'webauthn', label: 'Test key', credential_id: answer.id, sealed_secret: null, backed_up: false, device_type: 'singleDevice' });
    expect(Number(row.sign_count)).toBe(0);
    expect(JSON.parse(row.transports)).toEqual(['internal']);
    expect(row.public_key).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(row.confirmed_at).not.toBeNull();
    expect(await database.db('webauthn_challenges').where({ account_id: user.id, purpose: 'register' }).select()).toEqual([]);

    const again = await browser.follow(`${server.url}/account`);
    expect(again.body).toMatch(/data-factor="webauthn" data-factor-id="[0-9a-f-]{36}"/);
    expect(again.body).toContain('Test key');
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items.map((a: { action: string; after: unknown }) => [a.action, a.after]);
    expect(audit).toContainEqual(['enrol_factor', { factor_id: row.id, kind: 'webauthn' }]);

    // The account page itself stays script-free.
    expect(again.headers.get('content-security-policy')).toContain("script-src 'none'");
  });

  it('refuses the same registration answer sent again (its challenge is used up), with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'quinn@example.test', password: 'quinn-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    const { browser, ceremony, answer } = await registerPasskey('quinn@example.test', 'quinn-password-1', authenticator);
    const before = await factorRows(user.id);
    const replayed = await confirmPasskey(browser, ceremony, answer);
    expect(replayed.status).toBe(400);
    expect(replayed.body).toContain('Nothing changed');
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(user.id)).toEqual(before);
  });

  it('refuses a registration from another origin, for another RP ID, or answering another browser\'s challenge, with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'rory@example.test', password: 'rory-password-1' });
    const other = await addUser(server.node, { email: 'rhea@example.test', password: 'rhea-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    const { browser, page } = await accountPage('rory@example.test', 'rory-password-1');

    const first = await passkeyCeremony(browser, page);
    expect((await confirmPasskey(browser, first, authenticator.create(optionsOn(first), { origin: 'http://127.0.0.2:1' }))).status).toBe(400);
    expect(lastRefusal()).toBe('invalid');
    const second = await passkeyCeremony(browser, page);
    expect((await confirmPasskey(browser, second, authenticator.create(optionsOn(second), { rpId: 'evil.example.test' }))).status).toBe(400);
    expect(lastRefusal()).toBe('invalid');

    // Rhea's browser answers the challenge issued to Rory's account page session.
    const third = await passkeyCeremony(browser, page);
    const stolen = authenticator.create(optionsOn(third));
    const elsewhere = await accountPage('rhea@example.test', 'rhea-password-1');
    const theirs = await passkeyCeremony(elsewhere.browser, elsewhere.page);
    expect((await confirmPasskey(elsewhere.browser, theirs, stolen)).status).toBe(400);
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(other.id)).toEqual([]);
    expect(await factorRows(user.id)).toEqual([]);
    // Rory's own challenge was not used up by Rhea's attempt.
    expect((await confirmPasskey(browser, third, stolen)).status).toBe(200);
    expect(await factorRows(user.id)).toHaveLength(1);
  });

  it('removes a passkey through the factor list, audited, after which it no longer signs in', async () => {
    const user = await addUser(server.node, { email: 'remy@example.test', password: 'remy-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    const { browser } = await registerPasskey('remy@example.test', 'remy-password-1', authenticator);
    const [row] = await factorRows(user.id);
    const page = await browser.follow(`${server.url}/account`);
    const remove = readForm(page, /\/account\/factors\/remove$/, { factor_id: row.id });
    const removed = await browser.submit(remove.action, remove.fields);
    expect(removed.status).toBe(200);
    expect(removed.body).toContain('The passkey &quot;Test key&quot; was removed.');
    expect(removed.body).not.toContain('data-factor="webauthn"');
    expect(await factorRows(user.id)).toEqual([]);
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items.map((a: { action: string; before: unknown }) => [a.action, a.before]);
    expect(audit).toContainEqual(['remove_factor', { factor_id: row.id, kind: 'webauthn', label: row.label }]);
    const app = await registerApp(server.node, server.url, 'passkey-removed-app');
    const login = await begin(app);
    const ceremony = await passwordlessCeremony(login.browser, login.page);
    expect((await submitPasswordless(app, login.browser, ceremony, authenticator.get(optionsOn(ceremony)))).status).toBe(401);
    expect(lastRefusal()).toBe('unknown_credential');
  });

  it('refuses a signed-out or cross-site registration post (no session, no CSRF token)', async () => {
    const anonymous = new HttpSession();
    const res = await anonymous.submit(`${server.url}/account/webauthn/confirm`, { csrf: 'x', credential: '{}' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await database.db('mfa_factors').where({ kind: 'webauthn', label: 'x' }).select()).toEqual([]);
  });
});

describe('a passkey as the second factor', () => {
  it('offers a passkey-only account its passkey (not a code field), signs in, and the ID token says pwd hwk mfa', async () => {
    const user = await addUser(server.node, { email: 'sam@example.test', password: 'sam-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('sam@example.test', 'sam-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passkey-mfa-app');
    const { browser, request, asked } = await atSecondFactor(app, 'sam@example.test', 'sam-password-12');
    expect(asked.body).toContain('data-factor-option="webauthn"');
    expect(asked.body).not.toContain('Code from your authenticator app');
    expectNonceCsp(asked);
    const options = optionsOn(asked);
    expect(options.allowCredentials.map((c: { id: string }) => c.id)).toEqual([authenticator.credentials[0]!.id.toString('base64url')]);
    const claims = await redeem(app, request, await submitAssertion(app, browser, asked, authenticator.get(options)));
    expect(claims.sub).toBe(user.id);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    expect(claims.acr).toBe('mfa');
    const [row] = await factorRows(user.id);
    expect(Number(row.sign_count)).toBe(1);
    expect(row.last_used_at).not.toBeNull();
  });

  it('gives a synced (backed-up) passkey swk', async () => {
    await addUser(server.node, { email: 'sia@example.test', password: 'sia-password-12' });
    const authenticator = new TestAuthenticator(server.url, { synced: true, counterless: true });
    await registerPasskey('sia@example.test', 'sia-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passkey-swk-app');
    const { browser, request, asked } = await atSecondFactor(app, 'sia@example.test', 'sia-password-12');
    const claims = await redeem(app, request, await submitAssertion(app, browser, asked, authenticator.get(optionsOn(asked))));
    expect(claims.amr).toEqual(['pwd', 'swk', 'mfa']);
  });

  it('offers a TOTP-only account only its code field, under script-src none', async () => {
    const user = await addUser(server.node, { email: 'tom@example.test', password: 'tom-password-12' });
    const pending = await server.node.services.mfaFactors.addPending(user.id, 'JBSWY3DPEHPK3PXP', 'Authenticator app');
    await server.node.services.mfaFactors.useTimeStep(pending.id, 1);
    const app = await registerApp(server.node, server.url, 'totp-only-app');
    const { asked } = await atSecondFactor(app, 'tom@example.test', 'tom-password-12');
    expect(asked.body).toContain('Code from your authenticator app');
    expect(asked.body).not.toContain('data-factor-option="webauthn"');
    expect(asked.body).not.toContain('<script');
    expect(asked.headers.get('content-security-policy')).toContain("script-src 'none'");
  });

  it('offers an account with both kinds its passkey and its code field', async () => {
    const user = await addUser(server.node, { email: 'tess@example.test', password: 'tess-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('tess@example.test', 'tess-password-1', authenticator);
    const pending = await server.node.services.mfaFactors.addPending(user.id, 'JBSWY3DPEHPK3PXP', 'Authenticator app');
    await server.node.services.mfaFactors.useTimeStep(pending.id, 1);
    const app = await registerApp(server.node, server.url, 'both-kinds-app');
    const { browser, request, asked } = await atSecondFactor(app, 'tess@example.test', 'tess-password-1');
    expect(asked.body).toContain('data-factor-option="webauthn"');
    expect(asked.body).toContain('Code from your authenticator app');
    const claims = await redeem(app, request, await submitAssertion(app, browser, asked, authenticator.get(optionsOn(asked))));
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });

  it('refuses a replayed assertion (its challenge was used), another origin, another RP ID and a regressing counter, each with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'uri@example.test', password: 'uri-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('uri@example.test', 'uri-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passkey-refusals-app');
    const first = await atSecondFactor(app, 'uri@example.test', 'uri-password-12');
    const used = authenticator.get(optionsOn(first.asked));
    await redeem(app, first.request, await submitAssertion(app, first.browser, first.asked, used));
    const after = await factorRows(user.id);
    expect(Number(after[0].sign_count)).toBe(1);

    const second = await atSecondFactor(app, 'uri@example.test', 'uri-password-12');
    const replayed = await submitAssertion(app, second.browser, second.asked, used);
    expect(replayed.status).toBe(401);
    expect(replayed.body).toContain('already used');
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(user.id)).toEqual(after);

    const wrongOrigin = await submitAssertion(app, second.browser, replayed, authenticator.get(optionsOn(replayed), { origin: 'http://127.0.0.2:1' }));
    expect(wrongOrigin.status).toBe(401);
    expect(lastRefusalLine()).toMatchObject({ reason: 'invalid', detail: expect.stringContaining('origin') });
    const wrongRp = await submitAssertion(app, second.browser, wrongOrigin, authenticator.get(optionsOn(wrongOrigin), { rpId: 'evil.example.test' }));
    expect(wrongRp.status).toBe(401);
    expect(lastRefusalLine()).toMatchObject({ reason: 'invalid', detail: expect.stringMatching(/RP ID/i) });
    expect(await factorRows(user.id)).toEqual(after);

    // The authenticator's counter moves on to 5; then an answer saying 3 (a cloned key) is refused.
    await server.node.db('mfa_factors').where({ id: after[0].id }).update({ sign_count: 5 });
    const regressed = await submitAssertion(app, second.browser, wrongRp, authenticator.get(optionsOn(wrongRp), { counter: 3 }));
    expect(regressed.status).toBe(401);
    expect(lastRefusal()).toBe('counter');
    expect(Number((await factorRows(user.id))[0].sign_count)).toBe(5);
    // None of them finished the login; a right answer still does.
    const claims = await redeem(app, second.request, await submitAssertion(app, second.browser, regressed, authenticator.get(optionsOn(regressed), { counter: 6 })));
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    expect(Number((await factorRows(user.id))[0].sign_count)).toBe(6);
  });

  it('refuses an answer to another interaction\'s challenge, and that challenge still works where it was issued', async () => {
    const user = await addUser(server.node, { email: 'val@example.test', password: 'val-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('val@example.test', 'val-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passkey-binding-app');
    const mine = await atSecondFactor(app, 'val@example.test', 'val-password-12');
    const other = await atSecondFactor(app, 'val@example.test', 'val-password-12');
    const answer = authenticator.get(optionsOn(mine.asked));
    const before = await factorRows(user.id);
    const transplanted = await submitAssertion(app, other.browser, other.asked, answer);
    expect(transplanted.status).toBe(401);
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(user.id)).toEqual(before);
    const claims = await redeem(app, mine.request, await submitAssertion(app, mine.browser, mine.asked, answer));
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });

  it('throttles failed assertions like wrong codes: after five, even a right one waits', async () => {
    await addUser(server.node, { email: 'wyn@example.test', password: 'wyn-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('wyn@example.test', 'wyn-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passkey-throttle-app');
    const { browser, asked } = await atSecondFactor(app, 'wyn@example.test', 'wyn-password-12');
    let current = asked;
    for (let i = 0; i < 5; i++) {
      current = await submitAssertion(app, browser, current, authenticator.get(optionsOn(current), { origin: 'http://127.0.0.2:1' }));
      expect(current.status).toBe(401);
    }
    const held = await submitAssertion(app, browser, current, authenticator.get(optionsOn(current)));
    expect(held.status).toBe(429);
    expect(held.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(held.body).toContain('Too many failed attempts');
  });
});

describe('enrolling during a login under mfa required', () => {
  it('lets an account without a factor add a passkey instead of an app; the login then finishes with pwd hwk mfa', async () => {
    const user = await addUser(server.node, { email: 'ines@example.test', password: 'ines-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    const app = await registerApp(server.node, server.url, 'passkey-required-app', { mfa: 'required' });
    const { browser, request, asked } = await atSecondFactor(app, 'ines@example.test', 'ines-password-1');
    expect(asked.body).toContain('data-totp-secret');
    expect(asked.body).toContain('data-enrol-confirm="webauthn"');
    expectNonceCsp(asked);
    const answer = authenticator.create(optionsOn(asked));
    const form = readForm(asked, /\/mfa$/, { passkey_registration: '' });
    const codes = await browser.submit(form.action, { ...form.fields, passkey_registration: JSON.stringify(answer), label: 'Phone' }, app.redirectUri);
    expect(codes.status, codes.body.slice(0, 800)).toBe(200);
    expect(codes.body).toContain('data-recovery-codes');
    const rows = await factorRows(user.id);
    expect(rows.map((r) => [r.kind, r.label, r.confirmed_at !== null])).toEqual([['webauthn', 'Phone', true]]);
    const continueUrl = unescapeHtml(/href="([^"]+)" data-continue/.exec(codes.body)![1]!);
    const claims = await redeem(app, request, await browser.follow(new URL(continueUrl, server.url), {}, app.redirectUri));
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    expect(claims.acr).toBe('mfa');

    // The next login under required asks for the passkey, no longer for an enrolment.
    const again = await atSecondFactor(app, 'ines@example.test', 'ines-password-1');
    expect(again.asked.body).toContain('data-factor-option="webauthn"');
    expect(again.asked.body).not.toContain('data-totp-secret');
  });

  it('refuses a registration answer made for another login, with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'jon@example.test', password: 'jon-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    const app = await registerApp(server.node, server.url, 'passkey-required-binding-app', { mfa: 'required' });
    const mine = await atSecondFactor(app, 'jon@example.test', 'jon-password-12');
    const other = await atSecondFactor(app, 'jon@example.test', 'jon-password-12');
    const answer = authenticator.create(optionsOn(mine.asked));
    const form = readForm(other.asked, /\/mfa$/, { passkey_registration: '' });
    const refused = await other.browser.submit(form.action, { ...form.fields, passkey_registration: JSON.stringify(answer) }, app.redirectUri);
    expect(refused.status).toBe(400);
    expect(lastRefusal()).toBe('challenge');
    expect((await factorRows(user.id)).filter((r) => r.kind === 'webauthn')).toEqual([]);
  });
});

describe('passwordless sign-in with a passkey', () => {
  it('signs in from the login page with a discoverable credential and user verification: amr hwk mfa, acr mfa, no password', async () => {
    const user = await addUser(server.node, { email: 'xavi@example.test', password: 'xavi-password-1' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('xavi@example.test', 'xavi-password-1', authenticator);
    const app = await registerApp(server.node, server.url, 'passwordless-app', { claims_in_id_token: true });
    const { browser, request, page } = await begin(app);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'none'");
    const ceremony = await passwordlessCeremony(browser, page);
    expectNonceCsp(ceremony);
    expect(ceremony.body).toContain('data-autostart');
    const options = optionsOn(ceremony);
    expect(options.userVerification).toBe('required');
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.rpId).toBe(new URL(server.url).hostname);
    const claims = await redeem(app, request, await submitPasswordless(app, browser, ceremony, authenticator.get(options)));
    expect(claims).toMatchObject({ sub: user.id, idp: 'local', amr: ['hwk', 'mfa'], acr: 'mfa', email: 'xavi@example.test' });
  });

  it('refuses an answer without user verification, a replayed one and one for another interaction, with nothing changed', async () => {
    const user = await addUser(server.node, { email: 'yael@example.test', password: 'yael-password-1' });
    const authenticator = new TestAuthenticator(server.url, { synced: true });
    await registerPasskey('yael@example.test', 'yael-password-1', authenticator);
    const app = await registerApp(server.node, server.url, 'passwordless-refusals-app');

    const first = await begin(app);
    const ceremony = await passwordlessCeremony(first.browser, first.page);
    const before = await factorRows(user.id);
    const unverified = await submitPasswordless(app, first.browser, ceremony, authenticator.get(optionsOn(ceremony), { userVerified: false, counter: 1 }));
    expect(unverified.status).toBe(401);
    expect(lastRefusalLine()).toMatchObject({ reason: 'invalid', detail: expect.stringMatching(/verif/i) });
    expect(unverified.body).not.toContain('data-autostart');
    expect(await factorRows(user.id)).toEqual(before);

    const other = await begin(app);
    const otherCeremony = await passwordlessCeremony(other.browser, other.page);
    const answer = authenticator.get(optionsOn(unverified), { counter: 2 });
    expect((await submitPasswordless(app, other.browser, otherCeremony, answer)).status).toBe(401);
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(user.id)).toEqual(before);

    const claims = await redeem(app, first.request, await submitPasswordless(app, first.browser, unverified, answer));
    expect(claims.amr).toEqual(['swk', 'mfa']);
    const used = await factorRows(user.id);
    const again = await submitPasswordless(app, other.browser, otherCeremony, answer);
    expect(again.status).toBe(401);
    expect(lastRefusal()).toBe('challenge');
    expect(await factorRows(user.id)).toEqual(used);
  });

  it('refuses a passkey the server does not know, and one whose user handle names another account', async () => {
    const user = await addUser(server.node, { email: 'zed@example.test', password: 'zed-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    await registerPasskey('zed@example.test', 'zed-password-12', authenticator);
    const app = await registerApp(server.node, server.url, 'passwordless-unknown-app');
    const stranger = new TestAuthenticator(server.url);
    stranger.create({ challenge: 'AAAAAAAAAAAAAAAAAAAAAA', rp: { id: new URL(server.url).hostname, name: 'x' }, user: { id: 'eA', name: 'x' } });
    const { browser, page } = await begin(app);
    const ceremony = await passwordlessCeremony(browser, page);
    expect((await submitPasswordless(app, browser, ceremony, stranger.get(optionsOn(ceremony)))).status).toBe(401);
    expect(lastRefusal()).toBe('unknown_credential');
    authenticator.credentials[0]!.userHandle = Buffer.from('00000000-0000-0000-0000-000000000000').toString('base64url');
    const retry = await passkeyPageAgain(browser, page);
    expect((await submitPasswordless(app, browser, retry, authenticator.get(optionsOn(retry)))).status).toBe(401);
    expect(lastRefusal()).toBe('user_handle');
    expect(Number((await factorRows(user.id))[0].sign_count)).toBe(0);
  });

  it('is not offered to a client without local sign-in', async () => {
    const app = await registerApp(server.node, server.url, 'passwordless-no-local-app', { local_login: false });
    const { browser, page } = await begin(app);
    expect(page.body).not.toContain('data-passkey-sign-in');
    const uid = /\/interaction\/([^/"]+)\//.exec(page.body)?.[1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
    const refused = await browser.submit(`${server.url}/interaction/${uid}/passkey`, { csrf: csrf ?? '' });
    expect(refused.status).toBe(400);
  });
});

/** The passwordless ceremony again from the login page (a new challenge). */
function passkeyPageAgain(browser: HttpSession, page: PageResponse) {
  return passwordlessCeremony(browser, page);
}

describe('the admin API', () => {
  it('lists a user\'s passkeys without key material and resets them, audited', async () => {
    const user = await addUser(server.node, { email: 'ada@example.test', password: 'ada-password-12' });
    const authenticator = new TestAuthenticator(server.url);
    const { answer } = await registerPasskey('ada@example.test', 'ada-password-12', authenticator);
    const shown = await api.get(`/users/${user.id}`);
    expect(shown.status).toBe(200);
    const [factor] = shown.body.factors;
    expect(factor).toMatchObject({ kind: 'webauthn', label: 'Test key', transports: ['internal'], backed_up: false, device_type: 'singleDevice' });
    const row = (await factorRows(user.id))[0];
    expect(shown.text).not.toContain(row.public_key);
    expect(shown.text).not.toContain(answer.id);
    const schema = (await api.get('/openapi.json')).body.components.schemas.Factor.properties;
    expect(schema.kind.enum).toEqual(['totp', 'webauthn']);

    expect((await api.delete(`/users/${user.id}/factors/${factor.id}`)).status).toBe(204);
    expect(await factorRows(user.id)).toEqual([]);
    const audit = (await api.get(`/audit?resource_type=user&resource_id=${user.id}`)).body.items.map((a: { action: string }) => a.action);
    expect(audit).toContain('reset_factor');
    // The removed passkey no longer signs in.
    const app = await registerApp(server.node, server.url, 'passwordless-reset-app');
    const { browser, page } = await begin(app);
    const ceremony = await passwordlessCeremony(browser, page);
    expect((await submitPasswordless(app, browser, ceremony, authenticator.get(optionsOn(ceremony)))).status).toBe(401);
  });

  it('purges expired challenges', async () => {
    await database.db('webauthn_challenges').update({ expires_at: new Date(Date.now() - 1000) });
    const { purge } = await import('../../src/app.ts');
    const counts = await purge(server.node.services);
    expect(counts.webauthn_challenges).toBeGreaterThan(0);
    expect(await challengeCount()).toBe(0);
  });
});
