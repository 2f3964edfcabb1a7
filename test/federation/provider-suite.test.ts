/**
 * The shared provider suite: the cases every provider kind must pass, run against each kind with
 * a real upstream of that protocol (oidc-provider for OIDC, signed responses for SAML).
 */
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { oidcDriver, samlDriver, type ProviderDriver, type SuiteUser } from '../support/provider-drivers.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

for (const driver of [oidcDriver(), samlDriver()]) {
  describe(`a ${driver.kind} provider`, () => {
    let database: TestDatabase;
    let server: TestServer;
    let app: TestApp;
    const alias = `suite-${driver.kind}`;
    const domain = `${driver.kind}.suite.example`;

    beforeAll(async () => {
      database = await createTestDatabase();
      server = await startTestServer(database.db);
      await driver.start();
      await driver.addProvider(server, alias, { displayName: `Suite ${driver.kind.toUpperCase()}`, domains: [domain] });
      app = await registerApp(server.node, server.url, 'suite-app', { local_login: false });
    });

    afterAll(async () => {
      await server?.close();
      await driver.close();
      await database?.close();
    });

    /** A whole login of `user`; returns the ID token claims. */
    async function login(user: SuiteUser, params: Record<string, string> = { idp_hint: alias }) {
      const request = await app.authorizationUrl(params);
      const pending = await driver.begin(server, alias, request.url, new HttpSession());
      const back = await driver.complete(pending, user, app.redirectUri);
      if (back.status !== 0) throw new Error(`login did not reach the application: ${back.status} ${back.url}\n${back.body.slice(0, 1200)}`);
      return (await app.redeem(request, back.url)).claims()!;
    }

    async function setEnabled(enabled: boolean): Promise<void> {
      const stored = (await server.node.services.providers.load(alias))!;
      await database.db.transaction((trx: Knex) => server.node.services.providers.update({ ...stored, enabled, secrets: undefined }, trx));
    }

    it('signs a user in with idp and amr, links the upstream subject and keeps the upstream session', async () => {
      const claims = await login('first');
      expect(claims.idp).toBe(alias);
      expect(claims.amr).toContain('fed');
      const { subject, email } = driver.identityOf('first');
      const link = await database.db('external_identities').where({ provider_alias: alias, subject }).first();
      expect(link.account_id).toBe(claims.sub);
      expect((await server.node.services.accounts.get(String(claims.sub)))!.email).toBe(email);
      const session = await database.db('login_sessions').where({ account_id: claims.sub }).first();
      expect(session).toMatchObject({ idp: alias, upstream_issuer: driver.upstreamIssuer(), upstream_subject: subject });
    });

    it('signs the same upstream user into the same account, another into another', async () => {
      const first = await login('first');
      expect((await login('first')).sub).toBe(first.sub);
      expect((await login('second')).sub).not.toBe(first.sub);
    });

    it('is chosen by home-realm discovery from the login_hint domain', async () => {
      const claims = await login('second', { login_hint: `someone@${domain}` });
      expect(claims.idp).toBe(alias);
    });

    it('refuses a forged answer with a safe page and creates nothing', async () => {
      const before = await loginFootprint(database.db);
      const pending = await driver.begin(server, alias, (await app.authorizationUrl({ idp_hint: alias })).url, new HttpSession());
      const page = await driver.complete(pending, 'first', app.redirectUri, { forged: true });
      expect(page.status).toBe(502);
      expect(page.body).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
      expect(page.body).toContain(`Suite ${driver.kind.toUpperCase()}`);
      expect(await loginFootprint(database.db)).toEqual(before);
    });

    it('is refused while disabled, even for a login begun before, and works again once enabled', async () => {
      const pending = await driver.begin(server, alias, (await app.authorizationUrl({ idp_hint: alias })).url, new HttpSession());
      await setEnabled(false);
      try {
        const before = await loginFootprint(database.db);
        expect((await driver.complete(pending, 'first', app.redirectUri)).status).toBe(503);
        const refused = await new HttpSession().follow((await app.authorizationUrl({ idp_hint: alias })).url, {}, app.redirectUri);
        expect(refused.url.searchParams.get('error')).toBe('invalid_request');
        expect(await loginFootprint(database.db)).toEqual(before);
      } finally {
        await setEnabled(true);
      }
      expect((await login('first')).idp).toBe(alias);
    });
  });
}
