/**
 * Passkeys in headless Chromium with a virtual authenticator (DevTools protocol: a CTAP2
 * platform authenticator with resident keys and user verification): the browser helper served by
 * Realmgate runs under the pages' nonce CSP, a passkey is registered from /account, and then a
 * passwordless sign-in from the login page finishes the application's login; the ID token's `amr`
 * says so. WebAuthn refuses IP-address RP IDs, so this node's ISSUER is http://localhost:<port>
 * (the server still binds 127.0.0.1, and Chromium maps localhost there).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuiteName, hasChromium, launchChromium } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

/** Signs in with email and password on the login page (email first when the page asks for it). */
async function signInWithPassword(page: Page, email: string, password: string) {
  await page.fill('input[name=email]', email);
  if ((await page.locator('input[name=password]').count()) === 0) await page.click('form[action$="/discover"] button[type=submit]');
  await page.fill('input[name=password]', password);
  await page.click('form[action$="/login"] button[type=submit]');
}

describe.skipIf(!hasChromium)(
  browserSuiteName('passkeys in headless Chromium'),
  () => {
    let database: TestDatabase;
    let server: TestServer;
    let issuer: string;
    let app: TestApp;
    let browser: Browser;
    /** The application's own callback page (a real listener: Chromium will not load the usual port-1 redirect URI). */
    let appServer: http.Server;
    let callbackUrl: string;
    const callbacks: URL[] = [];

    beforeAll(async () => {
      appServer = http.createServer((req, res) => {
        const url = new URL(req.url!, callbackUrl);
        if (url.pathname === '/callback') callbacks.push(url);
        res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Back at the application</h1>');
      });
      await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
      callbackUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`;
      database = await createTestDatabase();
      const port = await freePort();
      issuer = `http://localhost:${port}`;
      server = await startTestServer(database.db, { PORT: String(port), ISSUER: issuer });
      app = await registerApp(server.node, issuer, 'passkey-browser-app', { claims_in_id_token: true, redirect_uris: [callbackUrl] });
      browser = await launchChromium(['--host-resolver-rules=MAP localhost 127.0.0.1']);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await database?.close();
      await new Promise((resolve) => appServer?.close(resolve));
    });

    it('registers a passkey from /account, then signs in with it from the login page without a password', async () => {
      const user = await addUser(server.node, { email: 'petra@example.test', password: 'petra-password-1' });
      const context = await browser.newContext();
      const page = await context.newPage();
      const cspViolations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
      });
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
      });

      // Register from the account page.
      await page.goto(`${issuer}/account`);
      await signInWithPassword(page, 'petra@example.test', 'petra-password-1');
      await page.waitForURL(`${issuer}/account`);
      await page.click('[data-enrol="webauthn"]');
      await page.getByLabel('Name for this passkey').fill('Virtual key');
      await page.click('[data-webauthn-start]');
      await page.waitForSelector('[data-recovery-codes]');
      await page.click('[data-continue]');
      await page.waitForSelector('[data-factor="webauthn"]');
      expect(await page.textContent('[data-factor="webauthn"]')).toContain('Virtual key');
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      expect(credentials).toHaveLength(1);
      expect(credentials[0]!.isResidentCredential).toBe(true);
      expect(credentials[0]!.rpId).toBe('localhost');
      const row = await database.db('mfa_factors').where({ account_id: user.id, kind: 'webauthn' }).first();
      expect(row.credential_id).toBe(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'));

      // A new login at the application, signed out first (the account page's session would sign it in), passwordless.
      await context.clearCookies();
      const request = await app.authorizationUrl({ redirect_uri: callbackUrl });
      await page.goto(request.url.href);
      await page.click('[data-passkey-sign-in]');
      await page.waitForURL(`${callbackUrl}**`);
      expect(await page.textContent('h1')).toBe('Back at the application');
      const claims = (await app.redeem(request, callbacks.at(-1)!)).claims()!;
      expect(claims).toMatchObject({ sub: user.id, idp: 'local', amr: ['hwk', 'mfa'], acr: 'mfa' });
      expect(Number((await database.db('mfa_factors').where({ id: row.id }).first()).sign_count)).toBeGreaterThan(0);
      expect(cspViolations).toEqual([]);
      await context.close();
    });
  },
);
