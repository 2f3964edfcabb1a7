/**
 * Registration in headless Chromium: the login page's [data-register] link, the form's labels and
 * field errors (tied to their inputs with aria-describedby), the verification mail received by a
 * real SMTP server in the test process, its link opened in the same browser, the terms step, and
 * the application getting its code, redeemed by openid-client. Then the whole run of issue 12:
 * registration → verification → TOTP enrolment on /account (the code computed from the key the
 * page shows) → a new sign-in with the code, ending with tokens in the application.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { appPage, browserSuiteName, hasChromium, launchChromium } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkIn, startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';


describe.skipIf(!hasChromium)(
  browserSuiteName('registration in headless Chromium'),
  () => {
    let database: TestDatabase;
    let smtp: SmtpSink;
    let server: TestServer;
    let app: TestApp;
    let mfaApp: TestApp;
    let browser: Browser;

    beforeAll(async () => {
      database = await createTestDatabase();
      smtp = await startSmtpSink();
      server = await startTestServer(database.db, { REALMGATE_SMTP_URL: smtp.url, REALMGATE_MAIL_FROM: 'login@example.test' });
      app = await registerApp(server.node, server.url, 'signup-app', { registration: true, claims_in_id_token: true, terms_uri: 'https://app.example.test/terms', terms_version: '1' });
      mfaApp = await registerApp(server.node, server.url, 'signup-mfa-app', { registration: true, claims_in_id_token: true });
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await smtp?.close();
      await database?.close();
    });

    it('registers, verifies the email from the mailed link, accepts the terms and finishes the login', async () => {
      const { context, page, callback } = await appPage(browser, app.redirectUri);
      const request = await app.authorizationUrl();
      await page.goto(request.url.href);
      await page.click('[data-register]');

      // Inputs found by their labels; a refused form ties each error to its input.
      await page.getByLabel('Email').fill('not-an-address');
      await page.getByLabel('Password', { exact: true }).fill('short');
      await page.click('[data-register-submit]');
      const email = page.getByLabel('Email');
      await expect.poll(() => email.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await email.getAttribute('aria-describedby'))!;
      expect(await page.locator(`#${describedBy}`).textContent()).toBe('Enter an email address, like name@example.com.');
      const passwordIds = (await page.getByLabel('Password', { exact: true }).getAttribute('aria-describedby'))!.split(' ');
      expect(await page.locator(`#${passwordIds[1]}`).textContent()).toBe('Choose a password of at least 8 characters.');
      expect(smtp.mails).toHaveLength(0);

      await page.getByLabel('Email').fill('nina@example.test');
      await page.getByLabel('Name (optional)').fill('Nina New');
      await page.getByLabel('Password', { exact: true }).fill('nina-password-1');
      await page.click('[data-register-submit]');
      await page.waitForSelector('[data-mail-sent]');

      const mail = await eventually('the verification mail arrives', async () => smtp.to('nina@example.test')[0]);
      await page.goto(linkIn(mail, `${server.url}/interaction/`).href);
      await page.click('[data-verify-email]');
      await page.click('[data-accept-terms]');

      await page.waitForURL(`${app.redirectUri}**`);
      expect(await page.textContent('h1')).toBe('Back at the application');
      const claims = (await app.redeem(request, callback()!)).claims()!;
      expect(claims).toMatchObject({ email: 'nina@example.test', email_verified: true, name: 'Nina New', idp: 'local' });
      const row = await database.db('terms_acceptances').where({ account_id: claims.sub }).first();
      expect(row).toMatchObject({ terms_version: '1', client_id: 'signup-app' });
      await context.close();
    });

    it('registers, verifies the email, enrols an authenticator app on /account, then signs in with its code and the application gets tokens', async () => {
      const first = await appPage(browser, mfaApp.redirectUri);
      const { page } = first;
      const registration = await mfaApp.authorizationUrl();
      await page.goto(registration.url.href);
      await page.click('[data-register]');
      await page.getByLabel('Email').fill('omar@example.test');
      await page.getByLabel('Password', { exact: true }).fill('omar-password-1');
      await page.click('[data-register-submit]');
      await page.waitForSelector('[data-mail-sent]');

      // The link from the mail the SMTP peer received verifies the address and finishes the login.
      const mail = await eventually('the verification mail arrives', async () => smtp.to('omar@example.test')[0]);
      await page.goto(linkIn(mail, `${server.url}/interaction/`).href);
      await page.click('[data-verify-email]');
      await page.waitForURL(`${mfaApp.redirectUri}**`);
      const registered = (await mfaApp.redeem(registration, first.callback()!)).claims()!;
      expect(registered).toMatchObject({ email: 'omar@example.test', email_verified: true, amr: ['pwd'], acr: 'sfa' });

      // Enrolment on /account, signed in by the same browser: the test computes the code from the shown key.
      await page.goto(`${server.url}/account`);
      await page.click('[data-enrol="totp"]');
      const secret = (await page.textContent('[data-totp-secret]'))!.trim();
      expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
      expect(await page.locator('figure.qr svg').count()).toBe(1);
      await page.getByLabel('Code from your authenticator app').fill(await generate({ secret }));
      await page.click('[data-confirm-totp]');
      await page.waitForSelector('[data-recovery-codes]');
      expect(await page.locator('[data-recovery-code]').count()).toBe(10);
      await page.click('[data-continue]');
      await page.waitForSelector('[data-factor="totp"]');
      await first.context.close();

      // A new browser signs in with the password and a code (the next time step: each is used once).
      const second = await appPage(browser, mfaApp.redirectUri);
      const signIn = await mfaApp.authorizationUrl();
      await second.page.goto(signIn.url.href);
      await second.page.fill('input[name=email]', 'omar@example.test');
      if ((await second.page.locator('input[name=password]').count()) === 0) await second.page.press('input[name=email]', 'Enter');
      await second.page.fill('input[name=password]', 'omar-password-1');
      await second.page.press('input[name=password]', 'Enter');
      await second.page.waitForSelector('input[name=code]');
      await second.page.getByLabel('Code from your authenticator app').fill(await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }));
      await second.page.click('[data-verify-code]');
      await second.page.waitForURL(`${mfaApp.redirectUri}**`);
      expect(await second.page.textContent('h1')).toBe('Back at the application');
      const tokens = await mfaApp.redeem(signIn, second.callback()!);
      expect(tokens.access_token).toEqual(expect.any(String));
      expect(tokens.claims()).toMatchObject({ sub: registered.sub, idp: 'local', amr: ['pwd', 'otp', 'mfa'], acr: 'mfa' });
      await second.context.close();
    });
  },
);
