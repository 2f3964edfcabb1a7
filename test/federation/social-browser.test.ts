import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appPage, browserSuiteName, hasChromium, launchChromium } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { addOAuth2Provider, GITHUB_PROFILES, startOAuth2Upstream, type OAuth2Upstream } from '../support/oauth2-upstream.ts';
import { startTestServer, type TestServer } from '../support/server.ts';


describe.skipIf(!hasChromium)(
  browserSuiteName('a social login in headless Chromium'),
  () => {
    let database: TestDatabase;
    let server: TestServer;
    let upstream: OAuth2Upstream;
    let app: TestApp;
    let browser: Browser;

    beforeAll(async () => {
      database = await createTestDatabase();
      server = await startTestServer(database.db);
      upstream = await startOAuth2Upstream();
      await addOAuth2Provider(server.node, server.url, upstream, { alias: 'forge', displayName: 'Forge', settings: { icon_url: '/assets/icons/social.svg' } });
      await addOAuth2Provider(server.node, server.url, upstream, { alias: 'other', displayName: 'Other Social' });
      app = await registerApp(server.node, server.url, 'social-web', { local_login: false, allowed_providers: ['forge', 'other'] });
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await upstream?.close();
      await database?.close();
    });

    it('shows the social buttons with the icon loaded from Realmgate under its CSP, and signs in through one', async () => {
      const { context, page, callback } = await appPage(browser, app.redirectUri);
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      const request = await app.authorizationUrl();
      await page.goto(request.url.href);

      await expect.poll(() => page.locator('[data-provider]').count()).toBe(2);
      expect(await page.locator('[data-provider]').evaluateAll((buttons) => buttons.map((b) => b.getAttribute('data-provider')))).toEqual(['forge', 'other']);
      expect(await page.textContent('[data-provider="forge"]')).toContain('Continue with Forge');
      await expect.poll(() => page.locator('[data-provider="forge"] img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
      expect(violations).toEqual([]);

      await page.click('[data-provider="forge"]');
      await page.waitForURL(`${upstream.issuer}/**`);
      await page.fill('#login', upstream.users[0]!.email);
      await page.fill('#password', upstream.users[0]!.password);
      await page.click('#upstream-sign-in');
      await page.waitForURL(`${app.redirectUri}**`);

      const claims = (await app.redeem(request, callback()!)).claims()!;
      expect(claims.idp).toBe('forge');
      const link = await database.db('external_identities').where({ provider_alias: 'forge', subject: String(GITHUB_PROFILES[upstream.users[0]!.sub]!.id) }).first();
      expect(link.account_id).toBe(claims.sub);
      await context.close();
    });
  },
);
