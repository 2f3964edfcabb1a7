import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appPage as openAppPage, browserSuiteName, hasChromium, launchChromium } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, registerApp, type TestApp } from '../support/federation.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { addUser } from '../support/fixtures.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp, type UpstreamUser } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;
const carol: UpstreamUser = { ...alice, sub: 'carol-0003', email: 'carol@acme.example', password: 'carol-upstream', name: 'Carol Example', given_name: 'Carol' };

describe.skipIf(!hasChromium)(
  browserSuiteName('a federated login in headless Chromium'),
  () => {
    let database: TestDatabase;
    let server: TestServer;
    let idp: UpstreamIdp;
    let app: TestApp;
    let browser: Browser;

    beforeAll(async () => {
      database = await createTestDatabase();
      server = await startTestServer(database.db);
      idp = await startUpstreamIdp({ users: [...UPSTREAM_USERS, carol] });
      await addOidcProvider(server.node, server.url, idp, { alias: 'acme', displayName: 'Acme Corp', domains: ['acme.example'] });
      await addOidcProvider(server.node, server.url, idp, { alias: 'globex', displayName: 'Globex', domains: ['globex.example'] });
      app = await registerApp(server.node, server.url, 'web');
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await idp?.close();
      await database?.close();
    });

    const appPage = () => openAppPage(browser, app.redirectUri);

    it('picks a provider on the login page, signs in upstream and returns to the application with a federated ID token', async () => {
      const { context, page, callback } = await appPage();
      const request = await app.authorizationUrl();

      await page.goto(request.url.href);
      await expect.poll(() => page.locator('[data-provider]').count()).toBe(2);
      // One email field on the page, whichever step (email-first or password) it shows.
      expect(await page.locator('input[name=email]').count()).toBe(1);
      await page.click('[data-provider="acme"]');

      await page.waitForURL(`${idp.issuer}/**`);
      await page.fill('#login', alice.email);
      await page.fill('#password', alice.password);
      await page.click('#upstream-sign-in');

      await page.waitForURL(`${app.redirectUri}**`);
      expect(await page.textContent('h1')).toBe('Back at the application');
      const tokens = await app.redeem(request, callback()!);
      const claims = tokens.claims()!;
      expect(claims.idp).toBe('acme');
      expect(claims.amr).toContain('fed');
      const link = await database.db('external_identities').where({ provider_alias: 'acme', subject: alice.sub }).first();
      expect(link.account_id).toBe(claims.sub);

      // prompt=login without a hint shows the choice rather than the remembered provider, with "use another way".
      const again = await app.authorizationUrl({ prompt: 'login' });
      await page.goto(again.url.href);
      await expect.poll(() => page.locator('[data-provider]').count()).toBe(2);
      await context.close();
    });

    it('links a federated sign-in to the existing account after the person signs in to it with a password', async () => {
      const local = await addUser(server.node, { email: 'carol@acme.example', password: 'carol-password-123' });
      const { context, page, callback } = await appPage();
      const request = await app.authorizationUrl({ idp_hint: 'acme' });
      await page.goto(request.url.href);
      await page.waitForURL(`${idp.issuer}/**`);
      await page.fill('#login', carol.email);
      await page.fill('#password', carol.password);
      await page.click('#upstream-sign-in');

      await page.waitForSelector('[data-link-method="local"]');
      expect(await page.textContent('h1')).toBe('You already have an account');
      await page.fill('input[name=password]', 'carol-password-123');
      await page.click('[data-link-method="local"]');
      await page.waitForURL(`${app.redirectUri}**`);
      const claims = (await app.redeem(request, callback()!)).claims()!;
      expect(claims.sub).toBe(local.id);
      expect(claims.idp).toBe('acme');
      expect(await database.db('external_identities').where({ provider_alias: 'acme', subject: carol.sub }).first()).toMatchObject({ account_id: local.id });
      await context.close();
    });
  },
);
