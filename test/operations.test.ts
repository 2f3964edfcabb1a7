import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { addClient } from './support/fixtures.ts';
import { HttpSession } from './support/http-session.ts';
import { discoverAs, startLogin, submitPassword } from './support/login.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const APP = 'http://127.0.0.1:1/cb';
const templates = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-templates-'));
fs.writeFileSync(
  path.join(templates, 'login.njk'),
  '{% extends "layout.njk" %}{% block content %}<h1 class="acme">Acme Single Sign-On</h1>' +
    '<form method="post" action="/interaction/{{ uid }}/login"><input type="hidden" name="csrf" value="{{ csrf }}">' +
    '<input name="email"><input type="password" name="password"></form>{% endblock %}',
);

let database: TestDatabase;
let server: TestServer;
let httpsServer: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_TEMPLATES_DIR: templates, REALMGATE_ADMIN_CLIENT_ID: 'ops', REALMGATE_ADMIN_CLIENT_SECRET: 'ops-secret-ops-secret' });
  httpsServer = await startTestServer(database.db, { ISSUER: 'https://login.example.test', REALMGATE_PURGE_INTERVAL_SECONDS: '1' });
  await addClient(server.node, { client_id: 'web', redirect_uris: [APP], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, 'web-secret-web-secret');
  await addClient(server.node, { client_id: 'posting', redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_post' }, 'posting-secret-posting');
});

afterAll(async () => {
  await server?.close();
  await httpsServer?.close();
  await database?.close();
  fs.rmSync(templates, { recursive: true, force: true });
});

describe('operations endpoints', () => {
  it('reports liveness and readiness', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok' } });
  });

  it('counts requests, tokens by grant and logins in Prometheus text', async () => {
    const config = await discoverAs(server.url, 'ops', 'ops-secret-ops-secret');
    await oidc.clientCredentialsGrant(config, { scope: 'admin' });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/realmgate_tokens_issued_total\{grant_type="client_credentials"\} [1-9]/);
    expect(text).toMatch(/realmgate_http_requests_total\{method="GET",route="\/.well-known\/openid-configuration",status="200"\} [1-9]/);
    expect(text).toContain('# TYPE realmgate_logins_total counter');
  });

  it('counts password sign-ins by outcome', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const { page, browser } = await startLogin(config, { redirectUri: APP });
    expect((await submitPassword(browser, page, 'nobody@example.com', 'wrong-password', APP)).status).toBe(401);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/realmgate_logins_total\{idp="local",outcome="failure"\} 1/);
  });

  it('purges expired rows on its own, every REALMGATE_PURGE_INTERVAL_SECONDS', async () => {
    const past = new Date(Date.now() - 60_000);
    await database.db('oidc_payloads').insert({ model: 'AccessToken', id: 'expired-token', payload: '{}', expires_at: past });
    await database.db('login_throttle').insert({ key: 'ip:192.0.2.1', failures: 3, window_started_at: past, expires_at: past });
    let left = 2;
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = (await database.db('oidc_payloads').where({ id: 'expired-token' }).select('id')).length +
        (await database.db('login_throttle').where({ key: 'ip:192.0.2.1' }).select('key')).length;
    }
    expect(left).toBe(0);
  });

  it('echoes a safe request id and generates one otherwise', async () => {
    const given = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-123');
    const generated = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('pages', () => {
  it("answers the token engine's own paths like every other, however the client authenticates: request id, security headers, metrics", async () => {
    const form = 'application/x-www-form-urlencoded';
    // HTTP Basic: answered before express (see `engineRoutes`); in the body: through express.
    const basic = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('ops:ops-secret-ops-secret').toString('base64')}`, 'content-type': form, 'x-request-id': 'trace-basic' },
      body: 'grant_type=client_credentials&scope=admin',
    });
    const posted = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': form, 'x-request-id': 'trace-posted' },
      body: 'grant_type=client_credentials&client_id=posting&client_secret=posting-secret-posting',
    });
    const jwks = await fetch(`${server.url}/jwks?x=1`, { headers: { 'x-request-id': 'trace-jwks' } });
    for (const [res, id] of [[basic, 'trace-basic'], [posted, 'trace-posted'], [jwks, 'trace-jwks']] as const) {
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe(id);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    }
    expect(await basic.json()).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
    expect(await posted.json()).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const count = (route: string, method: string) => Number(text.match(new RegExp(`^realmgate_http_requests_total\\{method="${method}",route="${route.replace(/[/.]/g, '\\$&')}",status="200"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
    expect(count('/token', 'POST')).toBeGreaterThanOrEqual(2);
    expect(count('/jwks', 'GET')).toBeGreaterThanOrEqual(1);
  });

  it('renders an operator template in place of the built-in one', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const { page } = await startLogin(config, { redirectUri: APP });
    expect(page.body).toContain('<h1 class="acme">Acme Single Sign-On</h1>');
    expect(page.body).toContain('/assets/realmgate.css');
  });

  it('sends security headers and HttpOnly, SameSite=Lax cookies', async () => {
    const config = await discoverAs(server.url, 'web', 'web-secret-web-secret');
    const browser = new HttpSession();
    const auth = await browser.request(oidc.buildAuthorizationUrl(config, { redirect_uri: APP, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }));
    const cookies = auth.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) {
      expect(c).toMatch(/httponly/i);
      expect(c).toMatch(/samesite=lax/i);
    }
    const page = await browser.follow(auth.headers.get('location')!.startsWith('http') ? auth.headers.get('location')! : `${server.url}${auth.headers.get('location')}`);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-store');
  });

  it('marks cookies Secure when the issuer is https behind a TLS-terminating proxy', async () => {
    await addClient(httpsServer.node, { client_id: 'secure-web', redirect_uris: ['https://app.example.test/cb'], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, 'web-secret-web-secret');
    const res = await fetch(`${httpsServer.url}/auth?client_id=secure-web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.test/cb')}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256`, {
      redirect: 'manual',
      headers: { 'x-forwarded-proto': 'https', host: 'login.example.test' },
    });
    expect(res.status).toBe(303);
    const cookies = res.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) expect(c).toMatch(/;\s*secure/i);
  });
});
