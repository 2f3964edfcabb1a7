/**
 * The shared provider suite: the cases every provider kind must pass, run against each kind with
 * a real upstream of that protocol (oidc-provider for OIDC, signed responses for SAML, oidc-provider
 * as a plain OAuth 2.0 server with a GitHub-shaped API for OAuth 2.0).
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { loginFootprint, registerApp, type TestApp } from '../support/federation.ts';
import type { LinkingPolicy } from '../../providers/types.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm } from '../support/http-session.ts';
import { oauth2Driver, oidcDriver, samlDriver, type ProviderDriver, type SuiteUser } from '../support/provider-drivers.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

for (const driver of [oidcDriver(), samlDriver(), oauth2Driver()]) {
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

    /** A whole login of `user` and what userinfo says of the account (where `email_verified` is released). */
    async function loginWithUserinfo(user: SuiteUser) {
      const request = await app.authorizationUrl({ idp_hint: alias });
      const pending = await driver.begin(server, alias, request.url, new HttpSession());
      const back = await driver.complete(pending, user, app.redirectUri);
      if (back.status !== 0) throw new Error(`login did not reach the application: ${back.status} ${back.url}\n${back.body.slice(0, 1200)}`);
      const tokens = await app.redeem(request, back.url);
      const claims = tokens.claims()!;
      return { claims, userinfo: await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub) };
    }

    /** A whole login of `user` up to wherever it stops (the application, or a Realmgate page). */
    async function loginPage(user: SuiteUser, browser = new HttpSession()) {
      const request = await app.authorizationUrl({ idp_hint: alias });
      const pending = await driver.begin(server, alias, request.url, browser);
      return { request, browser, page: await driver.complete(pending, user, app.redirectUri) };
    }

    /** Sets the provider's linking policy and domains. */
    async function setPolicy(linkingPolicy: Partial<LinkingPolicy>, domains = [domain]): Promise<void> {
      const stored = (await server.node.services.providers.load(alias))!;
      await server.node.services.store.transaction((tx) =>
        tx.providers.update({ ...stored, domains, linkingPolicy: { ...stored.linkingPolicy, ...linkingPolicy }, secrets: undefined }),
      );
    }

    /** Forgets every account with the user's email and the user's link, so the next sign-in is a first one. */
    async function forget(user: SuiteUser): Promise<void> {
      const { subject, email } = driver.identityOf(user);
      await database.db('external_identities').where({ provider_alias: alias, subject }).delete();
      await database.db('accounts').whereRaw('lower(email) = lower(?)', [email]).delete();
    }

    /** The email domain of a user, which the provider must own for `email_trust: "domains"` to trust it. */
    const domainOf = (user: SuiteUser) => driver.identityOf(user).email.split('@')[1]!;

    describe('linking', () => {
      afterAll(async () => setPolicy({ emailTrust: 'domains', linking: 'confirm', provisioning: 'auto' }));

      it('links silently under trusted_email when the email is in the provider\'s domains, and audits the rule', async () => {
        await forget('first');
        await setPolicy({ linking: 'trusted_email', emailTrust: 'domains' }, [domain, domainOf('first')]);
        const local = await addUser(server.node, { email: driver.identityOf('first').email, password: 'first-local-password' });
        const { claims, userinfo } = await loginWithUserinfo('first');
        expect(claims.sub).toBe(local.id);
        expect(userinfo.email_verified).toBe(true);
        const audit = await database.db('audit_log').where({ resource_type: 'user', resource_id: local.id, action: 'link' }).first();
        expect(audit.after).toMatchObject({ provider: alias, rule: 'trusted_email' });
      });

      it('never links silently outside the trust scope, and releases the untrusted email as unverified', async () => {
        await forget('first');
        await setPolicy({ linking: 'trusted_email', emailTrust: 'domains' }, [domain]);
        const local = await addUser(server.node, { email: driver.identityOf('first').email, password: 'first-local-password' });
        const before = await loginFootprint(database.db);
        const { page } = await loginPage('first');
        // Not trusted: no silent link; the person may prove the account is theirs instead.
        expect(page.status).toBe(200);
        expect(page.body).toContain('data-link-method="local"');
        expect(await loginFootprint(database.db)).toEqual(before);
        await database.db('accounts').where({ id: local.id }).delete();
        const fresh = await loginWithUserinfo('first');
        expect(fresh.claims.sub).not.toBe(local.id);
        expect(fresh.userinfo.email_verified).toBe(false);
      });

      it('links after the person confirms with the account\'s password under confirm, into the same sub', async () => {
        await forget('first');
        await setPolicy({ linking: 'confirm', emailTrust: 'domains' }, [domain, domainOf('first')]);
        const local = await addUser(server.node, { email: driver.identityOf('first').email, password: 'first-local-password' });
        const { request, browser, page } = await loginPage('first');
        expect(page.body).toContain('data-link-method="local"');
        const confirm = readForm(page, /\/login$/);
        const back = await browser.submit(confirm.action, { ...confirm.fields, password: 'first-local-password' }, app.redirectUri);
        expect(back.status).toBe(0);
        const claims = (await app.redeem(request, back.url)).claims()!;
        expect(claims).toMatchObject({ sub: local.id, idp: alias });
        expect(await database.db('external_identities').where({ provider_alias: alias, subject: driver.identityOf('first').subject }).first()).toMatchObject({ account_id: local.id });
      });

      it('creates a separate account under linking none', async () => {
        await forget('first');
        await setPolicy({ linking: 'none', emailTrust: 'any' });
        const local = await addUser(server.node, { email: driver.identityOf('first').email, password: 'first-local-password' });
        const claims = await login('first');
        expect(claims.sub).not.toBe(local.id);
      });

      it('refuses an unknown identity under existing_only with a clear page, creating nothing', async () => {
        await forget('first');
        await setPolicy({ linking: 'none', provisioning: 'existing_only' });
        const before = await loginFootprint(database.db);
        const { page } = await loginPage('first');
        expect(page.status).toBe(403);
        expect(page.body).toContain('new accounts are not created');
        expect(await loginFootprint(database.db)).toEqual(before);
      });
    });

    async function setEnabled(enabled: boolean): Promise<void> {
      const stored = (await server.node.services.providers.load(alias))!;
      await server.node.services.store.transaction((tx) => tx.providers.update({ ...stored, enabled, secrets: undefined }));
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
