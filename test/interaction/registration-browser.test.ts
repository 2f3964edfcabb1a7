/**
 * Registration in headless Chromium: the login page's [data-register] link, the form's labels and
 * field errors (tied to their inputs with aria-describedby), the verification mail received by a
 * real SMTP server in the test process, its link opened in the same browser, the terms step, and
 * the application getting its code, redeemed by openid-client.
 */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkIn, startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);

describe.skipIf(!hasChromium)(
  hasChromium ? 'registration in headless Chromium' : `registration in headless Chromium (skipped: ${CHROMIUM} is not installed)`,
  () => {
    let database: TestDatabase;
    let smtp: SmtpSink;
    let server: TestServer;
    let app: TestApp;
    let browser: Browser;

    beforeAll(async () => {
      database = await createTestDatabase();
      smtp = await startSmtpSink();
      server = await startTestServer(database.db, { REALMGATE_SMTP_URL: smtp.url, REALMGATE_MAIL_FROM: 'login@example.test' });
      app = await registerApp(server.node, server.url, 'signup-app', { registration: true, claims_in_id_token: true, terms_uri: 'https://app.example.test/terms', terms_version: '1' });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await smtp?.close();
      await database?.close();
    });

    it('registers, verifies the email from the mailed link, accepts the terms and finishes the login', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      let callback: URL | undefined;
      await page.route(`${app.redirectUri}**`, async (route) => {
        callback = new URL(route.request().url());
        await route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Back at the application</h1>' });
      });
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
      const claims = (await app.redeem(request, callback!)).claims()!;
      expect(claims).toMatchObject({ email: 'nina@example.test', email_verified: true, name: 'Nina New', idp: 'local' });
      const row = await database.db('terms_acceptances').where({ account_id: claims.sub }).first();
      expect(row).toMatchObject({ terms_version: '1', client_id: 'signup-app' });
      await context.close();
    });
  },
);
