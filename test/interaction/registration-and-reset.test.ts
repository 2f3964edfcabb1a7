/**
 * Registration with email verification and password reset, with a real SMTP server in the test
 * process receiving the mails and the test following their links in a cookie-jar browser;
 * openid-client is the application. Expired and reused links, unknown addresses, a server without
 * SMTP and the send limits are checked to change nothing.
 */
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/accounts/passwords.ts';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type AuthorizationRequest, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm, type PageResponse } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkIn, startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';

const MAIL_FROM = 'Realmgate Test <login@example.test>';

let database: TestDatabase;
let smtp: SmtpSink;
let server: TestServer;
let app: TestApp;
let closedApp: TestApp;
let receiver: BackchannelReceiver;

beforeAll(async () => {
  database = await createTestDatabase();
  smtp = await startSmtpSink();
  receiver = await startBackchannelReceiver();
  server = await startTestServer(database.db, { REALMGATE_SMTP_URL: smtp.url, REALMGATE_MAIL_FROM: MAIL_FROM, REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE: '0' });
  app = await registerApp(server.node, server.url, 'open-app', { registration: true, claims_in_id_token: true, backchannel_logout_uri: receiver.url });
  closedApp = await registerApp(server.node, server.url, 'closed-app');
});

afterAll(async () => {
  await server?.close();
  await smtp?.close();
  await receiver?.close();
  await database?.close();
});

async function begin(target: TestApp, base = server, params: Record<string, string> = {}) {
  const browser = new HttpSession();
  const request = await target.authorizationUrl(params);
  const page = await browser.follow(request.url, {}, target.redirectUri);
  expect(page.status, page.body.slice(0, 600)).toBe(200);
  expect(page.url.origin).toBe(base.url);
  return { browser, request, page };
}

/** Opens the page a `[data-…]` link of `page` points to. */
async function click(browser: HttpSession, page: PageResponse, attribute: string): Promise<PageResponse> {
  const href = new RegExp(`<a href="([^"]+)"[^>]*${attribute}`).exec(page.body)?.[1];
  if (!href) throw new Error(`no [${attribute}] link on ${page.url}:\n${page.body.slice(0, 1500)}`);
  return browser.follow(new URL(href.replace(/&amp;/g, '&'), page.url), {}, app.redirectUri);
}

async function register(browser: HttpSession, login: PageResponse, fields: Record<string, string>) {
  const page = await click(browser, login, 'data-register');
  const form = readForm(page, /\/register$/);
  return browser.submit(form.action, { ...form.fields, ...fields }, app.redirectUri);
}

const count = async (table: string, where: Record<string, unknown> = {}) => Number((await database.db(table).where(where).count<{ n: string }[]>({ n: '*' }))[0]!.n);

async function redeem(target: TestApp, request: AuthorizationRequest, page: PageResponse) {
  expect(page.status, page.body.slice(0, 1200)).toBe(0);
  return target.redeem(request, page.url);
}

describe('registration', () => {
  it('offers registration only to clients that allow it, and "forgot password" on the password step', async () => {
    const open = await begin(app);
    expect(open.page.body).toContain('data-register');
    expect(open.page.body).toContain('data-forgot-password');
    const closed = await begin(closedApp);
    expect(closed.page.body).not.toContain('data-register');
    expect(closed.page.body).toContain('data-forgot-password');
    const uid = /\/interaction\/([^/]+)\/login/.exec(closed.page.body)![1]!;
    expect((await closed.browser.follow(`${server.url}/interaction/${uid}/register`)).status).toBe(400);
  });

  it('creates the account only once the mailed link is confirmed, then finishes the login', async () => {
    const { browser, request, page } = await begin(app);
    const sent = await register(browser, page, { email: 'rita@example.test', password: 'rita-password-1', name: 'Rita Reg' });
    expect(sent.status).toBe(200);
    expect(sent.body).toContain('data-mail-sent');
    expect(await count('accounts', { email: 'rita@example.test' })).toBe(0);

    const [mail] = smtp.to('rita@example.test');
    expect(mail).toBeDefined();
    expect(mail!.from).toBe('login@example.test');
    const link = linkIn(mail!, `${server.url}/interaction/`);
    expect(link.pathname).toMatch(/\/verify-email$/);
    // The token is not stored, only its keyed hash.
    expect(JSON.stringify(await database.db('email_links').select())).not.toContain(link.searchParams.get('token'));

    const confirm = await browser.follow(link);
    expect(confirm.status).toBe(200);
    // Opening the link (a mail scanner does) uses nothing up.
    expect(await count('accounts', { email: 'rita@example.test' })).toBe(0);
    const form = readForm(confirm, /\/verify-email$/);
    const claims = (await redeem(app, request, await browser.submit(form.action, form.fields, app.redirectUri))).claims()!;
    const account = (await server.node.services.accounts.findLocalByEmail('rita@example.test'))!;
    expect(claims).toMatchObject({ sub: account.account.id, email: 'rita@example.test', email_verified: true, name: 'Rita Reg', idp: 'local', amr: ['pwd'] });
    expect(await verifyPassword('rita-password-1', account.passwordHash)).toBe(true);
    expect(await count('audit_log', { resource_id: account.account.id, action: 'register' })).toBe(1);

    // The link works once: used again, in any browser, it is refused and creates nothing.
    const again = await new HttpSession().submit(form.action, form.fields);
    expect(again.status).toBe(400);
    expect(again.body).toContain('expired or was already used');
    expect(await count('accounts', { email: 'rita@example.test' })).toBe(1);
  });

  it('confirmed in another browser, creates the account and says to sign in, without signing that browser in', async () => {
    const { browser, page } = await begin(app);
    await register(browser, page, { email: 'otto@example.test', password: 'otto-password-1' });
    const link = linkIn(smtp.to('otto@example.test')[0]!, server.url);
    const phone = new HttpSession();
    const form = readForm(await phone.follow(link), /\/verify-email$/);
    const done = await phone.submit(form.action, form.fields, app.redirectUri);
    expect(done.status).toBe(200);
    expect(done.body).toContain('Your email is verified');
    expect(await count('accounts', { email: 'otto@example.test' })).toBe(1);
  });

  it('refuses an expired link, creating nothing', async () => {
    const { browser, page } = await begin(app);
    await register(browser, page, { email: 'eve@example.test', password: 'eve-password-12' });
    const link = linkIn(smtp.to('eve@example.test')[0]!, server.url);
    await database.db('email_links').where({ email: 'eve@example.test' }).update({ expires_at: new Date(Date.now() - 1000) });
    const opened = await browser.follow(link);
    expect(opened.status).toBe(400);
    expect(opened.body).toContain('expired or was already used');
    const posted = await browser.submit(new URL(link.pathname, server.url), { token: link.searchParams.get('token')! });
    expect(posted.status).toBe(400);
    expect(await count('accounts', { email: 'eve@example.test' })).toBe(0);
  });

  it('answers the same for an address that has an account, telling its owner by mail instead', async () => {
    await addUser(server.node, { email: 'olga@example.test', password: 'olga-password-1' });
    const { browser, page } = await begin(app);
    const sent = await register(browser, page, { email: 'olga@example.test', password: 'another-password' });
    expect(sent.status).toBe(200);
    expect(sent.body).toContain('data-mail-sent');
    const [mail] = smtp.to('olga@example.test');
    expect(mail!.subject).toContain('You already have an account');
    expect(mail!.text).not.toContain('/verify-email');
    expect(await count('email_links', { email: 'olga@example.test' })).toBe(0);
    expect(await count('accounts', { email: 'olga@example.test' })).toBe(1);
  });

  it('names each invalid field, tied to its input, and sends nothing', async () => {
    const { browser, page } = await begin(app);
    const before = smtp.mails.length;
    const refused = await register(browser, page, { email: 'not-an-address', password: 'short' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/name="email" value="not-an-address"[^>]*aria-invalid="true" aria-describedby="register-email-error"/);
    expect(refused.body).toContain('id="register-email-error">Enter an email address, like name@example.com.</p>');
    expect(refused.body).toMatch(/name="password"[^>]*aria-describedby="register-password-hint register-password-error" aria-invalid="true"/);
    expect(refused.body).toContain('<label for="register-password">Password</label>');
    expect(smtp.mails.length).toBe(before);
    expect(await count('email_links', { email: 'not-an-address' })).toBe(0);
  });

  it('says so when the SMTP server refuses the mail, and keeps no link', async () => {
    const { browser, page } = await begin(app);
    smtp.refuse(true);
    try {
      const failed = await register(browser, page, { email: 'bounce@example.test', password: 'bounce-password' });
      expect(failed.status).toBe(503);
      expect(failed.body).toContain('We could not send the email just now');
      expect(failed.body).not.toContain('data-mail-sent');
    } finally {
      smtp.refuse(false);
    }
    expect(await count('email_links', { email: 'bounce@example.test' })).toBe(0);
    expect(smtp.to('bounce@example.test')).toHaveLength(0);
  });

  it('sends one mail per address per minute, with the same answer each time', async () => {
    const first = await begin(app);
    await register(first.browser, first.page, { email: 'twice@example.test', password: 'twice-password' });
    const second = await begin(app);
    const answer = await register(second.browser, second.page, { email: 'twice@example.test', password: 'twice-password' });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('data-mail-sent');
    expect(smtp.to('twice@example.test')).toHaveLength(1);
  });
});

describe('password reset', () => {
  /** Asks for a reset link on a fresh login page; returns the answer page. */
  async function forgot(email: string) {
    const { browser, page } = await begin(app);
    const form = readForm(await click(browser, page, 'data-forgot-password'), /\/forgot-password$/);
    return { browser, answer: await browser.submit(form.action, { ...form.fields, email }, app.redirectUri) };
  }

  /** The answer page without what differs between two interactions. */
  const normalised = (page: PageResponse, email: string) => page.body.replace(/\/interaction\/[^/"]+/g, '/interaction/UID').replaceAll(email, 'EMAIL');

  it('answers the same whether or not the address has an account, and mails only the one that has', async () => {
    await addUser(server.node, { email: 'kate@example.test', password: 'kate-password-1' });
    const known = await forgot('kate@example.test');
    const unknown = await forgot('nobody@example.test');
    expect(known.answer.status).toBe(200);
    expect(unknown.answer.status).toBe(200);
    expect(normalised(unknown.answer, 'nobody@example.test')).toBe(normalised(known.answer, 'kate@example.test'));
    expect(smtp.to('kate@example.test')).toHaveLength(1);
    expect(smtp.to('nobody@example.test')).toHaveLength(0);
    expect(await count('email_links', { email: 'nobody@example.test' })).toBe(0);
  });

  it('sets the new password from the mailed link, ends the account\'s sessions with logout notices, and works once', async () => {
    const user = await addUser(server.node, { email: 'paul@example.test', password: 'paul-old-password' });
    // A signed-in session at the application, to be ended by the reset.
    const session = await begin(app);
    const login = readForm(session.page, /\/login$/);
    await redeem(app, session.request, await session.browser.submit(login.action, { ...login.fields, email: 'paul@example.test', password: 'paul-old-password' }, app.redirectUri));
    const sessions = () => database.db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [user.id]);
    expect(await sessions()).toHaveLength(1);

    const { browser } = await forgot('paul@example.test');
    const link = linkIn(smtp.to('paul@example.test')[0]!, server.url);
    expect(link.pathname).toMatch(/\/reset-password$/);
    const formPage = await browser.follow(link);
    expect(formPage.body).toContain('<label for="reset-password">New password</label>');
    const form = readForm(formPage, /\/reset-password$/);

    // Too short: refused, the link still works, nothing changed.
    const short = await browser.submit(form.action, { ...form.fields, password: 'short' });
    expect(short.status).toBe(400);
    expect(short.body).toMatch(/aria-describedby="reset-password-hint reset-password-error" aria-invalid="true"/);
    const hashBefore = (await server.node.services.accounts.findLocalByEmail('paul@example.test'))!.passwordHash;

    const done = await browser.submit(form.action, { ...form.fields, password: 'paul-new-password' });
    expect(done.status).toBe(200);
    expect(done.body).toContain('Your password was changed');
    expect(done.body).toContain('data-continue');
    const after = (await server.node.services.accounts.findLocalByEmail('paul@example.test'))!.passwordHash;
    expect(after).not.toBe(hashBefore);
    expect(await verifyPassword('paul-new-password', after)).toBe(true);
    expect(await sessions()).toHaveLength(0);
    const logoutToken = jose.decodeJwt(await receiver.next());
    expect(logoutToken.sub).toBe(user.id);

    // Used once: again it is refused and the password stays the new one.
    const reused = await browser.submit(form.action, { ...form.fields, password: 'paul-third-password' });
    expect(reused.status).toBe(400);
    expect(reused.body).toContain('expired or was already used');
    expect((await server.node.services.accounts.findLocalByEmail('paul@example.test'))!.passwordHash).toBe(after);

    // The new password signs in; the old one does not.
    const next = await begin(app);
    const nextForm = readForm(next.page, /\/login$/);
    expect((await next.browser.submit(nextForm.action, { ...nextForm.fields, email: 'paul@example.test', password: 'paul-old-password' }, app.redirectUri)).status).toBe(401);
    const retry = readForm(await next.browser.follow(next.page.url), /\/login$/);
    await redeem(app, next.request, await next.browser.submit(retry.action, { ...retry.fields, email: 'paul@example.test', password: 'paul-new-password' }, app.redirectUri));
  });

  it('refuses an expired link, changing nothing', async () => {
    await addUser(server.node, { email: 'ivan@example.test', password: 'ivan-password-1' });
    const hash = (await server.node.services.accounts.findLocalByEmail('ivan@example.test'))!.passwordHash;
    const { browser } = await forgot('ivan@example.test');
    const link = linkIn(smtp.to('ivan@example.test')[0]!, server.url);
    await database.db('email_links').where({ email: 'ivan@example.test' }).update({ expires_at: new Date(Date.now() - 1000) });
    expect((await browser.follow(link)).status).toBe(400);
    const posted = await browser.submit(new URL(link.pathname, server.url), { token: link.searchParams.get('token')!, password: 'ivan-new-password' });
    expect(posted.status).toBe(400);
    expect((await server.node.services.accounts.findLocalByEmail('ivan@example.test'))!.passwordHash).toBe(hash);
  });
});

describe('without an SMTP server', () => {
  it('says mail is not configured, and neither stores a link nor pretends to send', async () => {
    const bare = await startTestServer(database.db, { REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE: '0' });
    try {
      const bareApp = await registerApp(bare.node, bare.url, 'bare-app', { registration: true });
      const { browser, page } = await begin(bareApp, bare);
      const registerPage = await click(browser, page, 'data-register');
      expect(registerPage.status).toBe(503);
      expect(registerPage.body).toContain('data-mail-not-configured');
      expect(registerPage.body).not.toContain('/register" class="stack"');
      const uid = /\/interaction\/([^/]+)\/register/.exec(page.body)![1]!;
      const csrf = readForm(page, /\/login$/).fields.csrf!;
      const posted = await browser.submit(`${bare.url}/interaction/${uid}/register`, { csrf, email: 'nomail@example.test', password: 'nomail-password' });
      expect(posted.status).toBe(503);
      expect(posted.body).toContain('Email is not set up on this server');
      const forgotPage = await click(browser, page, 'data-forgot-password');
      expect(forgotPage.status).toBe(503);
      expect(forgotPage.body).toContain('data-mail-not-configured');
      expect(await count('email_links', { email: 'nomail@example.test' })).toBe(0);
    } finally {
      await bare.close();
    }
  });
});

describe('send limits', () => {
  it('refuses more mail requests per minute from one address than configured, sending nothing for them', async () => {
    const limited = await startTestServer(database.db, { REALMGATE_SMTP_URL: smtp.url, REALMGATE_MAIL_FROM: MAIL_FROM, REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE: '2' });
    try {
      const limitedApp = await registerApp(limited.node, limited.url, 'limited-app');
      await database.db('rate_limits').where('key', 'like', 'mail:%').delete();
      const statuses: number[] = [];
      for (const n of [1, 2, 3]) {
        await addUser(limited.node, { email: `limit${n}@example.test`, password: 'limit-password' });
        const { browser, page } = await begin(limitedApp, limited);
        const form = readForm(await click(browser, page, 'data-forgot-password'), /\/forgot-password$/);
        const answer = await browser.submit(form.action, { ...form.fields, email: `limit${n}@example.test` });
        statuses.push(answer.status);
        if (answer.status === 429) expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(smtp.to('limit3@example.test')).toHaveLength(0);
    } finally {
      await limited.close();
    }
  });
});
