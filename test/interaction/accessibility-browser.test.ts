/**
 * The pages of the sign-in steps in headless Chromium, in light and in dark mode
 * (`prefers-color-scheme`, through `page.emulateMedia`): login, registration, the mail-sent page,
 * email verification, terms, profile completion, the MFA enrolment, code and recovery-code
 * pages, forgot and reset password, account linking and /account, each also with its errors
 * shown. On each, every input has a label, every input marked invalid names its error with
 * `aria-describedby` (and every field error is named by its input), and every piece of text has
 * a contrast of at least 4.5:1 against the background it is drawn on, computed from the colours
 * Chromium resolved.
 */
import { generate } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appPage, browserSuiteName, hasChromium, launchChromium } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { addOidcProvider, registerApp, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkIn, startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

/** The least contrast ratio for text (WCAG 2 AA, normal text). */
const MIN_CONTRAST = 4.5;

/** The page's DOM, as `inspect` sees it in Chromium (this program has no DOM types: the server code must not see them). */
type Dom = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What one page breaks, as sentences (empty when it passes). */
interface PageProblems {
  unlabelled: string[];
  untiedErrors: string[];
  lowContrast: string[];
  invalidInputs: number;
}

/**
 * Runs in the page: labels, error association and the contrast of every visible text (and input
 * value) against its composited background. Colours are resolved by painting them on a canvas,
 * so any CSS colour syntax Chromium computes (rgb, color(srgb …), system colours) is measured.
 */
function inspect(minContrast: number): PageProblems {
  const { document, getComputedStyle, Node } = globalThis as Dom;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const rgba = (css: string): [number, number, number, number] => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = '#000';
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return [r!, g!, b!, a! / 255];
  };
  const over = (top: number[], bottom: number[]) => [0, 1, 2].map((i) => top[i]! * top[3]! + bottom[i]! * (1 - top[3]!));
  const probe = document.createElement('div');
  probe.style.background = 'Canvas';
  document.body.append(probe);
  const canvasColour = rgba(getComputedStyle(probe).backgroundColor);
  probe.remove();
  const background = (el: Dom): number[] => {
    const layers: number[][] = [];
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = layers.length && (layers[layers.length - 1]![3] ?? 0) >= 1 ? layers.pop()!.slice(0, 3) : canvasColour.slice(0, 3);
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const luminance = (c: number[]) => {
    const [r, g, b] = c.map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  };
  const contrast = (a: number[], b: number[]) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi! + 0.05) / (lo! + 0.05);
  };
  const describe = (el: Dom) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().replace(/\s+/g, '.')}` : ''} "${(el.textContent ?? el.value ?? '').trim().slice(0, 40)}"`;
  const visible = (el: Dom) => {
    const style = getComputedStyle(el);
    return el.getClientRects().length > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  };

  const fields: Dom[] = [...document.querySelectorAll('input, select, textarea')].filter((el: Dom) => el.type !== 'hidden' && visible(el));
  const unlabelled = fields.filter((f) => !(f.labels?.length) && !f.getAttribute('aria-label') && !f.getAttribute('aria-labelledby')).map(describe);

  const untiedErrors: string[] = [];
  const invalid = fields.filter((f) => f.getAttribute('aria-invalid') === 'true');
  for (const field of invalid) {
    const ids: string[] = (field.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
    const named = ids.map((id) => document.getElementById(id)).filter((el: Dom) => el !== null);
    if (named.length !== ids.length) untiedErrors.push(`${describe(field)} names a missing element in aria-describedby="${ids.join(' ')}"`);
    if (!named.some((el: Dom) => el.classList.contains('error') && el.textContent!.trim())) untiedErrors.push(`${describe(field)} is aria-invalid without an error in its aria-describedby`);
  }
  for (const error of document.querySelectorAll('.field-error') as Dom[]) {
    const namedBy = fields.some((f) => (f.getAttribute('aria-describedby') ?? '').split(/\s+/).includes(error.id));
    const invalidField = fields.some((f) => f.getAttribute('aria-invalid') === 'true' && (f.getAttribute('aria-describedby') ?? '').split(/\s+/).includes(error.id));
    if (!error.id || !namedBy || !invalidField) untiedErrors.push(`${describe(error)} is not the aria-describedby of an aria-invalid input`);
  }

  const lowContrast: string[] = [];
  const texts: Dom[] = [...document.body.querySelectorAll('*')].filter(
    (el: Dom) => !el.closest('svg') && visible(el) && [...el.childNodes].some((n: Dom) => n.nodeType === Node.TEXT_NODE && n.textContent!.trim()),
  );
  for (const el of [...texts, ...fields.filter((f) => f.value)]) {
    const fg = rgba(getComputedStyle(el).color);
    const bg = background(el);
    const ratio = contrast(over(fg, bg), bg);
    if (ratio < minContrast) lowContrast.push(`${describe(el)}: ${ratio.toFixed(2)}:1 (text ${getComputedStyle(el).color} on rgb(${bg.map(Math.round).join(', ')}))`);
  }
  return { unlabelled, untiedErrors, lowContrast, invalidInputs: invalid.length };
}

describe.skipIf(!hasChromium)(browserSuiteName('the steps\' pages are accessible in light and dark mode (headless Chromium)'), () => {
  let database: TestDatabase;
  let smtp: SmtpSink;
  let server: TestServer;
  let idp: UpstreamIdp;
  let app: TestApp;
  let browser: Browser;
  const visited: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    smtp = await startSmtpSink();
    server = await startTestServer(database.db, { REALMGATE_SMTP_URL: smtp.url, REALMGATE_MAIL_FROM: 'login@example.test' });
    idp = await startUpstreamIdp();
    await addOidcProvider(server.node, server.url, idp, { alias: 'acme', displayName: 'Acme Corp', domains: ['acme.example'] });
    app = await registerApp(server.node, server.url, 'a11y-app', {
      registration: true,
      mfa: 'required',
      terms_uri: 'https://app.example.test/terms',
      terms_version: '1',
      required_claims: ['given_name'],
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await server?.close();
    await smtp?.close();
    await database?.close();
  });

  /** Checks the page shown now in both colour schemes; `withErrors` asks that it shows at least one field error. */
  async function check(page: Page, name: string, options: { withErrors?: boolean } = {}) {
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      expect(await page.evaluate(() => (globalThis as Dom).matchMedia('(prefers-color-scheme: dark)').matches as boolean)).toBe(colorScheme === 'dark');
      const found = await page.evaluate(inspect, MIN_CONTRAST);
      const where = `${name} (${colorScheme} mode, ${page.url()})`;
      expect(found.unlabelled, `${where}: inputs without a label`).toEqual([]);
      expect(found.untiedErrors, `${where}: errors not tied to their fields`).toEqual([]);
      expect(found.lowContrast, `${where}: text below ${MIN_CONTRAST}:1`).toEqual([]);
      if (options.withErrors) expect(found.invalidInputs, `${where}: the page should show a field error`).toBeGreaterThan(0);
    }
    visited.push(name);
  }

  it('registration, verification, MFA enrolment, recovery codes, terms, profile completion, the account page, and the code page', async () => {
    const { context, page } = await appPage(browser, app.redirectUri);
    await page.goto((await app.authorizationUrl()).url.href);
    await check(page, 'login');
    await page.click('[data-register]');
    await check(page, 'register');
    await page.click('[data-register-submit]');
    await check(page, 'register with errors', { withErrors: true });
    await page.getByLabel('Email').fill('ines@example.test');
    await page.getByLabel('Password', { exact: true }).fill('ines-password-1');
    await page.click('[data-register-submit]');
    await page.waitForSelector('[data-mail-sent]');
    await check(page, 'mail sent');

    const mail = await eventually('the verification mail arrives', async () => smtp.to('ines@example.test')[0]);
    await page.goto(linkIn(mail, `${server.url}/interaction/`).href);
    await check(page, 'verify email');
    await page.click('[data-verify-email]');
    await page.waitForSelector('[data-totp-secret]');
    await check(page, 'mfa enrolment');
    const secret = (await page.textContent('[data-totp-secret]'))!.trim();
    const right = await generate({ secret });
    await page.getByLabel('Code from your authenticator app').fill(right === '000000' ? '111111' : '000000');
    await page.click('[data-confirm-totp]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'mfa enrolment with errors', { withErrors: true });
    await page.getByLabel('Code from your authenticator app').fill(right);
    await page.click('[data-confirm-totp]');
    await page.waitForSelector('[data-recovery-codes]');
    await check(page, 'recovery codes');
    await page.click('[data-continue]');

    await page.waitForSelector('[data-accept-terms]');
    await check(page, 'terms');
    await page.click('[data-accept-terms]');
    await page.waitForSelector('[data-complete-profile]');
    await check(page, 'profile');
    await page.click('[data-complete-profile]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'profile with errors', { withErrors: true });
    await page.getByLabel('First name').fill('Ines');
    await page.click('[data-complete-profile]');

    await page.waitForURL(`${app.redirectUri}**`);

    // The account page, and its rename form refusing an empty name.
    await page.goto(`${server.url}/account`);
    await page.waitForSelector('[data-factor="totp"]');
    await check(page, 'account');
    await page.locator('input[name=label]').fill('');
    await page.click('[data-rename-factor]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'account with errors', { withErrors: true });
    await context.close();

    // A new sign-in: the wrong password, then the code page, also with a wrong code.
    const again = await appPage(browser, app.redirectUri);
    await again.page.goto((await app.authorizationUrl()).url.href);
    await again.page.fill('input[name=email]', 'ines@example.test');
    if ((await again.page.locator('input[name=password]').count()) === 0) await again.page.press('input[name=email]', 'Enter');
    await again.page.fill('input[name=password]', 'not-the-password');
    await again.page.press('input[name=password]', 'Enter');
    await again.page.waitForSelector('[aria-invalid="true"]');
    await check(again.page, 'login with errors', { withErrors: true });
    await again.page.fill('input[name=password]', 'ines-password-1');
    await again.page.press('input[name=password]', 'Enter');
    await again.page.waitForSelector('[data-verify-code]');
    await check(again.page, 'mfa code');
    await again.page.getByLabel('Code from your authenticator app').fill('12');
    await again.page.click('[data-verify-code]');
    await again.page.waitForSelector('[aria-invalid="true"]');
    await check(again.page, 'mfa code with errors', { withErrors: true });
    await again.context.close();
  }, 120_000);

  it('forgot and reset password', async () => {
    await addUser(server.node, { email: 'jon@example.test', password: 'jon-password-123' });
    const { context, page } = await appPage(browser, app.redirectUri);
    await page.goto((await app.authorizationUrl()).url.href);
    await page.fill('input[name=email]', 'jon@example.test');
    if ((await page.locator('[data-forgot-password]').count()) === 0) await page.press('input[name=email]', 'Enter');
    await page.click('[data-forgot-password]');
    await page.waitForSelector('[data-send-reset]');
    await check(page, 'forgot password');
    await page.getByLabel('Email').fill('not-an-address');
    await page.click('[data-send-reset]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'forgot password with errors', { withErrors: true });
    await page.getByLabel('Email').fill('jon@example.test');
    await page.click('[data-send-reset]');
    await page.waitForSelector('[data-mail-sent]');
    const mail = await eventually('the reset mail arrives', async () => smtp.to('jon@example.test')[0]);
    await page.goto(linkIn(mail, server.url).href);
    await page.waitForSelector('[data-reset-password]');
    await check(page, 'reset password');
    await page.getByLabel('New password').fill('short');
    await page.click('[data-reset-password]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'reset password with errors', { withErrors: true });
    await context.close();
  }, 60_000);

  it('account linking, also after a wrong password', async () => {
    const alice = UPSTREAM_USERS[0]!;
    await addUser(server.node, { email: alice.email, password: 'alice-local-password' });
    const plain = await registerApp(server.node, server.url, 'a11y-link-app');
    const { context, page } = await appPage(browser, plain.redirectUri);
    await page.goto((await plain.authorizationUrl({ idp_hint: 'acme' })).url.href);
    await page.waitForURL(`${idp.issuer}/**`);
    await page.fill('#login', alice.email);
    await page.fill('#password', alice.password);
    await page.click('#upstream-sign-in');
    await page.waitForSelector('[data-link-method="local"]');
    await check(page, 'link');
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('[data-link-method="local"]');
    await page.waitForSelector('[aria-invalid="true"]');
    await check(page, 'link with errors', { withErrors: true });
    await context.close();
    expect(visited).toEqual(expect.arrayContaining(['login', 'register', 'verify email', 'terms', 'profile', 'mfa enrolment', 'mfa code', 'recovery codes', 'account', 'forgot password', 'reset password', 'link']));
  }, 60_000);
});
